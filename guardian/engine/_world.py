"""WORLD vocoder features: F0, a mel-sampled log spectral envelope, aperiodicity.

Pure computation on numpy arrays at :data:`RATE`. The envelope is kept as ``N_MEL``
log-amplitude points spaced evenly on the mel scale: a smooth, low-dimensional
representation in which a speaker's vocal-tract length is a shift of the axis and its
timbre is a smooth offset, which is what the speaker adapter learns.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from guardian._thirdparty import quiet_import

RATE = 16_000
"""Every engine feature is computed at 16 kHz, the rate of the speaker encoder too."""
FRAME_MS = 5.0
FFT_SIZE = 1024
N_BINS = FFT_SIZE // 2 + 1
N_MEL = 60
F0_FLOOR = 60.0
F0_CEIL = 500.0
"""A fixed, public F0 search range: a range fitted to the enrollment audio would leak it."""
SILENCE_DB = 45.0
"""Frames this far below the utterance's loudest frame count as silence."""


def _pyworld() -> Any:
    return quiet_import("pyworld")


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    return np.asarray(1127.0 * np.log1p(np.asarray(f) / 700.0))


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    return np.asarray(700.0 * np.expm1(np.asarray(m) / 1127.0))


@cache
def mel_freqs() -> np.ndarray:
    """Frequencies (Hz) of the ``N_MEL`` envelope points, 0 to Nyquist."""
    return mel_to_hz(np.linspace(0.0, float(hz_to_mel(np.array(RATE / 2))), N_MEL))


@cache
def bin_freqs() -> np.ndarray:
    return np.linspace(0.0, RATE / 2, N_BINS)


@dataclass(frozen=True)
class Frames:
    """WORLD analysis of one utterance, ``n`` frames of ``FRAME_MS``.

    Attributes:
        f0: (n,) Hz, 0 where unvoiced.
        env: (n, N_MEL) natural-log amplitude envelope at :func:`mel_freqs`.
        ap: (n, N_BINS) aperiodicity in [0, 1].
        speech: (n,) bool, frames louder than ``SILENCE_DB`` below the peak frame.
    """

    f0: np.ndarray
    env: np.ndarray
    ap: np.ndarray
    speech: np.ndarray

    @property
    def n(self) -> int:
        return int(self.f0.shape[0])


def to_mel(log_sp: np.ndarray) -> np.ndarray:
    """(n, N_BINS) log power spectrum -> (n, N_MEL) log amplitude at the mel points."""
    pos = mel_freqs() / (RATE / 2) * (N_BINS - 1)
    lo = np.floor(pos).astype(int).clip(0, N_BINS - 2)
    frac = pos - lo
    amp = 0.5 * log_sp
    return np.asarray(amp[:, lo] * (1 - frac) + amp[:, lo + 1] * frac)


def from_mel(env: np.ndarray) -> np.ndarray:
    """(n, N_MEL) log amplitude -> (n, N_BINS) power spectrum for WORLD synthesis."""
    mf, bf = mel_freqs(), bin_freqs()
    idx = np.searchsorted(mf, bf, side="right").clip(1, N_MEL - 1)
    frac = ((bf - mf[idx - 1]) / (mf[idx] - mf[idx - 1])).clip(0.0, 1.0)
    amp = env[:, idx - 1] * (1 - frac) + env[:, idx] * frac
    return np.asarray(np.exp(2.0 * amp))


def analyse(samples: np.ndarray) -> Frames:
    """WORLD analysis (DIO + StoneMask, CheapTrick, D4C) of 16 kHz mono samples."""
    pw = _pyworld()
    x = np.ascontiguousarray(samples, dtype=np.float64)
    f0, t = pw.dio(x, RATE, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, RATE)
    sp = pw.cheaptrick(x, f0, t, RATE, fft_size=FFT_SIZE)
    ap = pw.d4c(x, f0, t, RATE, fft_size=FFT_SIZE)
    log_sp = np.log(np.maximum(sp, 1e-16))
    env = to_mel(log_sp)
    energy = np.log(np.maximum(sp.sum(axis=1), 1e-16)) * (10.0 / np.log(10.0))
    speech = energy > energy.max() - SILENCE_DB
    return Frames(f0=f0, env=env.astype(np.float32), ap=ap, speech=speech)


def synthesise(f0: np.ndarray, env: np.ndarray, ap: np.ndarray) -> np.ndarray:
    """WORLD synthesis back to 16 kHz float32 samples."""
    pw = _pyworld()
    sp = from_mel(np.asarray(env, dtype=np.float64))
    y = pw.synthesize(
        np.ascontiguousarray(f0, dtype=np.float64),
        np.ascontiguousarray(sp),
        np.ascontiguousarray(np.clip(ap, 0.0, 1.0), dtype=np.float64),
        RATE,
        frame_period=FRAME_MS,
    )
    return np.asarray(y, dtype=np.float32)


def warp_bins(values: np.ndarray, alpha: float) -> np.ndarray:
    """Linear frequency warp of per-bin values: output at ``f`` reads input at ``f / alpha``."""
    bf = bin_freqs()
    src = np.clip(bf / alpha, 0.0, bf[-1])
    return np.stack([np.interp(src, bf, row) for row in values])
