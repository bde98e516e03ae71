"""The speaking rate: one clipped, noised mean, released by the Gaussian mechanism.

The rate is one number, and the enrollment set says a lot about it (every utterance
measures it). Learned inside DP-SGD, it shared the step noise of a thousand other
parameters and, with a handful of utterances, that noise walked it to the conversion's
bound (x0.5 or x2) for every user with little data. Here it is estimated on its own:

* each utterance's log rate (its speaking time over the base voice's, for the same
  text) is clipped to within :data:`RATE_BOUND` of the public prior's rate, so adding or
  removing one utterance moves the sum of deviations by at most ``RATE_BOUND``
  (the L2 sensitivity);
* the sum gets Gaussian noise of standard deviation ``noise_multiplier * RATE_BOUND``;
  the release is one step of the Gaussian mechanism with sampling rate 1, and the RDP
  accountant composes it with the DP-SGD steps (:func:`guardian.engine._dp.train_dp`);
* dividing by the number of utterances and shrinking towards the prior by the noise
  the release is known to carry is post-processing.

The estimate cannot leave the clipping range whatever the noise, and with little data
it stays near the prior instead of wherever the noise points. The number of utterances
is treated as public, as DP-SGD's sampling rate already does.
"""

from __future__ import annotations

import math

import numpy as np
import torch

RATE_BOUND = math.log(1.5)
"""Clipping radius of a log rate around the public prior's: x1.5 either way, wide for
people reading sentences aloud; a wider radius would only add noise (it is the
sensitivity)."""
RATE_SPREAD = 0.15
"""Prior spread (log) of speakers' rates around the public prior's rate: how far a new
speaker is expected to be from it before any enrollment data is seen."""


def clipped_deviations(log_rates: np.ndarray, centre: float) -> np.ndarray:
    """Each utterance's log rate minus the prior's, clipped to ``RATE_BOUND``."""
    return np.clip(np.asarray(log_rates, dtype=np.float64) - centre, -RATE_BOUND, RATE_BOUND)


def noise_std(count: int, noise_multiplier: float) -> float:
    """Standard deviation the release's noise adds to the mean log rate."""
    return noise_multiplier * RATE_BOUND / max(count, 1)


def release_log_rate(
    log_rates: np.ndarray,
    centre: float,
    noise_multiplier: float,
    *,
    generator: torch.Generator | None = None,
) -> float:
    """The speaker's log rate, from noised clipped per-utterance log rates.

    Args:
        log_rates: one log rate per enrollment utterance.
        centre: the public prior's log rate.
        noise_multiplier: noise standard deviation over the sensitivity ``RATE_BOUND``.
        generator: seeds the noise (tests and benchmarks only).

    Returns:
        The released log rate, within ``RATE_BOUND`` of ``centre``.
    """
    count = len(log_rates)
    noise = float(torch.randn((), generator=generator, dtype=torch.float64))
    noisy_sum = float(clipped_deviations(log_rates, centre).sum())
    noisy_sum += noise * noise_multiplier * RATE_BOUND
    return centre + shrunk(noisy_sum / max(count, 1), noise_std(count, noise_multiplier))


def shrunk(mean_deviation: float, noise: float) -> float:
    """Post-processing: weigh the noisy mean against the prior by their variances, then
    keep it inside the clipping range (no mean of clipped values lies outside it)."""
    weight = RATE_SPREAD**2 / (RATE_SPREAD**2 + noise**2)
    return float(np.clip(weight * mean_deviation, -RATE_BOUND, RATE_BOUND))
