"""Speaker verification with Resemblyzer's GE2E encoder (weights ship in its wheel).

The encoder's weights are checked against a pinned SHA-256 and loaded with
``torch.load(weights_only=True)`` before any of them reach the network: Resemblyzer's
own constructor would unpickle the file unchecked, so it never runs.

Audio and embeddings are personal data: everything here happens in memory.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from guardian._thirdparty import quiet_import
from guardian.audio import Audio, resample
from guardian.consent._errors import NoSpeechError, SpeakerModelError
from guardian.errors import ConfigError

if TYPE_CHECKING:
    from resemblyzer import VoiceEncoder

THRESHOLD: float = 0.90
"""Cosine threshold for "same speaker", calibrated on 19 generated voices.

See docs/benchmarks/consent_speaker.md (``benchmarks/consent_speaker.py``): the lowest
0.01 step at which no consent statement read by another voice was accepted (1026
trials, highest 0.886) and held-out FAR stays about 0 (1 in 6840); held-out FRR is
2.4 %. Seed 8 gave the same step (consent FAR 0, held-out FAR 0.03 %, FRR 1.8 %).
"""

ENCODER_RATE = 16_000
"""The rate Resemblyzer's encoder expects."""

EMBEDDING_DIM = 256

_SILENCE = 1.0 / 32768.0
"""Peaks under one 16-bit step are digital silence (Resemblyzer's gain would divide by 0)."""

WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
"""SHA-256 of ``pretrained.pt`` in the resemblyzer 0.1.4 wheel."""


# --- weights and encoder -------------------------------------------------------------


def _weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise SpeakerModelError("resemblyzer is not installed: pip install resemblyzer")
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"


