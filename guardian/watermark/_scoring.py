"""From the detector's presence to a result: chunks, the detector's view, the clip score,
segments and the payload. Numpy and scipy only, shared by both detector runtimes.

A runtime supplies one function, the presence of a batch of equally long chunks already
in the detector's view (:func:`detector_view`); :func:`look_with` and
:func:`read_payload` do the rest, so the torch path (``_detect``) and the ONNX Runtime
path (``_onnx``) cannot drift apart. The look needs no key and the read does, which lets
``verify`` look at a clip while the deployment's keys are still being opened.
"""

from __future__ import annotations

import dataclasses
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
from guardian.watermark._tones import ToneCode, read_code, read_drifted

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
    speed: float = 1.0
    """The playback speed change undone to find the watermark (1.0: none)."""

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
    speed: float = 1.0
    """The playback speed this look undid: ``mono`` and ``prob`` are of the clip slowed
    back down by this factor (:func:`speed_candidates`)."""
    others: tuple[Look, ...] = ()
    """Looks at the clip with a candidate speed change undone, for :func:`counted`."""
    code: ToneCode | None = None
    """The tone code that confirmed this look at an undone speed change (:func:`counted`),
    so that the payload is not read from it a second time."""


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


SPEED_RANGE = (0.76, 1.30)
"""Playback speeds the search covers (x0.76 to x1.30)."""
SPEED_STEP = 2e-5
SPEED_NEAR_ONE = 1e-3
"""A speed this close to x1.00 is what the first look already read."""
SPEED_CANDIDATES = 3
SPEED_MIN_STRENGTH = 20.0
"""Summed whitened power at the model's lines below which no speed is tried: it only
saves work (speech without a watermark reached 10-15 on development clips, watermarked
speech at a changed speed 29-230), the tone code decides (:func:`_confirmed`)."""
SPEED_DRIFT = 2e-4
"""How far (relative) a speed found by the search may still be off: the tone code is read
trying drifts this large (:func:`read_code`). Found speeds were off by up to 1.2e-4 on
development clips, and 4e-5 already costs an 8 s clip a few of its confident bits."""
SPEED_CONFIRM_BITS = 12
"""Bits of the tone code that must read with confidence for a look at an undone speed
change to count. The detector reads narrow lines near 1.6 kHz, so slowing tonal audio
(music, drones) until one of its tones lands there can make it fire; 12 confident bits
by chance, at 4.7 % a bit, happen about once in 10^12 clips of speech; tonal music
reached 11 on development clips."""
SPEED_CONFIRM_ALIGNMENT = 11.0
"""Or the tone code's phases must agree with its starting phases this well
(:attr:`ToneCode.alignment`, at most 16): by chance about once in 6,900 reads, and a
look is read twice (:func:`_confirmed`). Short clips read too few confident bits, but
their tones' phases still line up: 3 s development clips gave 12 to 15 with 7 to 11
confident bits, while the restored looks of generated negatives that reached the
threshold gave 8.6 at most (``research/watermark_alignment.py``)."""
SPEED_SEGMENT = 8 * SAMPLE_RATE
SPEED_MOST = 64 * SAMPLE_RATE
"""Audio the speed search reads at most: it keeps memory bounded, and a watermark is
found in any 64 s."""


