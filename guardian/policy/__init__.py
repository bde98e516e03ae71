"""Policy-as-code: Cedar policies in ``policies/`` decide who may use which voice.

Owned by the policy work: fill in the bodies, keep the public names and signatures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any


class Action(str, Enum):
    SYNTHESIZE = "synthesize"
    TRAIN = "train"


@dataclass(frozen=True)
class ConsentFacts:
    """What the store knows about a voice's consent, as the policies see it."""

    voice_id: str
    consent_id: str
    status: str
    """``active``, ``revoked`` or ``erased``."""
    organization: str
    purposes: frozenset[str]
    requesters: frozenset[str]
    expires_at: dt.datetime | None
    epsilon_spent: float
    epsilon_cap: float


@dataclass(frozen=True)
class PolicyRequest:
    """One use of a voice to decide on."""

    action: Action
    voice_id: str
    purpose: str
    requester: str
    epsilon: float = 0.0
    """Privacy budget this use would spend (training); 0 for synthesis."""


@dataclass(frozen=True)
class Decision:
    """The engine's answer, with the policy ids that determined it and why."""

    allowed: bool
    policy_ids: tuple[str, ...]
    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class PolicySet:
    """Schema-validated Cedar policies loaded from a directory."""

    @classmethod
    def load(cls, directory: Path) -> PolicySet:
        raise NotImplementedError

    def problems(self) -> list[str]:
        """Schema validation problems (empty when the policies are valid)."""
        raise NotImplementedError

    def decide(
        self, request: PolicyRequest, facts: ConsentFacts | None, *, now: dt.datetime
    ) -> Decision:
        """Decide on ``request``; ``facts`` is None for an unknown voice (always denied)."""
        raise NotImplementedError
