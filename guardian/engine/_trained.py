"""Training entry point and the trained adapter, with its privacy record.

Nothing here writes audio or adapters to disk: :meth:`TrainedAdapter.to_bytes` hands the
caller bytes to encrypt into the subject's vault.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from guardian.audio import Audio, resample
from guardian.engine._adapter import Prior, SpeakerAdapter
from guardian.engine._base import BaseVoice
from guardian.engine._convert import RATE_RANGE, convert_samples, speaking_rate
from guardian.engine._data import example, pad
from guardian.engine._dp import DPRun, HistoryEntry, epsilon_of, train_dp
from guardian.engine._errors import (
    AdapterFormatError,
    EnrollmentDataError,
    TrainingCancelledError,
)
from guardian.engine._prior import PublicConverter, load_converter
from guardian.engine._rate import RATE_BOUND
from guardian.engine._world import RATE, analyse

Device = Literal["cpu", "cuda"]
FORMAT = "guardian-speaker-adapter/1"
MIN_UTTERANCES = 2
MEASURED_NOISE = 0.19
"""The most DP-SGD noise per utterance (:func:`noise_per_utterance`) whose quality the
engine benchmark measures: ε = 1 with 100 utterances at δ = 1e-5 (mean SECS 0.709).
Noise falls as the utterances grow and as ε grows, so this is the bar for both: a run
noisier than this is outside anything measured."""
MAX_ROWS = 1500
"""Rows (10 ms each) kept per utterance: 15 s; longer readings add cost, not voice."""
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, eq=False)
class TrainedAdapter:
    """A speaker adapter and the DP record of how it was made.

    Attributes:
        converter_id, converter_sha256: the public converter it extends.
        components, order: adapter size (its tier).
        theta: the private parameters (float32).
        epsilon_spent, delta: privacy cost of the training, composed by ``accountant``.
        noise_multiplier, clip, sample_rate, steps: the DP-SGD mechanism.
        history: the accountant's history, ``(noise multiplier, sample rate, steps)``:
            the DP-SGD steps, then the speaking-rate release ``(noise multiplier, 1.0, 1)``.
        base_model_id: the base TTS the adapter converts from.
        rate_noise_multiplier: noise of the speaking-rate release; ``None`` for an
            adapter that learned its rate inside DP-SGD (made before the release existed).
    """

    converter_id: str
    converter_sha256: str
    components: int
    order: int
    theta: np.ndarray
    epsilon_spent: float
    delta: float
    noise_multiplier: float
    clip: float
    sample_rate: float
    steps: int
    history: tuple[HistoryEntry, ...]
    accountant: str
    base_model_id: str
    _module: SpeakerAdapter
    rate_noise_multiplier: float | None = None

    # --- use ------------------------------------------------------------------------

    def convert(self, audio: Audio) -> Audio:
        """Base-voice speech -> the speaker's voice (16 kHz mono)."""
        mono = resample(audio.mono(), audio.sample_rate, RATE)
        out = np.nan_to_num(convert_samples(self._module, mono))
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        # WORLD can overshoot full scale; keep the same headroom as the base voice.
        if peak > 0.99:
            out = out * (0.99 / peak)
        return Audio(out[:, None], RATE)

    @property
    def stretch(self) -> float:
        """Length of the converted speech relative to the base voice's (speaking rate)."""
        return speaking_rate(self._module)

    def noise_per_utterance(self, utterances: int) -> float:
        """DP-SGD's noise on the mean clipped gradient of a run on ``utterances``."""
        return self.noise_multiplier / (self.sample_rate * max(utterances, 1))

    def warnings(self, utterances: int) -> list[str]:
        """What a user should know about this adapter's quality, trained on ``utterances``.

        Both are signs that DP noise, not the speaker, decided the voice: too little data
        for the budget (more noise per utterance than any setting the benchmark
        measures), or a speaking rate at the conversion's bound (a real speaker's rate is
        far inside it; an adapter that releases its rate on its own cannot reach it).
        """
        out = []
        noise = self.noise_per_utterance(utterances)
        if noise > MEASURED_NOISE:
            out.append(
                f"only {utterances} enrollment utterances for ε {self.epsilon_spent:.2g}: "
                f"DP noise per utterance {noise:.2f} is above the {MEASURED_NOISE} of the "
                "noisiest setting measured (ε = 1, 100 utterances), so the voice will sound "
                "little like the speaker; enroll more utterances or train with a larger ε "
                "(see docs/engine.md)"
            )
        if not RATE_RANGE[0] < self.stretch < RATE_RANGE[1]:
            out.append(
                f"the speaking rate hit its bound (x{self.stretch:.1f} the base voice's "
                "length): that is DP noise, not the speaker; enroll more utterances or "
                "train with a larger ε"
            )
        return out

    def speak(self, base: BaseVoice, text: str) -> Audio:
        """Say ``text`` with the base voice, converted to the speaker."""
        return self.convert(base.synthesize(text))

    # --- serialisation --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        theta = np.asarray(self.theta, dtype="<f4").tobytes()
        return {
            "format": FORMAT,
            "converter": {"id": self.converter_id, "sha256": self.converter_sha256},
            "base_model_id": self.base_model_id,
            "size": {"components": self.components, "order": self.order},
            "theta": base64.b64encode(theta).decode("ascii"),
            "privacy": {
                "mechanism": "DP-SGD (Opacus, Poisson sampling)",
                "unit": "enrollment utterance",
                "accountant": self.accountant,
                "epsilon": self.epsilon_spent,
                "delta": self.delta,
                "noise_multiplier": self.noise_multiplier,
                "clip": self.clip,
                "sample_rate": self.sample_rate,
                "steps": self.steps,
                "history": [list(h) for h in self.history],
                **(
                    {}
                    if self.rate_noise_multiplier is None
                    else {
                        "rate_release": {
                            "mechanism": "Gaussian, clipped per-utterance log rates",
                            "noise_multiplier": self.rate_noise_multiplier,
                            "bound": RATE_BOUND,
                        }
                    }
                ),
            },
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, converter: PublicConverter | None = None) -> TrainedAdapter:
        """Rebuild an adapter, refusing one whose record does not match its mechanism.

        Raises:
            AdapterFormatError: malformed bytes, another converter, or a privacy record
                whose history does not compose to the epsilon it claims.
        """
        try:
            d = json.loads(data)
            if d.get("format") != FORMAT:
                raise AdapterFormatError(f"not a {FORMAT} document")
            return cls.from_dict(d, converter or load_converter())
        except (ValueError, KeyError, TypeError) as e:
            raise AdapterFormatError(f"adapter bytes are malformed ({e})") from e

    @classmethod
    def from_dict(cls, d: dict[str, Any], converter: PublicConverter) -> TrainedAdapter:
        if d["converter"]["sha256"] != converter.weights_sha256:
            raise AdapterFormatError(
                f"adapter was trained on converter {d['converter']['id']}, "
                f"not the loaded {converter.model_id}"
            )
        p = d["privacy"]
        history = tuple((float(s), float(q), int(n)) for s, q, n in p["history"])
        claimed = float(p["epsilon"])
        recomputed = epsilon_of(history, float(p["delta"]), str(p["accountant"]))
        if not math.isclose(recomputed, claimed, rel_tol=1e-3, abs_tol=1e-6):
            raise AdapterFormatError(
                f"adapter claims epsilon {claimed:.4f} but its history gives {recomputed:.4f}"
            )
        steps = int(p["steps"])
        release = p.get("rate_release")
        rate_sigma = None if release is None else float(release["noise_multiplier"])
        if rate_sigma is not None and history[-1:] != ((rate_sigma, 1.0, 1),):
            raise AdapterFormatError("adapter's rate release is not the last of its history")
        if sum(n for _, _, n in history) != steps + (rate_sigma is not None):
            raise AdapterFormatError("adapter's step count does not match its history")
        size = d["size"]
        prior = converter.prior.with_capacity(int(size["components"]), int(size["order"]))
        theta = np.frombuffer(base64.b64decode(d["theta"]), dtype="<f4").astype(np.float32)
        return _build(
            converter,
            prior,
            theta,
            DPRun(
                theta=theta,
                epsilon=claimed,
                delta=float(p["delta"]),
                noise_multiplier=float(p["noise_multiplier"]),
                clip=float(p["clip"]),
                sample_rate=float(p["sample_rate"]),
                steps=steps,
                history=history,
                accountant=str(p["accountant"]),
                completed=True,
                rate_noise_multiplier=rate_sigma,
            ),
            base_model_id=str(d["base_model_id"]),
        )


