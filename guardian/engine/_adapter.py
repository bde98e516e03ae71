"""The private speaker adapter and the public prior it starts from.

The adapter converts the base voice's WORLD features frame by frame, in the cepstral
domain of the mel-sampled log envelope (:func:`cepstra`):

* ``map`` (Q x P) and ``offset`` (Q): a linear regression from the base frame's ``P``
  public principal components to a change of its first ``Q`` cepstral coefficients
  (phoneme-dependent timbre, vocal-tract length, spectral tilt);
* ``gv`` (Q): the log of a per-coefficient scale of each utterance's cepstral variance
  around its mean. Regression shrinks towards the mean and sounds muffled; restoring
  the speaker's variance (global-variance compensation) is what makes it sound like
  them;
* ``f0`` (2): the speaker's mean log-F0 and log-F0 spread;
* ``rate`` (1): log ratio of the speaker's speaking time to the base voice's.

Everything in the adapter is learned from the enrollment audio, so all of it is learned
inside a DP mechanism: the rate by its own Gaussian release (:mod:`guardian.engine._rate`),
the rest by DP-SGD, both in one accountant. The :class:`Prior` is fit on public speech
only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn

from guardian.engine._world import N_MEL

N_STATS = 4
"""Per-utterance scalars after the frames: mean log-F0, log-F0 spread, has-F0, log rate."""


@cache
def dct_matrix() -> np.ndarray:
    """(N_MEL, N_MEL) orthonormal DCT-II: ``cep = env @ D``, ``env = cep @ D.T``."""
    n = np.arange(N_MEL)
    d = np.stack([np.cos(np.pi * (n + 0.5) * q / N_MEL) for q in range(N_MEL)], axis=1)
    return np.asarray(d / np.linalg.norm(d, axis=0, keepdims=True), dtype=np.float32)


def cepstra(env: np.ndarray) -> np.ndarray:
    """(n, N_MEL) log envelope -> (n, N_MEL) cepstra; coefficient 0 is the frame level."""
    return np.asarray(env @ dct_matrix(), dtype=np.float32)


def envelope(cep: np.ndarray) -> np.ndarray:
    return np.asarray(cep @ dct_matrix().T, dtype=np.float32)


@dataclass(frozen=True)
class Prior:
    """Public knowledge the adapter starts from (fit on public voices only).

    Attributes:
        mean: (N_MEL,) the base voice's mean cepstrum over speech frames.
        project: (P, N_MEL) whitening projection onto the base voice's top principal
            components, so the regression is well conditioned from the first step.
        order: ``Q``, how many cepstral coefficients (from 1) the adapter may change.
        base_f0_mean, base_f0_std: the base voice's mean log-F0 and its spread.
        init: starting value of each parameter group in natural units (``map`` Q x P,
            ``offset`` Q, ``gv`` Q, ``f0`` 2, ``rate`` 1), fit on public voices.
        scales: natural units per unit of ``theta`` for ``map``, ``offset``, ``gv``,
            ``f0`` and ``rate``: a step size per group, the preconditioning DP-SGD needs.
        weights: loss weights of ``spectrum``, ``gv``, ``f0`` and ``rate``.
    """

    mean: np.ndarray
    project: np.ndarray
    order: int
    base_f0_mean: float
    base_f0_std: float
    init: dict[str, np.ndarray]
    scales: dict[str, float]
    weights: dict[str, float]

    @property
    def p(self) -> int:
        return int(self.project.shape[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "project": self.project.tolist(),
            "order": self.order,
            "base_f0_mean": self.base_f0_mean,
            "base_f0_std": self.base_f0_std,
            "init": {k: v.tolist() for k, v in self.init.items()},
            "scales": dict(self.scales),
            "weights": dict(self.weights),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prior:
        return cls(
            mean=np.asarray(d["mean"], dtype=np.float32),
            project=np.asarray(d["project"], dtype=np.float32),
            order=int(d["order"]),
            base_f0_mean=float(d["base_f0_mean"]),
            base_f0_std=float(d["base_f0_std"]),
            init={str(k): np.asarray(v, dtype=np.float32) for k, v in d["init"].items()},
            scales={str(k): float(v) for k, v in d["scales"].items()},
            weights={str(k): float(v) for k, v in d["weights"].items()},
        )

    def with_capacity(self, p: int, order: int) -> Prior:
        """The same prior with fewer components or coefficients (less to privatise)."""
        init = dict(self.init)
        init["map"] = self.init["map"][:order, :p]
        for name in ("offset", "gv"):
            init[name] = self.init[name][:order]
        return Prior(**{**self.__dict__, "project": self.project[:p], "order": order, "init": init})

    def features(self, cep: np.ndarray) -> np.ndarray:
        """(n, P) whitened principal components of base-voice cepstra."""
        return np.asarray((cep - self.mean) @ self.project.T, dtype=np.float32)


def group_sizes(prior: Prior) -> dict[str, int]:
    q = prior.order
    return {"map": q * prior.p, "offset": q, "gv": q, "f0": 2, "rate": 1}


def log_rates(packed: np.ndarray, prior: Prior) -> np.ndarray:
    """Each packed example's log speaking rate (see :meth:`SpeakerAdapter.forward`)."""
    return np.asarray(packed[:, 0, prior.p + 2 * N_MEL + 1 + 3], dtype=np.float64)


