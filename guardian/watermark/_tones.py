"""The payload as tone pairs, and its matched reader (numpy and scipy only: verify runs
without torch).

Bit ``i`` is carried by one of two neighbouring tones, ``tones[i][0]`` for 0 and
``tones[i][1]`` for 1. Embedding adds the code beside the generator's watermark, shaped
like it and scaled to ``embed.code_snr_db``; the detector finds the watermark
(presence). The reader below compares the two tones of each pair over the frames the
detector marks as watermarked, summing each tone coherently: the code keeps its phase for
the whole clip, speech does not.

Why not the detector's own 16 bit outputs: trained end to end, the payload never got past
two of the 16 bits (bit accuracy 0.58), while a matched reader decodes a tone code
through perceptual codecs (docs/adr/0002-watermark-v13.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from guardian._numeric import median
from guardian.audio import resample_poly
from guardian.watermark._config import SAMPLE_RATE

CODE_PHASE = 7
"""Seed of the tones' starting phases (:func:`code_waveform`). It is fixed, so a reader
knows the phase every tone had where the code began (:attr:`ToneCode.alignment`)."""
MARK_FRAME = 160
"""Samples per frame of the detector's presence (10 ms) that says what to read."""
WINDOW = 3200
"""Reader frame: 200 ms, 5 Hz bins. Every point of the 10 Hz grid sits on a null of the
window around every other one, so tones, noise bins and decoys stay apart."""
HOP = WINDOW // 4
SPEEDS = (1.0, 0.95, 1.05, 0.9, 1.1)
"""Playback-speed factors the reader tries (tones move with the pitch)."""
SPEED_MARGIN = 0.2
"""How much more tonal (mean log coherent power) a changed speed must look to be chosen."""
CLEAR = 3.0
"""Tonality at the unchanged speed past which no other speed is tried: chance gives
about 1, and tones read at a wrong speed are smeared down towards it."""
BLOCK = 256
"""Reader frames transformed at once (about 13 s of audio)."""
NEIGHBOUR = 2
"""How far (in bins: 10 Hz) either side of a tone the noise under it is measured."""
DECOYS = (2, -2, 4)
"""Bin offsets (10, -10 and 20 Hz) of the decoy tones. No code lies there, so their
coherent power is what chance alone gives in this clip."""
WEIGHT_POWER = 0.65
"""A frame counts by its loudness over the noise power under the tone to this power:
the code follows the speech envelope, and a loud noise under a tone says little."""
TAIL = 1.5
"""Scale of the chance model of a pair's difference (Laplace, in units of the decoys'
scale). Coherent powers of speech have heavier tails than a noise's: at 1.5, about 5 %
of the bits read from unwatermarked speech reach a confidence of 0.95
(``benchmarks/watermark_reader.py``)."""
START_STEP = 1e-4
"""Grid (seconds) on which :attr:`ToneCode.alignment` tries where the code began. Tones
on a 10 Hz grid repeat their phases every 0.1 s, so 1,000 starts cover them all."""
DRIFT_STEPS_PER_TURN = 4
"""Steps of the drift search (:func:`read_code`) per turn that the highest tone can slip
over the clip: a slip of an eighth of a turn at most costs under 8 % of its power."""


def start_phases(shape: tuple[int, ...], seed: int = CODE_PHASE) -> np.ndarray:
    """Each tone's phase (radians) where the code begins: what :func:`code_waveform`
    writes and :attr:`ToneCode.alignment` expects."""
    return np.random.default_rng(seed).uniform(0, 2 * math.pi, shape)


def code_waveform(
    tones: Sequence[tuple[float, float]], bits: Sequence[int], n: int, *, phase_seed: int
) -> np.ndarray:
    """The tone code for the message ``bits``: ``n`` samples (float32), unit amplitude per
    tone.

    Phases are fixed per tone (from ``phase_seed``) so that the peak stays low. Tones a
    generator learns are multiples of 50 Hz, so the waveform repeats on its frame grid;
    any whole-hertz tone keeps its phase from one embedding chunk to the next, which is
    what lets :func:`read_bits` sum it coherently.
    """
    freqs = np.asarray(tones, dtype=np.float64)  # nbits x 2
    phase = start_phases(freqs.shape, phase_seed)
    # cycles elapsed, wrapped exactly (in float64) so the waveform repeats to the sample
    cycles = np.mod(freqs[..., None] * np.arange(n), SAMPLE_RATE) / SAMPLE_RATE
    waves = np.cos(2 * math.pi * cycles + phase[..., None]).astype(np.float32)
    msg = np.asarray(bits, dtype=np.float32)
    chosen = np.stack([1 - msg, msg], axis=-1)  # nbits x 2
    return np.asarray(np.einsum("kj,kjn->n", chosen, waves), dtype=np.float32)


