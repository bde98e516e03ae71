"""DP-SGD over per-utterance examples with Opacus: the only place enrollment data is learned.

Every example is one enrollment utterance. Opacus computes each one's gradient,
clips it to ``clip`` and adds Gaussian noise under Poisson sampling. The speaking rate is
not a DP-SGD parameter: it is released once by the Gaussian mechanism
(:mod:`guardian.engine._rate`) with a share of the budget, and both noises are
calibrated so that the RDP accountant, composing the steps and the release, spends the
requested (epsilon, delta). The accountant's history travels with the result so that
budgets compose across runs.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from guardian.engine._adapter import Prior, SpeakerAdapter, log_rates
from guardian.engine._rate import release_log_rate

Accountant = str
"""Opacus accountant name: ``"rdp"`` or ``"prv"``."""
HistoryEntry = tuple[float, float, int]
"""(noise multiplier, sample rate, steps): Opacus's own accountant history format."""


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD hyper-parameters. Public: chosen on public voices, never on enrollment data.

    Attributes:
        clip: per-utterance gradient norm bound (``max_grad_norm``).
        batch_fraction: Poisson sampling rate, the expected share of utterances per step.
        epochs: passes over the data; steps = epochs / batch_fraction.
        lr: SGD step on the mean clipped gradient.
        momentum: SGD momentum, which averages the noise of consecutive steps.
        accountant: ``"rdp"`` or ``"prv"``.
        average_from: the result is the mean of the iterates after this share of the
            steps (Polyak averaging): post-processing, so free of privacy cost, and the
            noise of steps near the optimum averages out.
        rate_share: share of epsilon for the speaking-rate release, measured as the
            epsilon that release alone would spend; DP-SGD gets what remains under RDP
            composition (more than ``1 - rate_share``: RDP composes sub-additively).
    """

    clip: float = 1.0
    batch_fraction: float = 0.5
    epochs: int = 20
    lr: float = 2.0
    momentum: float = 0.5
    accountant: Accountant = "rdp"
    average_from: float = 0.5
    rate_share: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 < self.batch_fraction <= 1.0:
            raise ValueError("batch_fraction must be in (0, 1]")
        if self.clip <= 0 or self.epochs < 1 or self.lr <= 0:
            raise ValueError("clip, epochs and lr must be positive")
        if not 0.0 <= self.average_from < 1.0:
            raise ValueError("average_from must be in [0, 1)")
        if not 0.0 < self.rate_share < 1.0:
            raise ValueError("rate_share must be in (0, 1)")
        if self.accountant not in ("rdp", "prv"):
            raise ValueError("accountant must be 'rdp' or 'prv'")


@dataclass(frozen=True)
class DPRun:
    """Outcome of one DP-SGD run (complete or cancelled)."""

    theta: np.ndarray
    epsilon: float
    delta: float
    noise_multiplier: float
    clip: float
    sample_rate: float
    steps: int
    history: tuple[HistoryEntry, ...]
    accountant: Accountant
    completed: bool
    poisson: bool = False
    """Whether Opacus's loader drew each batch by Poisson sampling."""
    batch_sizes: tuple[int, ...] = ()
    """Size of each step's batch: random under Poisson sampling, independent of the data."""
    rate_noise_multiplier: float | None = None
    """Noise of the speaking-rate release, whose entry ``(noise multiplier, 1.0, 1)``
    ends ``history``; ``None`` when the rate was not released (a cancelled run)."""

    @property
    def sgd_steps(self) -> int:
        """DP-SGD steps in ``history``: every entry but the rate release."""
        return sum(n for _, _, n in self.history) - (self.rate_noise_multiplier is not None)


_MORE_ORDERS = tuple(round(64 * 2 ** (i / 4)) for i in range(1, 17))
"""RDP orders above Opacus's defaults (up to 63), 76 to 1024 in steps of a fourth of an
octave. One release under much noise, such as the speaking rate's at a small epsilon, has
its tightest bound at a higher order: without these the bound is looser than it need be,
and Opacus warns. Each order costs accountant time, so they are few."""


