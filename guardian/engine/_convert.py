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


def bounded_envelope(adapter: SpeakerAdapter, conv: torch.Tensor, speech: np.ndarray) -> np.ndarray:
    """Converted cepstra with the speaker's variance restored, as a bounded log envelope.

    A DP adapter trained on very few utterances or a tiny epsilon is mostly noise;
    whatever it holds, the output must stay finite, audible speech. The bounds here and
    in :func:`convert_f0` are post-processing (no privacy cost) and far outside what
    real voices need.
    """
    with torch.no_grad():
        mask = torch.from_numpy(speech.astype(np.float32))
        env = envelope(adapter.restore_variance(conv, mask).numpy())
    return np.asarray(np.clip(np.nan_to_num(env, nan=ENV_RANGE[0]), *ENV_RANGE))


def convert_envelope(adapter: SpeakerAdapter, frames: Frames) -> np.ndarray:
    """The speaker's log envelope for each base-voice frame."""
    cep = cepstra(frames.env)
    with torch.no_grad():
        z = torch.from_numpy(adapter.prior.features(cep))
        conv = adapter.regress(z, torch.from_numpy(cep))
    return bounded_envelope(adapter, conv, frames.speech)


def convert_f0(adapter: SpeakerAdapter, f0: np.ndarray) -> np.ndarray:
    """The speaker's F0 for each base-voice frame (0 stays unvoiced)."""
    out = f0.copy()
    voiced = out > 0
    with torch.no_grad():
        lf0 = torch.from_numpy(np.log(out[voiced]).astype(np.float32))
        out[voiced] = np.exp(adapter.convert_lf0(lf0).numpy())
    return np.where(voiced, np.clip(np.nan_to_num(out, nan=0.0), *F0_RANGE), 0.0)


def convert_frames(adapter: SpeakerAdapter, frames: Frames) -> np.ndarray:
    """Convert analysed base-voice frames and synthesise 16 kHz samples."""
    env, f0 = convert_envelope(adapter, frames), convert_f0(adapter, frames.f0)
    # Speaking rate: repeat or drop whole frames, which WORLD resynthesises smoothly.
    rate = speaking_rate(adapter)
    n = max(1, round(frames.n * rate))
    idx = np.minimum((np.arange(n) / rate).astype(int), frames.n - 1)
    return synthesise(f0[idx], env[idx], frames.ap[idx])


def convert_samples(adapter: SpeakerAdapter, samples: np.ndarray) -> np.ndarray:
    """16 kHz mono base-voice samples -> 16 kHz samples in the speaker's voice."""
    return convert_frames(adapter, analyse(samples))
