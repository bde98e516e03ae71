"""A deterministic speech-like test signal (no TTS needed).

A glottal pulse train with a wandering pitch, shaped by three formant
resonators that move every syllable, with syllable envelopes and pauses.
It is not speech, but it has speech's spectral and temporal structure, which
is what fingerprinting and codecs care about.
"""

from __future__ import annotations

import numpy as np

_VOWELS = [
    (730, 1090, 2440),
    (270, 2290, 3010),
    (530, 1840, 2480),
    (300, 870, 2240),
    (660, 1720, 2410),
    (440, 1020, 2240),
    (490, 1350, 1690),
]


def _resonator(x: np.ndarray, freq: float, bw: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bw / sr)
    theta = 2 * np.pi * freq / sr
    a = [1.0, -2 * r * np.cos(theta), r * r]
    from scipy.signal import lfilter  # slow to import: on first use

    return np.asarray(lfilter([1.0 - r], a, x))


def speechlike(seconds: float, *, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Return mono float32 samples in [-1, 1] of a speech-like signal."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    out = np.zeros(n, dtype=np.float64)
    base_f0 = rng.uniform(95, 210)
    pos = 0
    while pos < n:
        syl = int(rng.uniform(0.12, 0.32) * sample_rate)
        seg = min(syl, n - pos)
        t = np.arange(seg) / sample_rate
        f0 = base_f0 * (1 + 0.12 * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 6)))
        phase = np.cumsum(f0 / sample_rate)
        pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
        source = pulses + 0.02 * rng.standard_normal(seg)
        f1, f2, f3 = _VOWELS[int(rng.integers(len(_VOWELS)))]
        voiced = sum(_resonator(source, f, 60 + f / 20, sample_rate) for f in (f1, f2, f3))
        env = np.sin(np.pi * np.linspace(0, 1, seg)) ** 0.6
        out[pos : pos + seg] = voiced * env
        pos += seg
        if rng.random() < 0.25:
            pos += int(rng.uniform(0.05, 0.25) * sample_rate)  # a pause
    peak = float(np.max(np.abs(out))) or 1.0
    return (0.5 * out / peak).astype(np.float32)
