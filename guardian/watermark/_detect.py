"""Embedding and detection on real clips: any rate, any length, constant memory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from guardian.audio import Audio, resample
from guardian.errors import WatermarkError
from guardian.watermark._model import SAMPLE_RATE, WatermarkModel, no_compile
from guardian.watermark._payload import NBITS, Payload
from guardian.watermark._signal import detector_input, shape_watermark
from guardian.watermark._tones import code_waveform, read_bits

MIN_SECONDS = 0.5
CODE_PHASE = 7
"""Phase seed of the tone code that embedding adds (``embed.code_snr_db``)."""
CHUNK_S = 10.0
"""Embedding chunk; detection chunks are the model's ``embed.detect_chunk_s``."""
CONTEXT_S = 1.0
"""Most context either side of a detection chunk."""
WINDOW_S = 1.0
"""Clip score = the best mean presence over any window of this length."""
_SILENCE_RMS = 10 ** (-60 / 20)
MIN_BIT_CONFIDENCE = 0.25
"""tanh(|mean bit logit|) below this marks a bit as too unclear to trust."""
MIN_TONE_CONFIDENCE = 0.95
"""The same for a tone code's bit confidence (``_tones.read_bits``). By chance 4.7 % of
the bits of unwatermarked speech reach it and no clip's 16 do; of the shipped model's bits
read from watermarked speech, 2 in 768 reach it wrong (``benchmarks/watermark_reader.py``)."""


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Detection:
    """What the detector found in a clip; ``detected`` uses the calibrated threshold."""

    detected: bool
    score: float
    threshold: float
    payload: Payload | None = None
    bit_confidence: list[float] = field(default_factory=list)
    bits: list[int] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    note: str | None = None
    confidence_floor: float = MIN_BIT_CONFIDENCE
    """The bit confidence below which a bit is too unclear to act on."""

    def __bool__(self) -> bool:
        return self.detected

    @property
    def payload_confident(self) -> bool:
        """Whether every decoded bit is clear enough to act on the deployment tag."""
        return (
            self.payload is not None
            and min(self.bit_confidence, default=0.0) >= self.confidence_floor
        )


def _mono16k(audio: Audio) -> np.ndarray:
    return resample(audio.mono(), audio.sample_rate, SAMPLE_RATE)


def embed(model: WatermarkModel, audio: Audio, payload: Payload) -> Audio:
    """Add the watermark to every channel; the rest of the signal is untouched."""
    if model.generator is None:
        raise WatermarkError(f"model {model.model_id} has no generator: it can only detect")
    if audio.duration < MIN_SECONDS:
        raise WatermarkError(f"audio is too short to carry a watermark (< {MIN_SECONDS} s)")
    mono = _mono16k(audio)
    msg = torch.tensor([payload.bits()])
    wm = np.zeros_like(mono)
    chunk = int(CHUNK_S * SAMPLE_RATE)
    cfg = model.embed
    code_cfg = dataclasses.replace(cfg, spectral_mask_power=cfg.code_mask_power)
    with torch.inference_mode(), no_compile():
        for start in range(0, len(mono), chunk):
            seg = torch.from_numpy(mono[start : start + chunk])[None, None, :]
            if seg.shape[-1] < SAMPLE_RATE // 10:  # a tail too short for the encoder
                break
            raw = model.generator.get_watermark(seg, message=msg)
            mark = shape_watermark(raw, seg, cfg)
            if cfg.code_snr_db is not None and cfg.payload_tones is not None:
                # whole-hertz tones run a whole number of cycles per chunk: no seam
                code = code_waveform(cfg.payload_tones, msg, seg.shape[-1], phase_seed=CODE_PHASE)
                mark = mark + shape_watermark(code, seg, code_cfg, snr_db=cfg.code_snr_db)
            wm[start : start + seg.shape[-1]] = mark[0, 0].numpy()
    wm_native = resample(wm, SAMPLE_RATE, audio.sample_rate)[: audio.frames]
    marked = audio.samples + wm_native[:, None]
    peak = float(np.abs(marked).max())
    if peak > 1.0:  # never clip: scale the whole clip down a little instead
        marked = marked / peak * 0.999
    return Audio(marked.astype(np.float32), audio.sample_rate, audio.container)