def speed_strength(mono: np.ndarray, lines_hz: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Playback speeds on a fine grid over :data:`SPEED_RANGE`, and how strongly
    ``lines_hz`` (the narrow spectral lines of the model's presence watermark) stand out
    in ``mono`` (16 kHz) moved by each.

    A speed change moves every line by its factor, and the detector reads its lines to
    within about 0.2 %, so a clip played x0.95 looks unwatermarked. Here the clip is
    band-limited and divided by its 20 ms envelope (the watermark follows the speech's
    loudness; dividing it out sharpens the lines); its power spectrum is averaged over
    segments of up to 8 s and whitened against +-20 Hz around each bin (without the
    central +-2 Hz). A speed scores the summed whitened power at the lines it moves.
    """
    x = np.asarray(mono[:SPEED_MOST], dtype=np.float64)
    f = np.fft.rfftfreq(len(x), d=1 / SAMPLE_RATE)
    band = _sigmoid((f - 500) / BAND_EDGE_HZ) * _sigmoid((3600 - f) / BAND_EDGE_HZ)
    x = np.fft.irfft(np.fft.rfft(x) * band, n=len(x))
    width = 2 * FRAME + 1
    env = np.sqrt(np.maximum(_moving_sum(x * x, width) / width, 0) + _EPS)
    x = x / np.maximum(env, env.max() * 10 ** (-35 / 20))
    n = min(SPEED_SEGMENT, len(x))
    size = 1 << int(np.ceil(np.log2(2 * n)))
    window = np.hanning(n)
    power = np.zeros(size // 2 + 1)
    for start in range(0, len(x) - n + 1, n // 2):
        power += np.abs(np.fft.rfft(x[start : start + n] * window, size)) ** 2
    bin_hz = SAMPLE_RATE / size
    # Only the bins the lines can move to, and their surroundings, are whitened.
    lo = max(0, int((min(lines_hz) * SPEED_RANGE[0] - 60) / bin_hz))
    hi = min(len(power), int((max(lines_hz) * SPEED_RANGE[1] + 60) / bin_hz) + 2)
    power = power[lo:hi]
    wide, narrow = int(40 / bin_hz) | 1, int(4 / bin_hz) | 1
    ring = _moving_sum(power, wide) - _moving_sum(power, narrow)
    white = power / (ring / (wide - narrow) + _EPS)
    white = np.maximum(white, np.maximum(np.roll(white, 1), np.roll(white, -1)))
    speeds = np.arange(*SPEED_RANGE, SPEED_STEP)
    at = np.outer(speeds, lines_hz) / bin_hz - lo
    return speeds, np.interp(at, np.arange(len(white)), white).sum(axis=1)


def _moving_sum(v: np.ndarray, width: int) -> np.ndarray:
    """Sums of ``v`` over centred windows of odd ``width``, edges reflected (numpy only:
    scipy would cost ``verify`` its import)."""
    half = width // 2
    total = np.concatenate([[0.0], np.cumsum(np.pad(v, (half, half), mode="reflect"))])
    return np.asarray(total[width:] - total[:-width])


def speed_candidates(mono: np.ndarray, lines_hz: tuple[float, ...]) -> list[float]:
    """Up to :data:`SPEED_CANDIDATES` speeds at least 0.3 % apart, best first, that
    score :data:`SPEED_MIN_STRENGTH` or more in :func:`speed_strength` and are not within
    :data:`SPEED_NEAR_ONE` of x1.00."""
    speeds, strength = speed_strength(mono, lines_hz)
    strong = np.flatnonzero(strength >= SPEED_MIN_STRENGTH)
    out: list[float] = []
    for i in strong[np.argsort(strength[strong])[::-1]]:
        f = float(speeds[i])
        if all(abs(f / g - 1) > 3e-3 for g in out):
            out.append(f)
            if len(out) == SPEED_CANDIDATES:
                break
    return [f for f in out if abs(f - 1) > SPEED_NEAR_ONE]


def slowed(mono: np.ndarray, factor: float) -> np.ndarray:
    """``mono`` played ``factor`` times slower (longer, lower): the inverse of a speed-up."""
    n = len(mono)
    m = max(1, round(n * factor))
    spectrum = np.fft.rfft(mono)[: m // 2 + 1]  # slowing down adds no content above
    spectrum = np.pad(spectrum, (0, m // 2 + 1 - len(spectrum)))
    return np.asarray(np.fft.irfft(spectrum, m) * (m / n), dtype=np.float32)


def look_with(
    run: BatchPresence,
    audio: Audio,
    cfg: EmbedConfig,
    *,
    threshold: float | None = None,
    batch: int = 1,
    workers: int = 1,
) -> Look:
    """The detector's look at ``audio`` (``batch`` and ``workers`` as in :func:`presence`).

    If the clip scores under ``threshold`` and the model has spectral lines
    (``cfg.speed_lines_hz``), its first :data:`SPEED_MOST` samples are also read slowed
    back down by each of its :func:`speed_candidates` (``others``; :func:`counted` decides
    which look counts). Without ``threshold`` the search always runs (what calibration
    needs: the threshold must hold for the search's final score).
    """
    mono = prepared(audio)
    if isinstance(mono, str):
        return Look(None, None, note=mono)
    bits = cfg.payload_tones is None
    prob, logits = presence(run, mono, cfg, bits=bits, batch=batch, workers=workers)
    if cfg.speed_lines_hz is None or (threshold is not None and window_score(prob) >= threshold):
        return Look(mono, prob, logits)
    others = []
    for factor in speed_candidates(mono, cfg.speed_lines_hz):
        restored = slowed(mono[:SPEED_MOST], factor)
        p, out = presence(run, restored, cfg, bits=bits, batch=batch, workers=workers)
        others.append(Look(restored, p, out, speed=factor))
    return Look(mono, prob, logits, others=tuple(others))


def _confirmed(look: Look, cfg: EmbedConfig) -> ToneCode | None:
    """The tone code of ``look`` (at an undone speed change) read with the drift search,
    if it reads :data:`SPEED_CONFIRM_BITS` bits with confidence or tones whose phases
    agree with the code's (:data:`SPEED_CONFIRM_ALIGNMENT`): read as it is, or with the
    drift search, which picks its drift by how tonal the code looks and can lose a short
    clip's phases. None when neither read confirms it."""
    if cfg.payload_tones is None or look.mono is None or look.prob is None:
        return None
    reads = read_drifted(look.mono, look.prob > 0.5, cfg.payload_tones, SPEED_DRIFT)
    for code in reads:
        confident = sum(c >= MIN_TONE_CONFIDENCE for c in code.confidence)
        if confident >= SPEED_CONFIRM_BITS or code.alignment >= SPEED_CONFIRM_ALIGNMENT:
            return reads[1]
    return None


def counted(look: Look, cfg: EmbedConfig, threshold: float | None) -> Look:
    """The look a detection reports: the clip as it is, unless it scores under
    ``threshold`` and a look with a speed change undone scores higher, at or above
    ``threshold``, with its tone code confirmed under ``cfg``'s tones. Without
    ``threshold`` (calibration), the best-scoring of the clip and its confirmed looks."""
    if look.prob is None:
        return look
    best, best_score = look, window_score(look.prob)
    if threshold is not None and best_score >= threshold:
        return look
    for other in look.others:
        score = window_score(other.prob) if other.prob is not None else 0.0
        high = threshold is None or score >= threshold
        if score > best_score and high and (code := _confirmed(other, cfg)) is not None:
            best, best_score = dataclasses.replace(other, code=code), score
    return best


def read_payload(look: Look, cfg: EmbedConfig, threshold: float) -> Detection:
    """Score, localized segments and the payload from a :class:`Look` (the one
    :func:`counted` picks), with the tones of ``cfg``."""
    look = counted(look, cfg, threshold)
    mono, prob = look.mono, look.prob
    if mono is None or prob is None:
        return Detection(False, 0.0, threshold, note=look.note)
    score = window_score(prob)
    detected = score >= threshold
    region = prob > 0.5
    tones = cfg.payload_tones  # set: the payload is a tone code
    if tones is not None:
        code = look.code if look.code is not None else read_code(mono, region, tones)
        bits, conf = code.bits, code.confidence
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
        segments=[
            Segment(s.start_s / look.speed, s.end_s / look.speed)  # in the clip's own time
            for s in segments(prob, threshold)
        ]
        if detected
        else [],
        confidence_floor=floor,
        speed=look.speed,
    )
