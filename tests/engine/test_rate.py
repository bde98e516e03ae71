"""The speaking rate's Gaussian release: bounded, shrunk by its noise, and accounted."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.engine._dp import _calibrate, calibrate_noise, epsilon_of
from guardian.engine._rate import RATE_BOUND, clipped_deviations, noise_std, release_log_rate

DELTA = 1e-3


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=40),
    centre=st.floats(-0.5, 0.5),
    sigma=st.floats(0.1, 50.0),
    seed=st.integers(0, 2**31),
)
def test_released_rate_stays_within_the_clipping_bound(
    rates: list[float], centre: float, sigma: float, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    out = release_log_rate(np.array(rates), centre, sigma, generator=gen)
    assert abs(out - centre) <= RATE_BOUND + 1e-9


@given(rates=st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=40), extra=st.floats(-5.0, 5.0))
def test_one_utterance_moves_the_clipped_sum_by_at_most_the_bound(
    rates: list[float], extra: float
) -> None:
    with_it = clipped_deviations(np.array([*rates, extra]), 0.1).sum()
    without = clipped_deviations(np.array(rates), 0.1).sum()
    assert abs(with_it - without) <= RATE_BOUND + 1e-9


def test_few_utterances_stay_near_the_prior_many_reach_the_speaker() -> None:
    """Noise cannot walk the rate to an edge: with little data the prior holds it."""
    speaker = 0.2  # log rate above the prior's
    for count, sigma in ((3, 2.0), (200, 2.0)):
        draws = [
            release_log_rate(
                np.full(count, speaker), 0.0, sigma, generator=torch.Generator().manual_seed(s)
            )
            for s in range(300)
        ]
        spread = float(np.std(draws))
        assert spread < noise_std(count, sigma)
        if count == 200:
            assert float(np.mean(draws)) == pytest.approx(speaker, abs=0.01)
        else:
            assert float(np.mean(np.abs(draws))) < speaker


@pytest.mark.parametrize("epsilon", [1.0, 8.0])
def test_sgd_and_rate_noise_compose_to_the_budget(epsilon: float) -> None:
    sgd, rate = calibrate_noise(epsilon, DELTA, sample_rate=0.5, steps=20, rate_share=0.2)
    spent = epsilon_of([(sgd, 0.5, 20), (rate, 1.0, 1)], DELTA, "rdp")
    assert epsilon * 0.98 <= spent <= epsilon
    assert epsilon_of([(rate, 1.0, 1)], DELTA, "rdp") == pytest.approx(0.2 * epsilon, rel=0.01)
    assert not math.isclose(sgd, rate)


def test_a_noisy_release_is_accounted_at_its_best_order_without_a_warning() -> None:
    """The rate's release at ε = 1 (its share 0.2, δ = 1e-5) is tightest above order 63,
    where Opacus's default orders stop: they give a looser bound and warn."""
    from opacus.accountants import RDPAccountant

    history = [(18.0, 1.0, 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spent = epsilon_of(history, 1e-5, "rdp")
    default = RDPAccountant()
    default.history = history
    with pytest.warns(UserWarning, match="largest alpha"):
        looser = default.get_epsilon(delta=1e-5)
    assert spent < looser


@settings(max_examples=100, deadline=None)
@given(scale=st.floats(1e-3, 1e4), power=st.floats(1.0, 3.0), epsilon=st.floats(0.1, 100.0))
def test_calibration_finds_the_least_noise_within_the_budget(
    scale: float, power: float, epsilon: float
) -> None:
    """Any spend that falls with the noise: the answer is within budget, and 0.5 % less
    noise is not."""

    def spend(sigma: float) -> float:
        return scale / sigma**power

    sigma = _calibrate(spend, epsilon)
    if sigma <= 2e-4:  # the budget needs (almost) no noise at all
        return
    assert spend(sigma) <= epsilon
    assert spend(sigma / 1.005**2) > epsilon