def _build(
    converter: PublicConverter, prior: Prior, theta: np.ndarray, run: DPRun, *, base_model_id: str
) -> TrainedAdapter:
    module = SpeakerAdapter(prior)
    if theta.shape != tuple(module.theta.shape):
        raise AdapterFormatError(
            f"adapter has {theta.size} parameters, its size needs {module.theta.numel()}"
        )
    with torch.no_grad():
        module.theta.copy_(torch.from_numpy(theta))
    return TrainedAdapter(
        converter_id=converter.model_id,
        converter_sha256=converter.weights_sha256,
        components=prior.p,
        order=prior.order,
        theta=theta,
        epsilon_spent=run.epsilon,
        delta=run.delta,
        noise_multiplier=run.noise_multiplier,
        clip=run.clip,
        sample_rate=run.sample_rate,
        steps=run.steps,
        history=run.history,
        accountant=run.accountant,
        base_model_id=base_model_id,
        _module=module,
        rate_noise_multiplier=run.rate_noise_multiplier,
    )


def prepare_examples(
    utterances: Sequence[Audio],
    texts: Sequence[str],
    prior: Prior,
    base: BaseVoice,
    *,
    progress: Progress | None = None,
) -> np.ndarray:
    """One packed example per (utterance, text): the base voice says the text, DTW aligns."""
    if len(utterances) != len(texts):
        raise EnrollmentDataError(
            f"{len(utterances)} utterances but {len(texts)} texts: each needs its text"
        )
    if len(utterances) < MIN_UTTERANCES:
        raise EnrollmentDataError(f"training needs at least {MIN_UTTERANCES} utterances")
    rows = []
    for i, (audio, text) in enumerate(zip(utterances, texts, strict=True)):
        target = analyse(resample(audio.mono(), audio.sample_rate, RATE))
        spoken = base.synthesize(text)
        source = analyse(resample(spoken.mono(), spoken.sample_rate, RATE))
        rows.append(example(target, source, prior)[:MAX_ROWS])
        if progress is not None:
            progress("prepare", i + 1, len(texts))
    return pad(rows)


