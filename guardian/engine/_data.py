"""Per-utterance training examples: one enrollment utterance -> one packed tensor.

Each example depends on its own utterance (and the public base voice saying its text)
only. Nothing here pools statistics across utterances: a pooled mean or threshold would
be learned from the enrollment set outside the DP mechanism.
"""

from __future__ import annotations

import numpy as np

from guardian.engine._adapter import N_STATS, Prior, cepstra
from guardian.engine._align import dtw_path, speech_span
from guardian.engine._world import N_MEL, Frames

HOP = 2
"""Train on every second 5 ms frame: neighbouring frames add cost, not information."""
MIN_VOICED = 20
MIN_SPREAD = 0.02


def log_f0_stats(f0: np.ndarray) -> tuple[float, float, bool]:
    """Mean and log-spread of log-F0 over voiced frames, and whether there are enough."""
    voiced = f0[f0 > 0]
    if voiced.size < MIN_VOICED:
        return 0.0, 0.0, False
    lf0 = np.log(voiced)
    return float(lf0.mean()), float(np.log(max(float(lf0.std()), MIN_SPREAD))), True


def example(target: Frames, source: Frames, prior: Prior) -> np.ndarray:
    """The packed rows of one parallel pair (target speaker, base voice, same text).

    Returns:
        (T, P + 2 * N_MEL + 1 + N_STATS) float32 (see ``SpeakerAdapter.forward``).
    """
    t0, t1 = speech_span(target.speech)
    s0, s1 = speech_span(source.speech)
    tgt_env, src_env = target.env[t0:t1], source.env[s0:s1]
    path = dtw_path(tgt_env, src_env)
    rows = np.arange(0, t1 - t0, HOP)
    src_cep = cepstra(src_env[path[rows]])
    mean, spread, has_f0 = log_f0_stats(target.f0[t0:t1])
    log_rate = float(np.log((t1 - t0) / max(s1 - s0, 1)))
    p = prior.p
    out = np.empty((rows.size, p + 2 * N_MEL + 1 + N_STATS), dtype=np.float32)
    out[:, :p] = prior.features(src_cep)
    out[:, p : p + N_MEL] = src_cep
    out[:, p + N_MEL : p + 2 * N_MEL] = cepstra(tgt_env[rows])
    out[:, p + 2 * N_MEL] = target.speech[t0:t1][rows]
    out[:, p + 2 * N_MEL + 1 :] = (mean, spread, float(has_f0), log_rate)
    return out


def pad(examples: list[np.ndarray], length: int | None = None) -> np.ndarray:
    """Stack examples into (B, T, F), zero rows (mask 0) after each one's end."""
    t = length or max(len(e) for e in examples)
    out = np.zeros((len(examples), t, examples[0].shape[1]), dtype=np.float32)
    for i, e in enumerate(examples):
        n = min(len(e), t)
        out[i, :n] = e[:n]
    return out
