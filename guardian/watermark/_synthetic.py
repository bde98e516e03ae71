"""Synthetic non-speech audio: music-like chords, coloured noise, sweeps."""

from __future__ import annotations

import numpy as np


def _chords(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    out = np.zeros(n)
    note_len = int(sr * rng.uniform(0.15, 0.5))
    for start in range(0, n, note_len):
        root = 110 * 2 ** (rng.integers(0, 24) / 12)
        seg = slice(start, min(n, start + note_len))
        env = np.exp(-np.linspace(0, rng.uniform(1, 5), seg.stop - seg.start))
        for ratio in (1.0, 1.25, 1.5, 2.0):
            for h in range(1, 5):
                out[seg] += env * np.sin(2 * np.pi * root * ratio * h * t[seg]) / h**1.5
    return out


def _noise(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr).clip(20, None)
    return np.asarray(np.fft.irfft(spec / f ** rng.uniform(0.0, 1.0), n))


def _sweep(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0, f1 = rng.uniform(100, 1000), rng.uniform(1000, 7000)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1] + 1e-9))
    return np.asarray(np.sin(phase))


def random_nonspeech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    kind = int(rng.integers(3))
    x = (_chords, _noise, _sweep)[kind](rng, n, sr)
    peak = float(np.abs(x).max()) or 1.0
    return (x / peak * 10 ** (rng.uniform(-20, -3) / 20)).astype(np.float32)