def packed_width(prior: Prior) -> int:
    """Columns of one packed training row (see :meth:`SpeakerAdapter.forward`)."""
    return prior.p + 2 * N_MEL + 1 + N_STATS


class SpeakerAdapter(nn.Module):
    """The private parameters (one vector ``theta``) and the conversion they define.

    It holds no buffers (Opacus computes its per-utterance gradients functionally), so
    the public constants are plain tensor attributes.
    """

    def __init__(self, prior: Prior, *, learn_rate: bool = True) -> None:
        super().__init__()
        self.prior = prior
        # DP training releases the rate on its own (guardian.engine._rate); fits without
        # DP (the public prior, the no-DP reference) learn it with the rest.
        self.learn_rate = learn_rate
        self.sizes = group_sizes(prior)
        self.theta = nn.Parameter(torch.zeros(sum(self.sizes.values())))
        self._init = {
            k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in prior.init.items()
        }

    def groups(self, theta: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``theta`` split into its groups, in natural units."""
        theta = self.theta if theta is None else theta
        out, i = {}, 0
        for name, size in self.sizes.items():
            init = self._init[name].to(theta.device).reshape(-1)
            out[name] = init + theta[i : i + size] * self.prior.scales[name]
            i += size
        out["map"] = out["map"].reshape(self.prior.order, self.prior.p)
        return out

    # --- conversion ---------------------------------------------------------------

    def regress(self, z: torch.Tensor, cep: torch.Tensor) -> torch.Tensor:
        """Cepstra of base-voice frames (..., N_MEL) with the regressed change added."""
        g, q = self.groups(), self.prior.order
        delta = z @ g["map"].T + g["offset"]
        return torch.cat([cep[..., :1], cep[..., 1 : q + 1] + delta, cep[..., q + 1 :]], -1)

    def restore_variance(self, cep: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scale each utterance's coefficients 1..Q around their mean over speech frames."""
        q = self.prior.order
        part = cep[..., 1 : q + 1]
        mean = _masked_mean(part, mask)
        scaled = mean + torch.exp(self.groups()["gv"]) * (part - mean)
        return torch.cat([cep[..., :1], scaled, cep[..., q + 1 :]], -1)

    def convert_lf0(self, lf0: torch.Tensor) -> torch.Tensor:
        """Log-F0 of voiced base-voice frames -> the speaker's."""
        f0, pr = self.groups()["f0"], self.prior
        spread = torch.exp(f0[1])
        return f0[0] + spread / pr.base_f0_std * (lf0 - pr.base_f0_mean)

    def log_rate(self) -> float:
        return float(self.groups()["rate"][0].detach())

    # --- the per-utterance loss ----------------------------------------------------

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        """Per-utterance loss.

        Args:
            packed: (B, T, P + 2 * N_MEL + 1 + N_STATS): the aligned base frame's
                whitened components and cepstra, the target frame's cepstra, a speech
                mask, then the utterance's scalars repeated on every row.

        Returns:
            (B,) losses, one per utterance, so Opacus can clip each one's gradient.
        """
        p, q, w = self.prior.p, self.prior.order, self.prior.weights
        z, src = packed[..., :p], packed[..., p : p + N_MEL]
        tgt = packed[..., p + N_MEL : p + 2 * N_MEL]
        mask = packed[..., p + 2 * N_MEL]
        stats = packed[:, 0, p + 2 * N_MEL + 1 :]
        count = mask.sum(dim=1).clamp(min=1.0)
        conv = self.regress(z, src)
        err = ((conv - tgt)[..., 1 : q + 1] ** 2).sum(dim=-1)
        spectrum = (err * mask).sum(dim=1) / count
        # Variance restoration is fit on the regression's output as it stands: the
        # regression itself must not learn to inflate its variance.
        log_sd_conv = _masked_log_sd(conv.detach()[..., 1 : q + 1], mask)
        log_sd_tgt = _masked_log_sd(tgt[..., 1 : q + 1], mask)
        gv = ((self.groups()["gv"] + log_sd_conv - log_sd_tgt) ** 2).sum(dim=-1)
        g = self.groups()
        has_f0 = stats[:, 2]
        f0 = has_f0 * ((g["f0"][0] - stats[:, 0]) ** 2 + (g["f0"][1] - stats[:, 1]) ** 2)
        loss = w["spectrum"] * spectrum + w["gv"] * gv + w["f0"] * f0
        if self.learn_rate:
            loss = loss + w["rate"] * (g["rate"][0] - stats[:, 3]) ** 2
        return loss


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean(dim=-2, keepdim=True)
    m = mask.unsqueeze(-1)
    return (x * m).sum(dim=-2, keepdim=True) / m.sum(dim=-2, keepdim=True).clamp(min=1.0)


def _masked_log_sd(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = _masked_mean(x, mask)
    var = _masked_mean((x - mean) ** 2, mask).squeeze(-2)
    return 0.5 * torch.log(var.clamp(min=1e-6))
