"""Dynamic time warping of a target utterance onto the base voice saying the same text.

Runs once per enrollment utterance, on that utterance alone, so its result is part of
the utterance's own per-example gradient and its influence is bounded by DP clipping.
"""

from __future__ import annotations

import numpy as np


def _features(env: np.ndarray) -> np.ndarray:
    # Speakers differ by a smooth spectral offset; removing each utterance's mean and
    # comparing local slopes makes the distance follow phonetic content instead.
    # Cepstral coefficients 1..24 (no level term) with the utterance mean removed.
    n = env.shape[1]
    q = np.arange(1, 25)[:, None]
    dct = np.cos(np.pi * q * (np.arange(n)[None, :] + 0.5) / n)
    cep = env @ dct.T
    return np.asarray(cep - cep.mean(axis=0, keepdims=True))


def dtw_path(target_env: np.ndarray, source_env: np.ndarray) -> np.ndarray:
    """For each target frame, the index of its matching source frame.

    The step pattern lets the source advance by 0, 1 or 2 frames per target frame, so
    each row depends only on the previous one and is computed in one vector operation.
    Both sequences are expected trimmed to their speech, which pins the ends together.

    Args:
        target_env: (n, d) target features.
        source_env: (m, d) source features.

    Returns:
        (n,) int indices into the source, non-decreasing, from 0 to m - 1.
    """
    a, b = _features(target_env), _features(source_env)
    n, m = len(a), len(b)
    cost = ((a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T).clip(
        min=0.0
    )
    acc = np.full(m, np.inf)
    acc[0] = cost[0, 0]
    back = np.zeros((n, m), dtype=np.int8)
    for i in range(1, n):
        stay, one, two = acc, np.full(m, np.inf), np.full(m, np.inf)
        one[1:], two[2:] = acc[:-1], acc[:-2]
        choices = np.stack([stay, one, two])
        step = np.argmin(choices, axis=0)
        back[i] = step
        acc = cost[i] + choices[step, np.arange(m)]
    path = np.empty(n, dtype=np.int64)
    j = m - 1 if np.isfinite(acc[m - 1]) else int(np.argmin(acc))
    for i in range(n - 1, -1, -1):
        path[i] = j
        j -= int(back[i, j])
    return path.clip(0, m - 1)


def speech_span(speech: np.ndarray) -> tuple[int, int]:
    """First and one-past-last speech frame (the whole range when none is loud)."""
    idx = np.flatnonzero(speech)
    if idx.size == 0:
        return 0, int(speech.shape[0])
    return int(idx[0]), int(idx[-1]) + 1
