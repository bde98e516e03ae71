"""The public converter: fit on public speech only, shipped hash-pinned in ``weights/``.

What it holds (nothing from any enrolled speaker):

* the base voice's cepstral mean, principal components and F0 statistics, measured on
  Piper joe speaking generated sentences;
* the starting adapter, the average of full adapters fit without DP to many
  generated public voices (espeak-ng voices, variants and pitches): the part of voice
  conversion that does not depend on who the target is (notably how much variance a
  regression loses) is learned here, in public, and costs no privacy budget;
* DP-SGD hyper-parameters and the adapter size for each privacy level, chosen on public
  voices.

The card pins the weights' SHA-256; they are read with ``torch.load(weights_only=True)``
only after the hash matches.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from guardian._cards import read_card
from guardian.engine._adapter import Prior
from guardian.engine._dp import DPConfig, noise_per_utterance
from guardian.engine._errors import EngineModelError

WEIGHTS_DIR = Path(__file__).with_name("weights")
SHIPPED_CARD = WEIGHTS_DIR / "guardian-vc-v1.yaml"
_TENSORS = ("mean", "project", "map", "offset", "gv", "f0", "rate")


@dataclass(frozen=True)
class Tier:
    """Adapter size and DP-SGD settings for privacy budgets of at least ``min_epsilon``."""

    min_epsilon: float
    components: int
    order: int
    dp: DPConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_epsilon": self.min_epsilon,
            "components": self.components,
            "order": self.order,
            "dp": dict(self.dp.__dict__),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tier:
        return cls(
            min_epsilon=float(d["min_epsilon"]),
            components=int(d["components"]),
            order=int(d["order"]),
            dp=DPConfig(**d["dp"]),
        )


@dataclass(frozen=True)
class PublicConverter:
    """The shipped public model: a prior and the tier for each privacy level."""

    model_id: str
    prior: Prior
    tiers: tuple[Tier, ...]
    weights_sha256: str

    def tier(
        self, epsilon: float, *, utterances: int | None = None, delta: float | None = None
    ) -> Tier:
        """The largest adapter whose tier admits ``epsilon`` (``inf``: no DP).

        Tiers were chosen for :data:`REFERENCE_UTTERANCES` utterances at
        :data:`REFERENCE_DELTA`. What decides whether a larger adapter pays is the
        noise against the data (:func:`noise_per_utterance`), not epsilon alone: given
        ``utterances`` and ``delta``, a tier admits a run whose noise per utterance is
        at most that of its ``min_epsilon`` at the reference, so a speaker with little
        data gets the small adapter even at a large epsilon.
        """
        if utterances is None or delta is None or not math.isfinite(epsilon):
            fitting = [t for t in self.tiers if epsilon >= t.min_epsilon]
        else:
            fitting = [t for t in self.tiers if _admits(t, epsilon, delta, utterances)]
        if not fitting:
            return min(self.tiers, key=lambda t: t.min_epsilon)
        return max(fitting, key=lambda t: t.min_epsilon)

    def prior_for(
        self, epsilon: float, *, utterances: int | None = None, delta: float | None = None
    ) -> Prior:
        t = self.tier(epsilon, utterances=utterances, delta=delta)
        return self.prior.with_capacity(t.components, t.order)


REFERENCE_UTTERANCES = 100
"""Enrollment size at which the tiers were chosen (benchmarks/engine_tiers.py)."""
REFERENCE_DELTA = 1e-5


def _admits(tier: Tier, epsilon: float, delta: float, utterances: int) -> bool:
    if tier.min_epsilon <= 0:
        return True
    ceiling = noise_per_utterance(tier.min_epsilon, REFERENCE_DELTA, REFERENCE_UTTERANCES, tier.dp)
    return noise_per_utterance(epsilon, delta, utterances, tier.dp) <= ceiling


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_converter(card: Path | None = None) -> PublicConverter:
    """Load the public converter from its card, checking the pinned hash first.

    Raises:
        EngineModelError: the card or weights are missing, altered or malformed.
    """
    card = card or SHIPPED_CARD
    meta = read_card(card, what="converter card", error=EngineModelError)
    try:
        weights = card.parent / str(meta["weights"])
        pinned = str(meta["sha256"])
        scalars = meta["prior"]
        tiers = tuple(Tier.from_dict(t) for t in meta["tiers"])
    except (KeyError, TypeError, ValueError) as e:
        raise EngineModelError(f"converter card {card.name} lacks or mangles {e}") from e
    try:
        data = weights.read_bytes()
    except OSError as e:
        raise EngineModelError(f"converter weights {weights} unreadable ({e})") from e
    digest = sha256_bytes(data)
    if digest != pinned:
        raise EngineModelError(
            f"converter weights {weights.name} have SHA-256 {digest}, expected {pinned}"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        arrays = {k: np.asarray(state[k].numpy(), dtype=np.float32) for k in _TENSORS}
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        raise EngineModelError(f"converter weights {weights.name} cannot be loaded ({e})") from e
    try:
        prior = Prior(
            mean=arrays["mean"],
            project=arrays["project"],
            order=int(arrays["map"].shape[0]),
            base_f0_mean=float(scalars["base_f0_mean"]),
            base_f0_std=float(scalars["base_f0_std"]),
            init={k: arrays[k] for k in ("map", "offset", "gv", "f0", "rate")},
            scales={str(k): float(v) for k, v in scalars["scales"].items()},
            weights={str(k): float(v) for k, v in scalars["weights"].items()},
        )
    except (KeyError, TypeError, ValueError) as e:
        raise EngineModelError(f"converter card {card.name} lacks {e}") from e
    return PublicConverter(
        model_id=str(meta.get("model_id", card.stem)),
        prior=prior,
        tiers=tiers,
        weights_sha256=digest,
    )


def save_converter(
    card: Path, prior: Prior, tiers: tuple[Tier, ...], *, model_id: str, extra: dict[str, Any]
) -> None:
    """Write weights and a card pinning their hash (the pretraining's output)."""
    state = {
        "mean": torch.from_numpy(prior.mean),
        "project": torch.from_numpy(prior.project),
        **{k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in prior.init.items()},
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    weights = card.with_suffix(".pt")
    weights.write_bytes(buf.getvalue())
    meta = {
        "model_id": model_id,
        "kind": "WORLD cepstral speaker adapter prior (public data only)",
        "weights": weights.name,
        "sha256": sha256_bytes(buf.getvalue()),
        "prior": {
            "base_f0_mean": prior.base_f0_mean,
            "base_f0_std": prior.base_f0_std,
            "scales": prior.scales,
            "weights": prior.weights,
        },
        "tiers": [t.to_dict() for t in tiers],
        **extra,
    }
    card.write_text(yaml.safe_dump(meta, sort_keys=False))