@dataclass(frozen=True)
class ToneCode:
    """What :func:`read_code` read of a tone code."""

    bits: list[int]
    confidence: list[float]
    """Per bit, in [0, 1]: ``1 - exp(-|P1 - P0| / TAIL)`` (:func:`read_code`)."""
    alignment: float
    """How well the phases of the bits' tones agree with the code's own starting phases
    (:data:`CODE_PHASE`), at the best of the code's possible starts: ``|sum_k z_k|^2 /
    nbits`` over unit phasors ``z_k``, from 0 to ``nbits``. Phases that owe nothing to the
    code (speech, music, another code) give ``z_k`` independent and uniform, and the best
    of 1,000 starts (:data:`START_STEP`) then reaches 11 about once in 6,900 reads and 12
    once in 67,000 (400,000 draws with the shipped tones); a clip's own code read
    coherently gives 12 to 16."""


def read_bits(
    mono: np.ndarray, marked: np.ndarray, tones: Sequence[tuple[float, float]]
) -> tuple[list[int], list[float]]:
    """The bits of the tone code in ``mono`` and their confidences (:func:`read_code`)."""
    code = read_code(mono, marked, tones)
    return code.bits, code.confidence


def read_code(
    mono: np.ndarray,
    marked: np.ndarray,
    tones: Sequence[tuple[float, float]],
    *,
    speeds: Sequence[float] = SPEEDS,
    drift: float = 0.0,
) -> ToneCode:
    """Decode the tone code from ``mono`` (16 kHz) over the 10 ms frames ``marked`` (bool)
    says are watermarked (all frames if too few are).

    Every tone keeps its phase for the whole clip (:func:`code_waveform`), so the reader
    sums each tone's short-time spectrum over frames *coherently*, turning each frame's
    phase back by the tone's own advance; speech, whose phase at a fixed frequency
    wanders, only adds up incoherently. Bit ``i`` is the stronger tone of pair ``i``.
    Its confidence in [0, 1] is ``1 - exp(-|P1 - P0| / TAIL)``, with ``P`` the two
    tones' coherent powers in units of the scale chance gives them in this clip,
    measured on decoy tones where no code lies. The playback speed is not known, so the
    clip is resampled back from every factor in ``speeds`` and the factor where the
    tones stand out most is kept. Frames are read in blocks: memory does not grow with
    the clip's length.

    ``drift`` (relative) is how far the clip's time scale may still be off, as after a
    speed change undone from an estimate: a tone then slips against its expected phase
    over the clip and no longer adds up. The reader tries drifts over ``+-drift`` on a
    grid fine enough for the highest tone (:data:`DRIFT_STEPS_PER_TURN`) and keeps the
    one where the tones stand out most.
    """
    pairs = np.asarray(tones, dtype=np.float64)
    best = max(_reads(mono, marked, pairs, speeds, drift), key=lambda r: r[0])
    return _decoded(best[1], best[2], pairs)


def read_drifted(
    mono: np.ndarray, marked: np.ndarray, tones: Sequence[tuple[float, float]], drift: float
) -> tuple[ToneCode, ToneCode]:
    """The tone code of ``mono`` read at its own time scale, and at the best of the drifts
    within ``+-drift`` (:func:`read_code`), from one pass over the clip."""
    pairs = np.asarray(tones, dtype=np.float64)
    reads = list(_reads(mono, marked, pairs, (1.0,), drift))
    best = max(reads, key=lambda r: r[0])
    return _decoded(reads[0][1], reads[0][2], pairs), _decoded(best[1], best[2], pairs)