FRAME = SAMPLE_RATE // 100
"""Detector output is pooled to 10 ms frames, so a 10-minute clip needs a few MB."""


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
    """Frame-level presence probability and, with ``bits``, per-frame bit logits.

    The clip is processed in overlapping chunks (``embed.detect_chunk_s`` long, with an
    eighth of that, at most ``CONTEXT_S``, either side) and only pooled per-frame
    results are kept: memory is constant in the clip length apart from the 10 ms frame
    arrays. ``fold=False`` runs the detector whole instead of through
    :func:`_folded_head` (the reference ``benchmarks/detect_speed.py`` times it against).
    """
    n = len(mono)
    n_frames = -(-n // FRAME)
    prob = np.zeros(n_frames, dtype=np.float32)
    logits = np.zeros((NBITS, n_frames), dtype=np.float32) if bits else None
    chunk_s = model.embed.detect_chunk_s
    chunk, ctx = int(chunk_s * SAMPLE_RATE), int(min(CONTEXT_S, chunk_s / 8) * SAMPLE_RATE)

    def pool(values: torch.Tensor) -> np.ndarray:  # (..., samples) -> (..., 10 ms frames)
        v = values.numpy()
        pad = (-v.shape[-1]) % FRAME
        v = np.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, pad)], mode="edge")
        pooled: np.ndarray = v.reshape(*v.shape[:-1], -1, FRAME).mean(axis=-1)
        return pooled

    with torch.inference_mode(), no_compile():
        head = _folded_head(model) if fold else None
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            lo, hi = max(0, start - ctx), min(n, stop + ctx)
            seg = torch.from_numpy(np.ascontiguousarray(mono[lo:hi]))[None, None, :]
            p, out = _run_detector(model, detector_input(seg, model.embed), head, bits=bits)
            keep = slice(start - lo, stop - lo)
            frames = pool(p[0, keep])
            f0 = start // FRAME
            prob[f0 : f0 + len(frames)] = frames
            if logits is not None and out is not None:
                logits[:, f0 : f0 + len(frames)] = pool(out[0, :, keep])
    return prob, logits


def window_score(prob: np.ndarray) -> float:
    """Best mean presence over any ``WINDOW_S`` window (the whole clip if shorter)."""
    w = int(WINDOW_S * SAMPLE_RATE) // FRAME
    if len(prob) <= w:
        return float(prob.mean())
    c = np.concatenate([[0.0], np.cumsum(prob, dtype=np.float64)])
    starts = np.arange(0, len(prob) - w + 1, 5)
    return float(((c[starts + w] - c[starts]) / w).max())


def _segments(prob: np.ndarray, threshold: float) -> list[Segment]:
    """Runs of 0.1 s frames with presence above 0.5, at least 0.3 s long, whose mean
    presence reaches the clip ``threshold`` (a short run of unwatermarked speech can
    cross 0.5; the calibrated threshold is what keeps false positives rare)."""
    per = 10  # frames per 0.1 s
    tenths = prob[: len(prob) // per * per].reshape(-1, per).mean(axis=1)
    out: list[Segment] = []
    start = None
    for i, on in enumerate([*(tenths > 0.5), False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            if i - start >= 3 and tenths[start:i].mean() >= threshold:
                out.append(Segment(start / 10, i / 10))
            start = None
    return out


def detect(model: WatermarkModel, audio: Audio) -> Detection:
    """Presence score, localized segments and the decoded payload."""
    thr = model.threshold
    if audio.duration < MIN_SECONDS:
        note = f"too short to carry a watermark (< {MIN_SECONDS} s)"
        return Detection(False, 0.0, thr, note=note)
    mono = _mono16k(audio)
    mono = mono - float(mono.mean())  # a DC offset says nothing about the watermark
    if float(np.sqrt(np.mean(mono**2))) < _SILENCE_RMS:
        return Detection(False, 0.0, thr, note="silent: no signal that could carry a watermark")
    tones = model.embed.payload_tones  # set: the payload is a tone code
    prob, logits = _presence(model, mono, bits=tones is None)
    score = window_score(prob)
    detected = score >= thr
    region = prob > 0.5
    if tones is not None:
        bits, conf = read_bits(mono, region, tones)
        floor = MIN_TONE_CONFIDENCE
    else:
        assert logits is not None
        floor = MIN_BIT_CONFIDENCE
        weights = region if region.sum() >= 10 else np.ones_like(region)
        mean_logits = (logits * weights).sum(axis=1) / max(1, int(weights.sum()))
        bits = [int(v > 0) for v in mean_logits]
        conf = [float(abs(np.tanh(v))) for v in mean_logits]
    return Detection(
        detected=detected,
        score=score,
        threshold=thr,
        payload=Payload.from_bits(bits) if detected else None,
        bits=bits,
        bit_confidence=conf,
        segments=_segments(prob, thr) if detected else [],
        confidence_floor=floor,
    )


CALIBRATION_MARGIN = 0.05
"""Added to the empirical threshold. Scores of clean audio pile up just under it, and
held-out audio (other voices, rates) shifts that pile: without a margin the shipped
card's threshold gave 3 % FPR on the benchmark's held-out negatives."""


def calibrate(model: WatermarkModel, negatives: list[Audio], *, fpr: float = 1e-3) -> float:
    """A clip-score threshold whose false-positive rate on ``negatives`` is <= ``fpr``.

    It is the empirical ``1 - fpr`` quantile plus :data:`CALIBRATION_MARGIN`. With
    fewer than ``1/fpr`` negatives the quantile cannot resolve the target, so the
    maximum observed score is used instead.
    """
    if not negatives:
        raise ValueError("calibration needs unwatermarked audio")
    scores = []
    for audio in negatives:
        mono = _mono16k(audio)
        prob, _ = _presence(model, mono - float(mono.mean()), bits=False)
        scores.append(window_score(prob))
    arr = np.sort(np.asarray(scores))
    base = arr[-1] if len(arr) * fpr < 1 else np.quantile(arr, 1 - fpr)
    return float(min(1.0, base + CALIBRATION_MARGIN))