def train_adapter(
    utterances: Sequence[Audio],
    texts: Sequence[str],
    *,
    epsilon: float,
    delta: float,
    device: Device = "cpu",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    base: BaseVoice | None = None,
    converter: PublicConverter | None = None,
    seed: int | None = None,
) -> TrainedAdapter:
    """Train a speaker adapter with DP-SGD; one enrollment utterance is the privacy unit.

    Args:
        utterances: the enrolled speaker's recordings.
        texts: what each recording says (the sentences the subject was asked to read).
        epsilon, delta: the privacy budget of this run (delta below 1 / len(utterances)).
        device: ``"cpu"`` or ``"cuda"``.
        progress: called with (stage, done, total); stages ``prepare`` and ``train``.
        should_stop: polled between steps; True cancels the run.
        base: the base voice (loaded when not given).
        converter: the public converter (the shipped one when not given).
        seed: fixes sampling and noise (tests and benchmarks only).

    Raises:
        EnrollmentDataError: too few utterances, or utterances and texts differ in number.
        TrainingCancelledError: ``should_stop`` returned True; no adapter is returned,
            and the error carries the epsilon the steps taken have spent.
    """
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise EnrollmentDataError("epsilon must be a positive number")
    if not 0 < delta < 1.0 / max(len(utterances), 1):
        raise EnrollmentDataError("delta must be in (0, 1 / number of utterances)")
    if device == "cuda" and not torch.cuda.is_available():
        raise EnrollmentDataError("device 'cuda' requested but no CUDA device is available")
    converter = converter or load_converter()
    base = base or BaseVoice()
    tier = converter.tier(epsilon, utterances=len(utterances), delta=delta)
    prior = converter.prior.with_capacity(tier.components, tier.order)
    packed = prepare_examples(utterances, texts, prior, base, progress=progress)
    if should_stop is not None and should_stop():
        raise TrainingCancelledError(0.0, ())

    def step(done: int, total: int) -> None:
        if progress is not None:
            progress("train", done, total)

    run = train_dp(
        packed,
        prior,
        tier.dp,
        epsilon=epsilon,
        delta=delta,
        device=device,
        seed=seed,
        progress=step,
        should_stop=should_stop,
    )
    if not run.completed:
        raise TrainingCancelledError(run.epsilon, run.history)
    return _build(converter, prior, run.theta, run, base_model_id=base.model_id)