def read_pinned(
    path: Path,
    sha256: str,
    *,
    what: str = "speaker encoder weights",
    error: type[ConfigError] = SpeakerModelError,
) -> bytes:
    """The file's bytes, only when they hash to ``sha256``; else ``error`` naming ``what``."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise error(f"{what} unreadable: {path} ({e})") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise error(f"{what} {path}: SHA-256 {digest}, expected {sha256}")
    return data


def _load_state(data: bytes) -> dict[str, Any]:
    import torch

    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        state: dict[str, Any] = checkpoint["model_state"]
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise SpeakerModelError(f"speaker encoder weights cannot be loaded ({e})") from e
    return state


def _import_resemblyzer() -> Any:
    try:
        return quiet_import("resemblyzer")
    except ImportError as e:
        raise SpeakerModelError(f"resemblyzer cannot be imported ({e})") from e


def _build_encoder(state: dict[str, Any]) -> VoiceEncoder:
    """A ``VoiceEncoder`` built without its constructor, which would load weights itself."""
    import torch
    from torch import nn

    rz = _import_resemblyzer()
    hp = rz.hparams
    encoder = rz.VoiceEncoder.__new__(rz.VoiceEncoder)
    nn.Module.__init__(encoder)
    encoder.lstm = nn.LSTM(
        hp.mel_n_channels, hp.model_hidden_size, hp.model_num_layers, batch_first=True
    )
    encoder.linear = nn.Linear(hp.model_hidden_size, hp.model_embedding_size)
    encoder.relu = nn.ReLU()
    encoder.device = torch.device("cpu")
    # strict=False as upstream: the checkpoint also holds the GE2E loss's scale and bias.
    missing = encoder.load_state_dict(state, strict=False).missing_keys
    if missing:
        raise SpeakerModelError(f"speaker encoder weights lack {', '.join(missing)}")
    encoder.eval()
    return encoder


@functools.cache
def encoder() -> VoiceEncoder:
    """The process-wide speaker encoder, on CPU, from hash-checked weights.

    Raises:
        SpeakerModelError: resemblyzer or its weights are missing, altered or unloadable.
    """
    data = read_pinned(_weights_path(), WEIGHTS_SHA256)
    return _build_encoder(_load_state(data))


# --- embeddings ----------------------------------------------------------------------


def _preprocess(audio: Audio) -> np.ndarray:
    """16 kHz mono, loudness-normalised, long silences cut (Resemblyzer's recipe)."""
    rz = _import_resemblyzer()
    mono = resample(audio.mono(), audio.sample_rate, ENCODER_RATE)
    # The VAD inside works on int16; keep the float samples inside full scale.
    mono = np.clip(mono, -1.0, 1.0)
    wav = rz.preprocess_wav(mono, source_sr=None)
    return np.asarray(wav, dtype=np.float32)


def embed(audio: Audio) -> np.ndarray:
    """L2-normalised 256-d utterance embedding (float32).

    Raises:
        NoSpeechError: the recording holds no speech to embed.
        SpeakerModelError: the encoder cannot be loaded.
    """
    model = encoder()
    if float(np.max(np.abs(audio.samples))) < _SILENCE:
        raise NoSpeechError("the recording is silent: no speaker to identify")
    wav = _preprocess(audio)
    if wav.size < ENCODER_RATE // 10 or not np.isfinite(wav).all():
        raise NoSpeechError("no speech found in the recording to identify the speaker")
    raw = np.asarray(model.embed_utterance(wav), dtype=np.float32)
    norm = float(np.linalg.norm(raw))
    if not np.isfinite(norm) or norm == 0.0:
        raise NoSpeechError("no speaker features found in the recording")
    return (raw / norm).astype(np.float32)


# --- verification --------------------------------------------------------------------


@dataclass(frozen=True)
class SpeakerCheck:
    """Outcome of the same-speaker check over a consent recording and samples."""

    ok: bool
    threshold: float
    consent_score: float
    sample_scores: tuple[float, ...]
    rejected: tuple[int, ...]
    """0-based indices of samples that do not match the others (``reason`` counts from 1)."""
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _as_matrix(samples: Sequence[np.ndarray]) -> np.ndarray:
    rows = np.stack([np.asarray(s, dtype=np.float64).reshape(-1) for s in samples])
    return np.stack([_unit(r) for r in rows])


def sample_scores(consent: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Each sample's cosine to the centroid of the other samples (to the consent if alone)."""
    if len(samples) == 1:
        return np.asarray(samples @ consent)
    leave_one_out = samples.sum(axis=0, keepdims=True) - samples
    norms = np.linalg.norm(leave_one_out, axis=1)
    return np.asarray(np.einsum("ij,ij->i", samples, leave_one_out) / np.maximum(norms, 1e-12))


def _odd_samples(consent: np.ndarray, samples: np.ndarray, t: float) -> list[int]:
    """Indices of samples that do not match the rest, removed worst first.

    One foreign sample pulls every leave-one-out centroid towards itself and can drag
    genuine samples below the threshold with it; taking out the worst and scoring again
    names only the foreign one. Ties (two samples, two voices) go against the sample
    further from the consent.
    """
    kept, odd = list(range(len(samples))), []
    while kept:
        scores = sample_scores(consent, samples[kept])
        # Rounded so that the two equal scores of a pair compare equal despite float noise.
        worst = int(np.lexsort((samples[kept] @ consent, np.round(scores, 6)))[0])
        if scores[worst] >= t:
            break
        odd.append(kept.pop(worst))
    return sorted(odd)


def _final_scores(consent: np.ndarray, samples: np.ndarray, kept: list[int]) -> np.ndarray:
    """Kept samples against each other; the odd ones against the kept centroid."""
    scores = np.empty(len(samples))
    if kept:
        scores[kept] = sample_scores(consent, samples[kept])
        centroid = _unit(samples[kept].sum(axis=0))
    else:
        centroid = consent
    odd = [i for i in range(len(samples)) if i not in kept]
    scores[odd] = samples[odd] @ centroid
    return scores


def _numbers(indices: Sequence[int]) -> str:
    nums = [str(i + 1) for i in indices]
    if len(nums) == 1:
        return f"sample {nums[0]}"
    return "samples " + ", ".join(nums[:-1]) + " and " + nums[-1]


def _reason(
    rejected: Sequence[int], scores: np.ndarray, consent_ok: bool, consent_score: float, t: float
) -> str | None:
    parts = []
    if rejected:
        worst = min(float(scores[i]) for i in rejected)
        verb = "does" if len(rejected) == 1 else "do"
        parts.append(
            f"{_numbers(rejected)} {verb} not match the speaker of the other recordings "
            f"(lowest score {worst:.2f} < {t:.2f})"
        )
    if not consent_ok:
        parts.append(
            f"the consent recording's voice does not match the samples "
            f"(score {consent_score:.2f} < {t:.2f})"
        )
    return "; ".join(parts) or None


def check_same_speaker(
    consent: np.ndarray, samples: Sequence[np.ndarray], *, threshold: float = THRESHOLD
) -> SpeakerCheck:
    """Check that the consent embedding and every sample embedding share one speaker.

    Each sample is scored against the centroid of the other samples (against the
    consent when there is only one sample), so one odd sample cannot hide in a centroid
    it helped to build. Samples below the threshold are taken out worst first and the
    rest scored again, so only the odd ones are named. The consent is scored against
    the centroid of the samples that remain, so that a bad sample is not also reported
    as a consent mismatch.

    Args:
        consent: embedding of the consent recording (see :func:`embed`).
        samples: embeddings of the enrollment samples, in the order the subject gave them.
        threshold: the lowest cosine accepted as the same speaker.

    Returns:
        The scores and, when it fails, which recordings do not match and why.
    """
    if not samples:
        return SpeakerCheck(False, threshold, 0.0, (), (), "no enrollment samples were given")
    c = _unit(np.asarray(consent, dtype=np.float64).reshape(-1))
    m = _as_matrix(samples)
    rejected = _odd_samples(c, m, threshold)
    kept = [i for i in range(len(m)) if i not in rejected]
    scores = _final_scores(c, m, kept)
    consent_score = float(c @ _unit(m[kept or list(range(len(m)))].mean(axis=0)))
    consent_ok = consent_score >= threshold
    return SpeakerCheck(
        ok=consent_ok and not rejected,
        threshold=threshold,
        consent_score=consent_score,
        sample_scores=tuple(float(x) for x in scores),
        rejected=tuple(rejected),
        reason=_reason(rejected, scores, consent_ok, consent_score, threshold),
    )


__all__ = [
    "EMBEDDING_DIM",
    "ENCODER_RATE",
    "THRESHOLD",
    "WEIGHTS_SHA256",
    "SpeakerCheck",
    "check_same_speaker",
    "embed",
    "encoder",
]
