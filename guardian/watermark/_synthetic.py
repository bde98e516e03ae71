"""Synthetic non-speech audio: music-like chords and melodies, drones, noise, sweeps.

Training draws its non-speech items from here, and ``guardian watermark export``
calibrates the detection threshold on it, so the two see the same kinds of sound.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from guardian import corpus
from guardian.audio import resample

Generator = Callable[[np.random.Generator, int, int], np.ndarray]


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


def _corpus(name: str) -> Generator:
    """A generator of :mod:`guardian.corpus` (made at 48 kHz), resampled to ``sr``."""

    def generate(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
        x = getattr(corpus, name)(rng, n / sr + 0.01).astype(np.float32)
        x = resample(x, corpus.RATE, sr)
        return np.asarray(np.pad(x, (0, max(0, n - len(x))))[:n])

    return generate


KINDS: tuple[Generator, ...] = (_chords, _noise, _sweep, _corpus("music"), _corpus("drone"))


def random_nonspeech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """``n`` samples of one kind of non-speech at ``sr``, peak between -20 and -3 dBFS."""
    x = KINDS[int(rng.integers(len(KINDS)))](rng, n, sr)
    peak = float(np.abs(x).max()) or 1.0
    return (x / peak * 10 ** (rng.uniform(-20, -3) / 20)).astype(np.float32)
