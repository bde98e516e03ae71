"""From the detector's presence to a result: chunks, the detector's view, the clip score,
segments and the payload. Numpy and scipy only, shared by both detector runtimes.

A runtime supplies one function, the presence of a batch of equally long chunks already
in the detector's view (:func:`detector_view`); :func:`look_with` and
:func:`read_payload` do the rest, so the torch path (``_detect``) and the ONNX Runtime
path (``_onnx``) cannot drift apart. The look needs no key and the read does, which lets
``verify`` look at a clip while the deployment's keys are still being opened.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from guardian.audio import Audio, resample
from guardian.watermark._config import (
    BAND_EDGE_HZ,
    DETECTOR_RMS,
    SAMPLE_RATE,
    EmbedConfig,
)
from guardian.watermark._payload import NBITS, Payload
from guardian.watermark._tones import read_bits

MIN_SECONDS = 0.5
CONTEXT_S = 1.0
"""Most context either side of a detection chunk."""
WINDOW_S = 1.0
"""Clip score = the best mean presence over any window of this length."""
SILENCE_RMS = 10 ** (-60 / 20)
MIN_BIT_CONFIDENCE = 0.25
"""tanh(|mean bit logit|) below this marks a bit as too unclear to trust."""
MIN_TONE_CONFIDENCE = 0.95
"""The same for a tone code's bit confidence (``_tones.read_bits``). By chance 4.7 % of
the bits of unwatermarked speech reach it and no clip's 16 do; of the shipped model's bits
read from watermarked speech, 2 in 768 reach it wrong (``benchmarks/watermark_reader.py``)."""
FRAME = SAMPLE_RATE // 100
"""Detector output is pooled to 10 ms frames, so a 10-minute clip needs a few MB."""
_EPS = 1e-8
_T = TypeVar("_T")
_R = TypeVar("_R")


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


@dataclass(frozen=True)
class Look:
    """What the detector saw of a clip before its payload is read: presence per 10 ms
    frame, needing no key (a deployment's key only moves the tones :func:`read_payload`
    reads)."""

    mono: np.ndarray | None
    """The clip as the detector read it (mono, 16 kHz, no DC); None with a ``note``."""
    prob: np.ndarray | None
    logits: np.ndarray | None = None
    """Per-frame bit logits, for a payload that is not a tone code."""
    note: str | None = None
    """Why nothing could be read from the clip."""


class Detector(Protocol):
    """What ``verify`` needs of a watermark detector, whichever runtime runs it."""

    @property
    def model_id(self) -> str: ...

    @property
    def threshold(self) -> float: ...

    @property
    def embed(self) -> EmbedConfig: ...

    @property
    def runtime(self) -> str:
        """``onnx`` or ``torch``."""
        ...

    def detect(self, audio: Audio) -> Detection:
        """``read(look(audio))``."""
        ...

    def look(self, audio: Audio) -> Look:
        """The detector's look at ``audio``: the model's work, no key involved."""
        ...

    def read(self, look: Look) -> Detection:
        """The detection from a look this model took, payload read with these tones."""
        ...

    def with_tones(self, tones: tuple[tuple[float, float], ...]) -> Detector:
        """The same detector reading the payload at other tone frequencies."""
        ...


BatchPresence = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]
"""(B, T) chunks in the detector's view, and whether bit logits are wanted, to presence
(B, T) and bit logits (B, NBITS, T) or None."""


def mono16k(audio: Audio) -> np.ndarray:
    return resample(audio.mono(), audio.sample_rate, SAMPLE_RATE)


def detector_view(x: np.ndarray, cfg: EmbedConfig) -> np.ndarray:
    """What the detector sees of ``x`` (..., T): the watermark's band, at a fixed loudness.

    The numpy twin of ``_signal.detector_input`` (the same soft-edged FFT filter and RMS
    scaling); the tests hold the two together.
    """
    x = np.asarray(x, dtype=np.float32)
    if cfg.band_hz is not None:
        n = x.shape[-1]
        f = np.fft.rfftfreq(n, d=1 / SAMPLE_RATE).astype(np.float32)
        lo, hi = cfg.band_hz
        gain = _sigmoid((f - lo) / BAND_EDGE_HZ) * _sigmoid((hi - f) / BAND_EDGE_HZ)
        x = np.fft.irfft(np.fft.rfft(x, axis=-1) * gain, n=n, axis=-1).astype(np.float32)
    rms = np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + _EPS)
    return np.asarray(x * (DETECTOR_RMS / rms), dtype=np.float32)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1 + np.tanh(0.5 * v)), dtype=np.float32)


@dataclass(frozen=True)
class Chunk:
    """A detection chunk: what is kept (``start``-``stop``), read with context
    (``lo``-``hi``), in samples at 16 kHz."""

    start: int
    stop: int
    lo: int
    hi: int


def chunks(n: int, chunk_s: float) -> list[Chunk]:
    """Chunks ``chunk_s`` long with an eighth of that (at most ``CONTEXT_S``) of context
    either side: the detector's LSTM was trained on short segments."""
    chunk, ctx = int(chunk_s * SAMPLE_RATE), int(min(CONTEXT_S, chunk_s / 8) * SAMPLE_RATE)
    out = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out.append(Chunk(start, stop, max(0, start - ctx), min(n, stop + ctx)))
    return out


def _batches(spans: list[Chunk], most: int) -> Iterator[list[Chunk]]:
    """Chunks of equal length together, at most ``most`` at a time: a batch is exactly
    what the detector would see one by one (no padding)."""
    by_length: dict[int, list[Chunk]] = {}
    for c in spans:
        by_length.setdefault(c.hi - c.lo, []).append(c)
    for group in by_length.values():
        for i in range(0, len(group), most):
            yield group[i : i + most]


