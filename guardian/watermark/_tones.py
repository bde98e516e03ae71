"""The payload as tone pairs: the code a generator is taught, and its matched reader.

A generator whose message embedding dominates its latent (every Guardian model) writes
a waveform that repeats every latent frame (320 samples at 16 kHz), so everything it
can say lies on a 50 Hz grid. A tone code uses that grid directly: bit ``i`` is carried
by one of two neighbouring tones, ``tones[i][0]`` for 0 and ``tones[i][1]`` for 1, added
to a message-independent reference waveform that the detector finds (presence). The
generator learns the code by regression (``_train``, mode ``code``); the reader below
compares the two tones of each pair over the frames the detector marks as watermarked.

Why not the detector's own 16 bit outputs: trained end to end, the payload never got past
two of the 16 bits (bit accuracy 0.58), while the generator learns this code in a few
hundred steps and a matched reader decodes it through perceptual codecs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from guardian.watermark._model import SAMPLE_RATE

WINDOW = 1600
"""Reader STFT window (100 ms, 10 Hz bins): one bin per tone, tones 5 bins apart."""
HOP = 400
OVERLAP = WINDOW // HOP
"""Frames per independent window, for the confidence's effective frame count."""
SPEEDS = (1.0, 0.95, 1.05, 0.9, 1.1)
"""Playback-speed factors the reader tries (tones move with the pitch)."""
SPEED_MARGIN = 0.2
"""How much more tonal (mean log ratio) a changed speed must look to be chosen."""
MARK_FRAME = 160
"""Samples per frame of the detector's presence (10 ms) that says what to read."""
BLOCK = 512
"""Reader frames transformed at once (about 13 s of audio)."""


def code_waveform(
    tones: Sequence[tuple[float, float]], msg: torch.Tensor, n: int, *, phase_seed: int
) -> torch.Tensor:
    """The tone code for messages ``msg`` (B, nbits): (B, 1, n), unit amplitude per tone.

    Phases are fixed per tone (from ``phase_seed``) so that the peak stays low; every
    tone is a multiple of 50 Hz, so the waveform repeats on the generator's frame grid.
    """
    freqs = np.asarray(tones, dtype=np.float64)  # nbits x 2
    phase = np.random.default_rng(phase_seed).uniform(0, 2 * math.pi, freqs.shape)
    # cycles elapsed, wrapped exactly (in float64) so the waveform repeats to the sample
    cycles = np.mod(freqs[..., None] * np.arange(n), SAMPLE_RATE) / SAMPLE_RATE
    waves = torch.from_numpy(np.cos(2 * math.pi * cycles + phase[..., None])).float()
    waves = waves.to(msg.device)
    chosen = torch.stack([1 - msg, msg], dim=-1).float()  # B x nbits x 2
    return torch.einsum("bkj,kjn->bn", chosen, waves)[:, None, :]


def _pair_stats(power: np.ndarray, tones: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """Per-frame log ratio of each pair's '1' tone to its '0' tone (frames, nbits), and
    how tonal the pairs look at this speed: the mean log ratio of a pair's stronger
    tone to the bins 20 Hz either side of both (the Hann window's first nulls)."""
    k = np.rint(tones * factor * WINDOW / SAMPLE_RATE).astype(int)  # nbits x 2
    k = np.clip(k, 2, power.shape[1] - 3)  # a tone moved past Nyquist reads the edge
    energy = power[:, k] + 1e-12  # frames x nbits x 2
    between = (power[:, k - 2] + power[:, k + 2]).mean(axis=-1) / 2 + 1e-12
    tonality = float(np.log(energy.max(axis=-1) / between).mean())
    return np.log(energy[..., 1]) - np.log(energy[..., 0]), tonality


def read_bits(
    mono: np.ndarray, marked: np.ndarray, tones: Sequence[tuple[float, float]]
) -> tuple[list[int], list[float]]:
    """Decode the tone code from ``mono`` (16 kHz) over the 10 ms frames ``marked`` (bool)
    says are watermarked (all frames if too few are).

    Returns the bits and, per bit, a confidence in [0, 1]: ``2 Phi(|z|) - 1``, with ``z``
    the mean log ratio over its standard error. The playback speed is not known, so every
    factor in :data:`SPEEDS` is tried and the one where the tones stand out most is kept.
    Frames are read in blocks: memory does not grow with the clip's length.
    """
    pairs = np.asarray(tones, dtype=np.float64)
    if len(mono) < WINDOW:
        mono = np.pad(mono, (0, WINDOW - len(mono)))
    starts = np.arange(0, len(mono) - WINDOW + 1, HOP)
    # a reader frame is trusted when most of the 10 ms frames it spans are marked
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(marked, dtype=np.float64))])
    lo = np.minimum(starts // MARK_FRAME, len(marked))
    hi = np.minimum((starts + WINDOW) // MARK_FRAME, len(marked))
    share = (csum[hi] - csum[lo]) / np.maximum(1, hi - lo)
    keep = share >= 0.5
    if keep.sum() < 2 * OVERLAP:
        keep[:] = True
    starts = starts[keep]
    window = np.hanning(WINDOW)
    total = np.zeros((len(SPEEDS), 3, len(pairs)))  # per speed: count, sum, sum of squares
    tonal = np.zeros(len(SPEEDS))
    for block in range(0, len(starts), BLOCK):
        frames = np.stack([mono[i : i + WINDOW] for i in starts[block : block + BLOCK]])
        spec = np.fft.rfft(frames * window, axis=1)
        power = spec.real**2 + spec.imag**2
        for j, factor in enumerate(SPEEDS):
            stats, tonality = _pair_stats(power, pairs, factor)
            total[j] += np.stack([np.full(len(pairs), len(stats)), stats.sum(0), (stats**2).sum(0)])
            tonal[j] += tonality * len(stats)
    # another speed must look clearly more tonal than the unchanged one to be chosen
    margin = np.array([0.0 if f == 1.0 else SPEED_MARGIN for f in SPEEDS])
    count, s1, s2 = total[int(np.argmax(tonal / len(starts) - margin))]
    mean = s1 / count
    std = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
    z = mean / (std / math.sqrt(max(1.0, count[0] / OVERLAP)) + 1e-9)
    bits = [int(v > 0) for v in z]
    confidence = [math.erf(abs(float(v)) / math.sqrt(2)) for v in z]
    return bits, confidence


__all__ = ["SPEEDS", "code_waveform", "read_bits"]
