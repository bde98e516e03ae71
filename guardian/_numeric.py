"""``np.median`` and ``np.percentile`` without their first call's import of ``numpy.ma``.

That import, and the set-up it triggers, costs a cold ``guardian verify`` about 50 ms.
Both functions give numpy's results to the last bit (numpy's default "linear" method,
the same arithmetic); ``tests/test_numeric.py`` holds them to it.
"""

from __future__ import annotations

import math

import numpy as np


def median(values: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D array."""
    n = len(values)
    low, high = (n - 1) // 2, n // 2
    part = np.partition(values, [low, high])
    return float(np.mean(part[low : high + 1]))


def percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` of a non-empty 1-D float64 array, ``q`` in [0, 100]."""
    n = len(values)
    index = (n - 1) * (q / 100)  # numpy's virtual index for "linear"
    below = min(math.floor(index), n - 1)
    above = min(below + 1, n - 1)
    part = np.partition(values, [below, above])
    if index >= n - 1:
        return float(part[n - 1])
    a, b, t = float(part[below]), float(part[above]), index - below
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t
