"""Embedding, and detection on the torch runtime: any rate, any length, constant memory.

What detection does with the detector's presence is in ``_scoring``, shared with the
ONNX Runtime detector (``_onnx``) that ``verify`` uses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from guardian.audio import Audio, resample
from guardian.errors import WatermarkError
from guardian.watermark._model import (
    SAMPLE_RATE,
    AudioSealWM,
    EmbedConfig,
    WatermarkModel,
    no_compile,
)
from guardian.watermark._payload import NBITS, Payload
from guardian.watermark._scoring import (
    FRAME,
    MIN_BIT_CONFIDENCE,
    MIN_SECONDS,
    MIN_TONE_CONFIDENCE,
    Detection,
    Look,
    Segment,
    counted,
    look_with,
    mono16k,
    presence,
    read_payload,
    window_score,
)
from guardian.watermark._signal import shape_watermark
from guardian.watermark._tones import CODE_PHASE, code_waveform

__all__ = [
    "FRAME",
    "MIN_BIT_CONFIDENCE",
    "MIN_SECONDS",
    "MIN_TONE_CONFIDENCE",
    "Detection",
    "Segment",
    "TorchDetector",
    "calibrate",
    "detect",
    "embed",
    "watermark_of",
    "window_score",
]

CHUNK_S = 10.0
"""Embedding chunk; detection chunks are the model's ``embed.detect_chunk_s``."""


def embed(model: WatermarkModel, audio: Audio, payload: Payload) -> Audio:
    """Add the watermark to every channel; the rest of the signal is untouched."""
    if model.generator is None:
        raise WatermarkError(f"model {model.model_id} has no generator: it can only detect")
    if audio.duration < MIN_SECONDS:
        raise WatermarkError(f"audio is too short to carry a watermark (< {MIN_SECONDS} s)")
    mono = mono16k(audio)
    msg = torch.tensor([payload.bits()])
    wm = np.zeros_like(mono)
    chunk = int(CHUNK_S * SAMPLE_RATE)
    with torch.inference_mode(), no_compile():
        for start in range(0, len(mono), chunk):
            seg = torch.from_numpy(mono[start : start + chunk])[None, None, :]
            if seg.shape[-1] < SAMPLE_RATE // 10:  # a tail too short for the encoder
                break
            mark = watermark_of(model.generator, seg, msg, model.embed)
            wm[start : start + seg.shape[-1]] = mark[0, 0].numpy()
    wm_native = resample(wm, SAMPLE_RATE, audio.sample_rate)[: audio.frames]
    marked = audio.samples + wm_native[:, None]
    peak = float(np.abs(marked).max())
    if peak > 1.0:  # never clip: scale the whole clip down a little instead
        marked = marked / peak * 0.999
    return Audio(marked.astype(np.float32), audio.sample_rate, audio.container)


def watermark_of(
    generator: AudioSealWM, x: torch.Tensor, bits: torch.Tensor, cfg: EmbedConfig
) -> torch.Tensor:
    """What embedding adds to ``x`` (B, 1, T; 16 kHz) for the messages ``bits`` (B, NBITS):
    the generator's watermark shaped to the speech and, where the embedding has one, the
    tone code beside it. Training a detector on this sees what ``verify`` will see."""
    mark: torch.Tensor = shape_watermark(generator.get_watermark(x, message=bits), x, cfg)
    if cfg.code_snr_db is None or cfg.payload_tones is None:
        return mark
    # whole-hertz tones run a whole number of cycles per chunk: no seam
    tones = np.stack(
        [
            code_waveform(cfg.payload_tones, row, x.shape[-1], phase_seed=CODE_PHASE)
            for row in bits.tolist()
        ]
    )
    code = torch.from_numpy(tones)[:, None, :].to(x.device)
    code_cfg = dataclasses.replace(cfg, spectral_mask_power=cfg.code_mask_power)
    return mark + shape_watermark(code, x, code_cfg, snr_db=cfg.code_snr_db)


@dataclass(frozen=True)
class _Head:
    """The detector's last two layers folded into one linear map (:func:`_folded_head`)."""

    body: torch.nn.Module
    """Everything before them: audio (B, 1, T) to latent frames (B, dim, F)."""
    weight: torch.Tensor
    """dim x output channels x samples per latent frame."""
    bias: torch.Tensor
    """One per output channel."""


def _folded_head(model: WatermarkModel) -> _Head | None:
    """The detector's last two layers as one linear map per latent frame.

    AudioSeal's detector ends with a transposed convolution whose kernel equals its
    stride (each latent frame becomes ``hop`` samples, no overlap) and a 1x1 convolution,
    with nothing in between: together they map each latent frame linearly to ``hop``
    samples of every output channel. Applied directly, that map skips the 32-channel
    full-rate tensor between them, and presence alone needs only one of its rows.
    None for a detector of another shape.
    """
    encoder, last = model.detector.detector
    rev = getattr(encoder, "reverse_convolution", None)
    body = getattr(encoder, "model", None)
    if not (
        isinstance(body, torch.nn.Module)
        and isinstance(rev, torch.nn.ConvTranspose1d)
        and isinstance(last, torch.nn.Conv1d)
        and rev.kernel_size == rev.stride
        and rev.padding == (0,)
        and rev.output_padding == (0,)
        and rev.groups == 1
        and rev.dilation == (1,)
        and last.kernel_size == (1,)
        and rev.bias is not None
        and last.bias is not None
    ):
        return None
    w_last = last.weight[:, :, 0]  # channels x hidden
    weight = torch.einsum("iok,co->ick", rev.weight, w_last)
    return _Head(body, weight, w_last @ rev.bias + last.bias)