def _reads(
    mono: np.ndarray, marked: np.ndarray, pairs: np.ndarray, speeds: Sequence[float], drift: float
) -> Iterator[tuple[float, np.ndarray, np.ndarray]]:
    """(tonality, powers, coherent sums) of the code's tones (nbits x 2 each) at every
    speed and drift :func:`read_code` tries, the clip's own first; no other speed once
    its own is :data:`CLEAR`."""
    nbits = len(pairs)
    bins = np.rint(pairs.reshape(-1) * WINDOW / SAMPLE_RATE).astype(int)
    probe = np.concatenate([bins, *(bins + d for d in DECOYS)])
    probe = np.clip(probe, NEIGHBOUR, WINDOW // 2 - NEIGHBOUR)
    mono = np.asarray(mono, dtype=np.float64)
    clear = False
    for factor in speeds:
        if clear:
            return
        frac = Fraction(factor).limit_denominator(100)
        x = mono if factor == 1.0 else resample_poly(mono, frac.numerator, frac.denominator)
        for sums, noise in _coherent_sums(x, marked, factor, probe, drift):
            power = np.abs(sums) ** 2 / (noise + 1e-30)
            power = power / (median(power[2 * nbits :]) / math.log(2) + 1e-30)
            code = power[: 2 * nbits].reshape(nbits, 2)
            tonality = float(np.log1p(code.max(axis=1)).mean())
            clear = clear or (factor == 1.0 and tonality >= CLEAR)
            tonality -= 0.0 if factor == 1.0 else SPEED_MARGIN
            yield tonality, code, sums[: 2 * nbits].reshape(nbits, 2)


def _decoded(code: np.ndarray, sums: np.ndarray, pairs: np.ndarray) -> ToneCode:
    """Bits, confidences and alignment from the tones' powers and coherent sums."""
    diff = code[:, 1] - code[:, 0]
    bits = [int(v > 0) for v in diff]
    confidence = [1.0 - math.exp(-abs(float(v)) / TAIL) for v in diff]
    return ToneCode(bits, confidence, _alignment(sums, bits, pairs))


def _alignment(sums: np.ndarray, bits: list[int], pairs: np.ndarray) -> float:
    """:attr:`ToneCode.alignment` of the coherent sums (nbits x 2) at the tones ``bits``
    chose. A code that began at ``t0`` reads tone ``f`` at phase ``phi + 2 pi f t0``."""
    rows = np.arange(len(pairs))
    chosen = sums[rows, bits]
    phase = start_phases(pairs.shape)[rows, bits]
    z = chosen / (np.abs(chosen) + 1e-300) * np.exp(-1j * phase)
    starts = np.arange(0, 0.1, START_STEP)
    turned = np.exp(-2j * math.pi * np.outer(starts, pairs[rows, bits])) @ z
    return float((np.abs(turned) ** 2).max() / len(pairs))


def _coherent_sums(
    x: np.ndarray, marked: np.ndarray, factor: float, probe: np.ndarray, drift: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Coherent sums at FFT bins ``probe`` of ``x`` (the clip resampled back from playback
    at ``factor``, read over the frames ``marked`` trusts), with the noise power under
    them: one pair per drift tried (:func:`read_code`), the first with none."""
    if len(x) < WINDOW:
        x = np.pad(x, (0, WINDOW - len(x)))
    starts = np.arange(0, len(x) - WINDOW + 1, HOP)
    # a reader frame is trusted when most of the 10 ms frames it spans are marked; the
    # marks count in the clip's own time, which the resampling stretched by `factor`
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(marked, dtype=np.float64))])
    lo = np.minimum((starts / factor / MARK_FRAME).astype(int), len(marked))
    hi = np.minimum(((starts + WINDOW) / factor / MARK_FRAME).astype(int), len(marked))
    share = (csum[hi] - csum[lo]) / np.maximum(1, hi - lo)
    keep = share >= 0.5
    if keep.sum() < 4:
        keep[:] = True
    starts = starts[keep]
    freqs = probe * SAMPLE_RATE / WINDOW
    step = 1 / (DRIFT_STEPS_PER_TURN * freqs.max() * len(x) / SAMPLE_RATE)
    half = int(drift / step)  # drifts tried: none, then -half * step to half * step
    window = np.hanning(WINDOW)
    views = sliding_window_view(x, WINDOW)
    # HOP divides WINDOW: from frame to frame a tone on bin k turns k / STEPS of a turn
    steps = WINDOW // HOP
    turns = np.exp(-2j * np.pi * np.arange(steps) / steps)
    coherent = np.zeros((2 * half + 2 if half else 1, len(probe)), dtype=np.complex128)
    noise = np.zeros(len(probe))
    for block in range(0, len(starts), BLOCK):
        at = starts[block : block + BLOCK]
        frames = views[at] * window
        spec = np.fft.rfft(frames, axis=1)
        side = np.abs(spec[:, np.concatenate([probe - NEIGHBOUR, probe + NEIGHBOUR])]) ** 2
        under = (side[:, : len(probe)] + side[:, len(probe) :]) / 2 + 1e-20
        loudness = np.sqrt((frames**2).mean(axis=1, keepdims=True))
        weight = loudness * under**-WEIGHT_POWER
        # turn each frame's phase back by the tone's advance since the clip's start
        turn = turns[np.outer(at // HOP, probe) % steps]
        terms = weight * spec[:, probe] * turn
        noise += (weight**2 * under).sum(axis=0)
        coherent[0] += terms.sum(axis=0)
        if half:
            # at a drift d, tone f has slipped by f * d * t turns at time t
            turns_per_drift = np.outer(at / SAMPLE_RATE, freqs)
            terms = terms * np.exp(2j * np.pi * turns_per_drift * half * step)
            slip = np.exp(-2j * np.pi * turns_per_drift * step)
            for i in range(1, len(coherent)):
                coherent[i] += terms.sum(axis=0)
                terms *= slip
    return [(sums, noise) for sums in coherent]


__all__ = [
    "CODE_PHASE",
    "SPEEDS",
    "ToneCode",
    "code_waveform",
    "read_bits",
    "read_code",
    "read_drifted",
    "start_phases",
]