def epsilon_of(history: Sequence[HistoryEntry], delta: float, accountant: Accountant) -> float:
    """Epsilon spent by a history of DP-SGD runs, composed by the named accountant."""
    from opacus.accountants import RDPAccountant, create_accountant

    acc = create_accountant(accountant)
    acc.history = [(float(s), float(q), int(n)) for s, q, n in history]
    if not acc.history:
        return 0.0
    if isinstance(acc, RDPAccountant):
        orders = [*RDPAccountant.DEFAULT_ALPHAS, *map(float, _MORE_ORDERS)]
        return float(acc.get_epsilon(delta=delta, alphas=orders))
    return float(acc.get_epsilon(delta=delta))


def _calibrate(
    spend: Callable[[float], float], epsilon: float, *, tolerance: float = 0.005
) -> float:
    """The smallest noise multiplier (to ``tolerance`` relative) whose spend is within epsilon.

    Spend falls smoothly with the noise, and each evaluation of the RDP accountant costs
    up to a second on a busy CPU, so the bracket is narrowed by regula falsi on
    log-spend against log-noise (the Illinois variant), not by halving it.
    """

    def gap(log_sigma: float) -> float:
        """Log-spend over log-epsilon: positive exactly when the spend is over budget."""
        spent = spend(math.exp(log_sigma))
        g = math.log(max(spent, 1e-300)) - math.log(epsilon)
        return max(g, 1e-12) if spent > epsilon else min(g, 0.0)

    lo, hi = 0.0, 0.0  # log noise multipliers: gap(lo) > 0 >= gap(hi)
    g_hi = gap(hi)
    g_lo = g_hi
    while g_hi > 0:  # too little noise: double it
        lo, g_lo, hi = hi, g_hi, hi + math.log(2)
        if hi > math.log(1e6):
            raise ValueError(f"no noise multiplier reaches epsilon {epsilon}")
        g_hi = gap(hi)
    while g_lo <= 0:  # more noise than needed: halve it
        hi, g_hi, lo = lo, g_lo, lo - math.log(2)
        if lo < math.log(1e-4):
            return math.exp(hi)
        g_lo = gap(lo)
    side = 0
    while hi - lo > math.log1p(tolerance):
        x = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
        x = min(max(x, lo + 0.001 * (hi - lo)), hi - 0.001 * (hi - lo))
        g = gap(x)
        if g > 0:
            lo, g_lo = x, g
            if side == -1:
                g_hi /= 2
            side = -1
        else:
            hi, g_hi = x, g
            if side == 1:
                g_lo /= 2
            side = 1
    return math.exp(hi)


@functools.lru_cache(maxsize=64)
def calibrate_noise(
    epsilon: float,
    delta: float,
    *,
    sample_rate: float,
    steps: int,
    rate_share: float,
    accountant: Accountant = "rdp",
) -> tuple[float, float]:
    """Noise multipliers (DP-SGD, rate release) that compose to (epsilon, delta).

    The rate release gets the noise that would spend ``rate_share * epsilon`` on its
    own; DP-SGD gets the least noise under which the composition stays within epsilon.
    Cached: choosing a tier and training ask for the same figures, and each costs a
    second of RDP arithmetic.
    """
    rate = _calibrate(lambda s: epsilon_of([(s, 1.0, 1)], delta, accountant), rate_share * epsilon)
    sgd = _calibrate(
        lambda s: epsilon_of([(s, sample_rate, steps), (rate, 1.0, 1)], delta, accountant),
        epsilon,
    )
    return sgd, rate


def schedule(utterances: int, config: DPConfig) -> tuple[int, float, int]:
    """(batch size, Poisson sampling rate, steps) of a run on ``utterances`` examples.

    Opacus samples each utterance with probability 1 / len(loader); calibrating the
    noise with that exact rate and step count keeps the spent epsilon on target.
    """
    batch = max(1, round(config.batch_fraction * utterances))
    steps_per_epoch = math.ceil(utterances / batch)
    return batch, 1.0 / steps_per_epoch, steps_per_epoch * config.epochs


def noise_per_utterance(epsilon: float, delta: float, utterances: int, config: DPConfig) -> float:
    """DP-SGD's noise on the mean clipped gradient, in units of the clip norm.

    The noise multiplier over the expected batch size: how loud the noise is against
    what one step learns from the data. It falls as the utterances grow and as epsilon
    grows, and everything it depends on is public.
    """
    _, q, _ = schedule(utterances, config)
    sigma, _ = _calibrated(epsilon, delta, utterances, config)
    return sigma / (q * utterances)