def _run_detector(
    model: WatermarkModel, x: torch.Tensor, head: _Head | None, *, bits: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Presence probability (B, T) and, with ``bits``, bit logits (B, NBITS, T) of ``x``
    (B, 1, T), the detector's view already applied; ``head`` is :func:`_folded_head`."""
    if head is None:  # any other detector: run it whole
        out = model.detector.detector(x)
        return torch.softmax(out[:, :2], dim=1)[:, 1], out[:, 2:] if bits else None
    n = x.shape[-1]
    latent = head.body(x)
    b, w = len(latent), head.weight
    # softmax over two logits is the sigmoid of their difference
    logit = torch.einsum("bif,ik->bfk", latent, w[:, 1] - w[:, 0]).reshape(b, -1)[:, :n]
    prob = torch.sigmoid(logit + (head.bias[1] - head.bias[0]))
    if not bits:
        return prob, None
    out = torch.einsum("bif,ick->bcfk", latent, w[:, 2:]).reshape(b, NBITS, -1)
    return prob, out[:, :, :n] + head.bias[2:, None]


def _presence(
    model: WatermarkModel, mono: np.ndarray, *, bits: bool = True, fold: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Frame-level presence and, with ``bits``, bit logits of ``mono`` (16 kHz, DC removed)
    on the torch runtime (``_scoring.presence``). ``fold=False`` runs the detector whole
    instead of through :func:`_folded_head` (what ``research/detect_speed.py`` compares)."""
    with torch.inference_mode(), no_compile():
        head = _folded_head(model) if fold else None

        def run(x: np.ndarray, want_bits: bool) -> tuple[np.ndarray, np.ndarray | None]:
            p, out = _run_detector(model, torch.from_numpy(x)[:, None, :], head, bits=want_bits)
            return p.numpy(), out.numpy() if out is not None else None

        return presence(run, mono, model.embed, bits=bits)


def detect(model: WatermarkModel, audio: Audio) -> Detection:
    """Presence score, localized segments and the decoded payload."""
    return read_payload(look(model, audio), model.embed, model.threshold)


def look(model: WatermarkModel, audio: Audio, *, search_all: bool = False) -> Look:
    """The detector's look at ``audio`` on the torch runtime (``_scoring.look_with``);
    ``search_all`` searches the speed of every clip, however it scores at x1.00."""
    with torch.inference_mode(), no_compile():
        head = _folded_head(model)

        def run(x: np.ndarray, bits: bool) -> tuple[np.ndarray, np.ndarray | None]:
            p, out = _run_detector(model, torch.from_numpy(x)[:, None, :], head, bits=bits)
            return p.numpy(), out.numpy() if out is not None else None

        return look_with(run, audio, model.embed, threshold=None if search_all else model.threshold)


@dataclass(frozen=True)
class TorchDetector:
    """A torch model as a ``Detector``: for models without an ONNX detector (official
    AudioSeal checkpoints, cards exported before ONNX)."""

    model: WatermarkModel
    runtime: str = "torch"

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def threshold(self) -> float:
        return self.model.threshold

    @property
    def embed(self) -> EmbedConfig:
        return self.model.embed

    def detect(self, audio: Audio) -> Detection:
        return detect(self.model, audio)

    def look(self, audio: Audio) -> Look:
        return look(self.model, audio)

    def read(self, look: Look) -> Detection:
        return read_payload(look, self.model.embed, self.model.threshold)

    def with_tones(self, tones: tuple[tuple[float, float], ...]) -> TorchDetector:
        embed = dataclasses.replace(self.model.embed, payload_tones=tones)
        return TorchDetector(dataclasses.replace(self.model, embed=embed))


CALIBRATION_MARGIN = 0.05
"""Added to the empirical threshold. Scores of clean audio pile up just under it, and
held-out audio (other voices, rates) shifts that pile: without a margin the shipped
card's threshold gave 3 % FPR on the benchmark's held-out negatives."""


def calibrate(model: WatermarkModel, negatives: list[Audio], *, fpr: float = 1e-3) -> float:
    """A clip-score threshold whose false-positive rate on ``negatives`` is <= ``fpr``.

    It is the empirical ``1 - fpr`` quantile plus :data:`CALIBRATION_MARGIN`. With
    fewer than ``1/fpr`` negatives the quantile cannot resolve the target, so the
    maximum observed score is used instead. Each score is the one detection ends
    with: the best over the clip's speed search, which runs on every negative.
    """
    if not negatives:
        raise ValueError("calibration needs unwatermarked audio")
    scores = []
    for audio in negatives:
        prob = counted(look(model, audio, search_all=True), model.embed, None).prob
        scores.append(0.0 if prob is None else window_score(prob))
    arr = np.sort(np.asarray(scores))
    base = arr[-1] if len(arr) * fpr < 1 else np.quantile(arr, 1 - fpr)
    return float(min(1.0, base + CALIBRATION_MARGIN))
