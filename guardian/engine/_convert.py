"""Applying a trained adapter: base-voice audio in, the speaker's voice out."""

from __future__ import annotations

import numpy as np
import torch

from guardian.engine._adapter import SpeakerAdapter, cepstra, envelope
from guardian.engine._world import Frames, analyse, synthesise

ENV_RANGE = (-25.0, 5.0)
"""Natural-log amplitude bounds of a converted envelope."""
F0_RANGE = (40.0, 800.0)
RATE_RANGE = (0.5, 2.0)


def speaking_rate(adapter: SpeakerAdapter) -> float:
    """How much longer than the base voice the converted speech is (1.0: same length)."""
    return float(np.clip(np.exp(adapter.log_rate()), *RATE_RANGE))


def convert_frames(adapter: SpeakerAdapter, frames: Frames) -> np.ndarray:
    """Convert analysed base-voice frames and synthesise 16 kHz samples."""
    prior = adapter.prior
    cep = cepstra(frames.env)
    with torch.no_grad():
        z = torch.from_numpy(prior.features(cep))
        conv = adapter.regress(z, torch.from_numpy(cep))
        mask = torch.from_numpy(frames.speech.astype(np.float32))
        conv = adapter.restore_variance(conv, mask)
        env = envelope(conv.numpy())
        f0 = frames.f0.copy()
        voiced = f0 > 0
        lf0 = torch.from_numpy(np.log(f0[voiced]).astype(np.float32))
        f0[voiced] = np.exp(adapter.convert_lf0(lf0).numpy())
    # A DP adapter trained on very few utterances or a tiny epsilon is mostly noise;
    # whatever it holds, the output must stay finite, audible speech. These bounds are
    # post-processing (no privacy cost) and far outside what real voices need.
    env = np.clip(np.nan_to_num(env, nan=ENV_RANGE[0]), *ENV_RANGE)
    f0 = np.where(voiced, np.clip(np.nan_to_num(f0, nan=0.0), *F0_RANGE), 0.0)
    # Speaking rate: repeat or drop whole frames, which WORLD resynthesises smoothly.
    rate = speaking_rate(adapter)
    n = max(1, round(frames.n * rate))
    idx = np.minimum((np.arange(n) / rate).astype(int), frames.n - 1)
    return synthesise(f0[idx], env[idx], frames.ap[idx])


def convert_samples(adapter: SpeakerAdapter, samples: np.ndarray) -> np.ndarray:
    """16 kHz mono base-voice samples -> 16 kHz samples in the speaker's voice."""
    return convert_frames(adapter, analyse(samples))