def _calibrated(
    epsilon: float, delta: float, utterances: int, config: DPConfig
) -> tuple[float, float]:
    """(DP-SGD noise multiplier, rate release's noise) of a run's schedule."""
    _, q, total = schedule(utterances, config)
    return calibrate_noise(
        epsilon,
        delta,
        sample_rate=q,
        steps=total,
        rate_share=config.rate_share,
        accountant=config.accountant,
    )


def train_dp(
    packed: np.ndarray,
    prior: Prior,
    config: DPConfig,
    *,
    epsilon: float,
    delta: float,
    device: str = "cpu",
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DPRun:
    """Train a :class:`SpeakerAdapter` on packed examples with DP-SGD.

    Args:
        packed: (N, T, F) one example per enrollment utterance.
        prior: the public prior the adapter starts from.
        config: DP-SGD hyper-parameters.
        epsilon, delta: the budget of this run.
        device: ``"cpu"`` or ``"cuda"``.
        seed: seeds the sampler and the noise (tests and benchmarks only; ``None`` keeps
            Opacus's own randomness).
        progress: called with (step, total steps).
        should_stop: polled before each step; when it returns True the run ends and
            reports only the steps taken.
    """
    from opacus import PrivacyEngine
    from opacus.data_loader import DPDataLoader
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    n = int(packed.shape[0])
    batch, q, total = schedule(n, config)
    sigma, rate_sigma = _calibrated(epsilon, delta, n, config)
    # The sampler draws on the CPU; the noise is drawn where the gradients live.
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    noise = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    if seed is not None:
        torch.manual_seed(seed)
    # The rate is released on its own (below); DP-SGD leaves its coordinate alone.
    model = SpeakerAdapter(prior, learn_rate=False).to(device)
    data = TensorDataset(torch.from_numpy(packed))
    loader = DataLoader(data, batch_size=batch, generator=generator)
    expected = q * n
    # The loss is a sum over the batch; dividing the step by the expected batch size
    # keeps it a mean without Opacus dividing by a data-dependent count.
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr / expected, momentum=config.momentum
    )
    with warnings.catch_warnings():
        # Opacus warns that secure_mode is off (see docs/engine.md) and that functorch
        # computes the adapter's per-sample gradients; both are expected.
        warnings.filterwarnings("ignore", module="opacus")
        # The packed inputs need no gradient; torch notes that its hook fires anyway.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        engine = PrivacyEngine(accountant=config.accountant)
        model, optimizer, loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=config.clip,
            poisson_sampling=True,
            loss_reduction="sum",
            noise_generator=noise,
        )
        poisson = isinstance(loader, DPDataLoader) and isinstance(
            loader.batch_sampler, UniformWithReplacementSampler
        )
        step, completed, sizes = 0, True, list[int]()
        inner = model._module if hasattr(model, "_module") else model
        start = int(config.average_from * total)
        total_theta, averaged = torch.zeros_like(inner.theta), 0
        for _ in range(config.epochs):
            for (batch,) in loader:
                if should_stop is not None and should_stop():
                    completed = False
                    break
                sizes.append(int(batch.shape[0]))
                optimizer.zero_grad(set_to_none=True)
                loss = model(batch.to(device)).sum()
                loss.backward()
                optimizer.step()
                step += 1
                if step > start:
                    total_theta += inner.theta.detach()
                    averaged += 1
                if progress is not None:
                    progress(step, total)
            if not completed:
                break
        history = tuple((float(s), float(r), int(k)) for s, r, k in engine.accountant.history)
    final = total_theta / averaged if averaged else inner.theta.detach()
    theta = final.cpu().numpy().copy()
    released = None
    if completed:
        # A cancelled run stops before the release, so it spends only its steps.
        rate = release_log_rate(
            log_rates(packed, prior), float(prior.init["rate"][0]), rate_sigma, generator=generator
        )
        theta[-1] = (rate - float(prior.init["rate"][0])) / prior.scales["rate"]
        history += ((float(rate_sigma), 1.0, 1),)
        released = float(rate_sigma)
    spent = epsilon_of(history, delta, config.accountant)
    return DPRun(
        theta=theta,
        epsilon=spent,
        delta=delta,
        noise_multiplier=float(sigma),
        clip=config.clip,
        sample_rate=q,
        steps=step,
        history=history,
        accountant=config.accountant,
        completed=completed,
        poisson=poisson,
        batch_sizes=tuple(sizes),
        rate_noise_multiplier=released,
    )
