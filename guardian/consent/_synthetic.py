"""Is a consent reading spoken by a speech synthesiser rather than a person?

A consent recording must be a person reading their statement. Festival, espeak-ng,
Piper and Guardian's own cloning engine can all read any statement with any code, so
the check looks at who, or what, is speaking:

- the speaker embedding, of the recording brought to one level (the encoder's output
  moves with loudness): a synthesiser's voices sit in their own corners of the
  speaker space;
- 80 statistics of linear-frequency cepstra (LFCC) over the loudest 70 % of frames:
  their mean and spread, and how fast they move. The level is left out (the mean of
  c0 is zero): a gain shifts c0 alone. Vocoders and concatenated diphones
  move differently from a vocal tract, and the linear bands keep the high frequencies
  where their artefacts are.

A logistic regression over the 336 standardised features gives a score from 0 to 1.
It is trained by ``benchmarks/consent_synthetic.py`` on the synthesisers named above
and on read human speech, both passed through the channels a recording meets (codecs,
phone band, a room). The threshold is the 99th percentile of cross-validated human
scores, so about 1 % of genuine readings are flagged by design.

It knows the synthesisers it was trained on. A synthesiser it has never heard can pass
(the benchmark measures this by leaving each one out); ``docs/consent.md`` says so.

The features are personal data and stay in memory; only the score and the threshold go
into the signed consent record.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from guardian.audio import Audio, resample
from guardian.consent._errors import NoSpeechError, SyntheticModelError
from guardian.consent._speaker import EMBEDDING_DIM, embed, read_pinned

MODEL_PATH = Path(__file__).with_name("assets") / "synthetic_speech.json"
MODEL_SHA256 = "aae9d754695b36b29986b406c030a4243d6eb47c359c543d9777eaefe81a2c94"
"""SHA-256 of the shipped model file; the file is refused when it differs."""

RATE = 16_000
_FRAME, _HOP, _NFFT = 400, 160, 512
_BANDS, _CEPSTRA = 40, 20
_QUIET_SHARE = 0.30
"""The quietest 30 % of frames (pauses, breath) are left out of the statistics."""

REFERENCE_DBFS = -30.0
"""The level the speaker encoder normalises to (Resemblyzer's ``preprocess_wav``)."""

FEATURE_DIM = EMBEDDING_DIM + 4 * _CEPSTRA


# --- features ------------------------------------------------------------------------


@functools.cache
def _filterbank() -> np.ndarray:
    """``_BANDS`` triangles evenly spaced over 0 Hz to Nyquist."""
    bins = _NFFT // 2 + 1
    edges = np.linspace(0.0, bins, _BANDS + 2)
    k = np.arange(bins)
    bank = np.empty((_BANDS, bins))
    for i in range(_BANDS):
        low, centre, high = edges[i : i + 3]
        bank[i] = np.clip(
            np.minimum((k - low) / (centre - low), (high - k) / (high - centre)), 0, None
        )
    return bank


@functools.cache
def _dct() -> np.ndarray:
    """The first ``_CEPSTRA`` rows of the orthonormal DCT-II of size ``_BANDS``."""
    n = np.arange(_BANDS)
    rows: np.ndarray = np.cos(np.pi / _BANDS * (n[None, :] + 0.5) * np.arange(_CEPSTRA)[:, None])
    rows *= np.sqrt(2.0 / _BANDS)
    rows[0] /= np.sqrt(2.0)
    return rows


def cepstral_statistics(audio: Audio) -> np.ndarray:
    """Mean, spread, delta spread and mean absolute delta of 20 LFCCs (80 numbers).

    Raises:
        NoSpeechError: fewer than four 25 ms frames.
    """
    x = resample(audio.mono(), audio.sample_rate, RATE).astype(np.float64)
    count = (len(x) - _FRAME) // _HOP
    if count < 4:
        raise NoSpeechError("the recording is too short to tell a person from a synthesiser")
    index = np.arange(_FRAME)[None, :] + _HOP * np.arange(count)[:, None]
    power = np.abs(np.fft.rfft(x[index] * np.hanning(_FRAME), _NFFT)) ** 2
    logs = np.log(power @ _filterbank().T + 1e-10)
    energy = logs.mean(axis=1)
    logs = logs[energy >= np.quantile(energy, _QUIET_SHARE)]
    ceps = logs @ _dct().T
    delta = np.diff(ceps, axis=0)
    mean = ceps.mean(0)
    mean[0] = 0.0  # the recording's level: a gain adds a constant to c0 alone
    return np.concatenate([mean, ceps.std(0), delta.std(0), np.abs(delta).mean(0)])


def at_reference_level(audio: Audio) -> Audio:
    """``audio`` scaled to an RMS of ``REFERENCE_DBFS`` over the whole recording.

    The speaker encoder raises quiet recordings to that level but leaves loud ones as
    they are, and its embedding moves with the level; at this level every recording
    reaches it the same, however loud it was made.
    """
    rms = float(np.sqrt(np.mean(np.square(audio.samples, dtype=np.float64))))
    if rms == 0.0:
        raise NoSpeechError("the recording is silent")
    gain = 10 ** (REFERENCE_DBFS / 20) / rms
    return Audio((audio.samples * gain).astype(np.float32), audio.sample_rate)


def features(audio: Audio) -> np.ndarray:
    """The model's input, both parts from the recording at the reference level: the
    speaker embedding, then the cepstral statistics (336 numbers)."""
    levelled = at_reference_level(audio)
    return np.concatenate([embed(levelled), cepstral_statistics(levelled)])


# --- the model -----------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticModel:
    """Standardisation, then a logistic regression; ``threshold`` on its probability."""

    model_id: str
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    trained_on: tuple[str, ...]
    """The synthesisers it was trained to catch."""

    def score(self, x: np.ndarray) -> float:
        z = float(((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.weights + self.bias)
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))

    def to_json(self) -> bytes:
        body = {
            "model_id": self.model_id,
            "feature_dim": FEATURE_DIM,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "threshold": self.threshold,
            "trained_on": list(self.trained_on),
        }
        return (json.dumps(body, indent=1) + "\n").encode()


def _vector(body: dict[str, Any], key: str) -> np.ndarray:
    v = np.asarray(body[key], dtype=np.float64)
    if v.shape != (FEATURE_DIM,) or not np.isfinite(v).all():
        raise SyntheticModelError(f"synthetic-speech model: {key} is not {FEATURE_DIM} numbers")
    return v


def parse_model(data: bytes) -> SyntheticModel:
    try:
        body = json.loads(data)
        model = SyntheticModel(
            model_id=str(body["model_id"]),
            mean=_vector(body, "mean"),
            scale=_vector(body, "scale"),
            weights=_vector(body, "weights"),
            bias=float(body["bias"]),
            threshold=float(body["threshold"]),
            trained_on=tuple(str(s) for s in body["trained_on"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise SyntheticModelError(f"synthetic-speech model unreadable: {e}") from e
    if (model.scale <= 0).any() or not 0.0 < model.threshold < 1.0:
        raise SyntheticModelError("synthetic-speech model: bad scale or threshold")
    return model


@functools.cache
def synthetic_model() -> SyntheticModel:
    """The shipped model, read once, only when its bytes hash to ``MODEL_SHA256``."""
    data = read_pinned(
        MODEL_PATH, MODEL_SHA256, what="synthetic-speech model", error=SyntheticModelError
    )
    return parse_model(data)


def fit(
    x: np.ndarray,
    y: np.ndarray,
    *,
    l2: float,
    model_id: str,
    threshold: float,
    trained_on: tuple[str, ...],
) -> SyntheticModel:
    """L2-regularised logistic regression by Newton's method (``y`` is 1 for synthetic)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return SyntheticModel(model_id, mean, scale, w[:-1], float(w[-1]), threshold, trained_on)


# --- the check -----------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticCheck:
    """The score of one recording; it sounds synthetic at or above the threshold."""

    score: float
    threshold: float
    model_id: str

    @property
    def synthetic(self) -> bool:
        return self.score >= self.threshold

    @property
    def reason(self) -> str:
        return (
            f"sounds like a speech synthesiser (score {self.score:.2f}, threshold "
            f"{self.threshold:.2f}): consent must be read aloud by the person"
        )


def check_synthetic(audio: Audio) -> SyntheticCheck:
    """Score ``audio``."""
    model = synthetic_model()
    return SyntheticCheck(model.score(features(audio)), model.threshold, model.model_id)
