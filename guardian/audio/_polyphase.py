"""Polyphase resampling in numpy: ``scipy.signal.resample_poly``'s result, without its import.

Importing ``scipy.signal`` costs more than a second (its whole API is decorated at import
time), which was most of a cold ``guardian verify``. This is the same filter (a Kaiser
window, beta 5, ``10 * max(up, down)`` taps either side, cut at the lower Nyquist) and the
same alignment and length; the tests hold it to scipy's output (float64: equal; float32:
within float32 rounding).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _lowpass(up: int, down: int) -> np.ndarray:
    """``firwin(2 * half + 1, 1 / max(up, down), window=("kaiser", 5.0)) * up``."""
    half = 10 * max(up, down)
    taps = 2 * half + 1
    m = np.arange(taps) - half
    cutoff = 1.0 / max(up, down)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(taps, 5.0)
    return np.asarray(h / h.sum() * up)


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample ``x`` (samples on axis 0) by ``up / down`` (coprime); float32 stays
    float32 (as with scipy), anything else is computed in float64."""
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = x.astype(dtype, copy=False)
    if up == down == 1:
        return x.copy()
    if x.ndim > 1:
        columns = x.reshape(len(x), -1).T
        out = np.stack([resample_poly(c, up, down) for c in columns], axis=1)
        return out.reshape(len(out), *x.shape[1:])
    n_in = len(x)
    n_out = -(-n_in * up // down)
    h = _lowpass(up, down)
    half = (len(h) - 1) // 2
    pre = down - half % down
    skip = (half + pre) // down
    h = np.concatenate([np.zeros(pre), h])
    # y[k] = sum_t h[phase + t * up] * x[newest - t], where k + skip lands on input sample
    # newest and filter phase `phase`; outputs k, k + up, k + 2 up ... share a phase and
    # step `down` samples on: one strided matrix-vector product per phase
    taps = -(-len(h) // up)
    bank = np.zeros((up, taps), dtype=dtype)
    for phase in range(up):
        bank[phase, : len(h[phase::up])] = h[phase::up]
    padded = np.concatenate([np.zeros(taps, dtype), x, np.zeros(taps + down + 1, dtype)])
    rows = sliding_window_view(padded, taps)
    out = np.zeros(n_out, dtype=dtype)
    for r in range(min(up, n_out)):
        position = (r + skip) * down
        count = len(range(r, n_out, up))
        start = position // up + 1
        out[r::up] = rows[start : start + count * down : down] @ bank[position % up, ::-1]
    return out