def pool(values: np.ndarray) -> np.ndarray:
    """(..., samples) -> (..., 10 ms frames), the last frame padded with its edge."""
    pad = (-values.shape[-1]) % FRAME
    v = np.pad(values, [(0, 0)] * (values.ndim - 1) + [(0, pad)], mode="edge")
    pooled: np.ndarray = v.reshape(*v.shape[:-1], -1, FRAME).mean(axis=-1)
    return pooled


def in_order(fn: Callable[[_T], _R], items: Iterable[_T], workers: int) -> Iterator[_R]:
    """``map(fn, items)``, on ``workers`` threads when more than one: results come in
    the order of ``items``, with at most two per thread in flight, so memory stays
    bounded however many items there are."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="guardian-detect") as threads:
        pending: deque[Future[_R]] = deque()
        for item in items:
            pending.append(threads.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def presence(
    run: BatchPresence,
    mono: np.ndarray,
    cfg: EmbedConfig,
    *,
    bits: bool,
    batch: int = 1,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Frame-level presence probability and, with ``bits``, per-frame bit logits.

    The clip is read in overlapping chunks (:func:`chunks`), ``batch`` equally long ones
    per call of ``run``, and only pooled per-frame results are kept: memory is constant
    in the clip length apart from the 10 ms frame arrays. With ``workers`` > 1, that
    many batches are read at once (``run`` must then be thread-safe); each chunk is read
    alone, so the result is the same.
    """
    n = len(mono)
    n_frames = -(-n // FRAME)
    prob = np.zeros(n_frames, dtype=np.float32)
    logits = np.zeros((NBITS, n_frames), dtype=np.float32) if bits else None

    def read(group: list[Chunk]) -> tuple[list[Chunk], np.ndarray, np.ndarray | None]:
        x = np.stack([detector_view(mono[c.lo : c.hi], cfg) for c in group])
        return (group, *run(x, bits))

    groups = _batches(chunks(n, cfg.detect_chunk_s), batch)
    for group, p, out in in_order(read, groups, workers):
        for i, c in enumerate(group):
            keep = slice(c.start - c.lo, c.stop - c.lo)
            frames = pool(p[i, keep])
            f0 = c.start // FRAME
            prob[f0 : f0 + len(frames)] = frames
            if logits is not None and out is not None:
                logits[:, f0 : f0 + len(frames)] = pool(out[i, :, keep])
    return prob, logits


def window_score(prob: np.ndarray) -> float:
    """Best mean presence over any ``WINDOW_S`` window (the whole clip if shorter)."""
    w = int(WINDOW_S * SAMPLE_RATE) // FRAME
    if len(prob) <= w:
        return float(prob.mean())
    c = np.concatenate([[0.0], np.cumsum(prob, dtype=np.float64)])
    starts = np.arange(0, len(prob) - w + 1, 5)
    return float(((c[starts + w] - c[starts]) / w).max())


def segments(prob: np.ndarray, threshold: float) -> list[Segment]:
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


def prepared(audio: Audio) -> np.ndarray | str:
    """The clip mixed to mono at 16 kHz without its DC offset, or why nothing can be
    read from it."""
    if audio.duration < MIN_SECONDS:
        return f"too short to carry a watermark (< {MIN_SECONDS} s)"
    mono = mono16k(audio)
    mono = mono - float(mono.mean())  # a DC offset says nothing about the watermark
    if float(np.sqrt(np.mean(mono**2))) < SILENCE_RMS:
        return "silent: no signal that could carry a watermark"
    return mono


def look_with(
    run: BatchPresence, audio: Audio, cfg: EmbedConfig, *, batch: int = 1, workers: int = 1
) -> Look:
    """The detector's look at ``audio`` (``batch`` and ``workers`` as in :func:`presence`)."""
    mono = prepared(audio)
    if isinstance(mono, str):
        return Look(None, None, note=mono)
    bits = cfg.payload_tones is None
    prob, logits = presence(run, mono, cfg, bits=bits, batch=batch, workers=workers)
    return Look(mono, prob, logits)


def read_payload(look: Look, cfg: EmbedConfig, threshold: float) -> Detection:
    """Score, localized segments and the payload from a :class:`Look`, with the tones of
    ``cfg``."""
    mono, prob = look.mono, look.prob
    if mono is None or prob is None:
        return Detection(False, 0.0, threshold, note=look.note)
    score = window_score(prob)
    detected = score >= threshold
    region = prob > 0.5
    tones = cfg.payload_tones  # set: the payload is a tone code
    if tones is not None:
        bits, conf = read_bits(mono, region, tones)
        floor = MIN_TONE_CONFIDENCE
    else:
        if look.logits is None:
            raise ValueError("this look has no bit logits: it was taken for a tone code")
        floor = MIN_BIT_CONFIDENCE
        weights = region if region.sum() >= 10 else np.ones_like(region)
        mean_logits = (look.logits * weights).sum(axis=1) / max(1, int(weights.sum()))
        bits = [int(v > 0) for v in mean_logits]
        conf = [float(abs(np.tanh(v))) for v in mean_logits]
    return Detection(
        detected=detected,
        score=score,
        threshold=threshold,
        payload=Payload.from_bits(bits) if detected else None,
        bits=bits,
        bit_confidence=conf,
        segments=segments(prob, threshold) if detected else [],
        confidence_floor=floor,
    )
