"""The policy subsystem's data: what is asked, what is known, what was decided.

Constructors enforce the invariants the engine relies on, so an object the Cedar
encoding cannot represent faithfully never exists.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from guardian.errors import PolicyError, UsageError


class Action(str, Enum):
    """What a requester wants to do with a voice (a Cedar action)."""

    SYNTHESIZE = "synthesize"
    TRAIN = "train"


def _check_epsilon(name: str, value: float, error: type[UsageError | PolicyError]) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise error(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise error(f"{name} must be a finite number >= 0, not {value!r}")


@dataclass(frozen=True)
class ConsentFacts:
    """What the store knows about a voice's consent, as the policies see it.

    Naive datetimes are taken as UTC, the store's convention (SQLite drops the zone).

    Raises:
        PolicyError: a privacy-budget figure is negative, infinite or not a number.
    """

    voice_id: str
    consent_id: str
    status: str
    """``active``, ``revoked`` or ``erased``; anything else is never taken as consent."""
    organization: str
    """The organisation the speaker consented to; ``""`` when none was named."""
    purposes: frozenset[str]
    requesters: frozenset[str]
    expires_at: dt.datetime | None
    """End of consent; ``None`` when it does not expire."""
    epsilon_spent: float
    epsilon_cap: float

    def __post_init__(self) -> None:
        _check_epsilon("epsilon_spent", self.epsilon_spent, PolicyError)
        _check_epsilon("epsilon_cap", self.epsilon_cap, PolicyError)
        # Sets arrive from the store as lists or sets; freezing them keeps the facts
        # hashable and immutable whatever the caller passed.
        object.__setattr__(self, "purposes", frozenset(self.purposes))
        object.__setattr__(self, "requesters", frozenset(self.requesters))


@dataclass(frozen=True)
class PolicyRequest:
    """One use of a voice to decide on.

    Raises:
        UsageError: an empty voice id, purpose or requester; a negative or non-finite
            ε; or ε requested for synthesis, which spends no privacy budget.
    """

    action: Action
    voice_id: str
    purpose: str
    requester: str
    epsilon: float = 0.0
    """Privacy budget this use would spend (training); 0 for synthesis."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "action", Action(self.action))
        except ValueError as e:
            choices = ", ".join(a.value for a in Action)
            raise UsageError(f"unknown action {self.action!r}; choose {choices}") from e
        for name in ("voice_id", "purpose", "requester"):
            value = getattr(self, name)
            # An empty requester could match a consent with no organisation; an
            # empty purpose could match a sloppy purposes list. Refuse both early.
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{name} must be a non-empty string")
        _check_epsilon("epsilon", self.epsilon, UsageError)
        if self.action is Action.SYNTHESIZE and self.epsilon != 0:
            raise UsageError("synthesis spends no privacy budget; epsilon must be 0")


@dataclass(frozen=True)
class LabelPolicyRequest:
    """A request to label imported audio (Cedar action ``label``).

    Raises:
        UsageError: an empty requester or format, or a negative duration.
    """

    requester: str
    purpose: str
    """The declared purpose; ``""`` when none was given (the shipped policy denies it)."""
    format: str
    duration_s: float

    def __post_init__(self) -> None:
        for name in ("requester", "format"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{name} must be a non-empty string")
        if not isinstance(self.purpose, str):
            raise UsageError("purpose must be a string")
        if not math.isfinite(self.duration_s) or self.duration_s < 0:
            raise UsageError(f"duration must be a finite number >= 0, not {self.duration_s!r}")


@dataclass(frozen=True)
class Decision:
    """The engine's answer, with the policy ids that determined it and why.

    ``reasons[i]`` explains ``policy_ids[i]``. Every decision names at least one
    policy, so each audit entry says which rule let a use through or stopped it.

    Raises:
        ValueError: no policy id, or not one reason per policy id.
    """

    allowed: bool
    policy_ids: tuple[str, ...]
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy_ids", tuple(self.policy_ids))
        object.__setattr__(self, "reasons", tuple(self.reasons))
        if not self.policy_ids:
            raise ValueError("a decision must name at least one policy id")
        if len(self.reasons) != len(self.policy_ids):
            raise ValueError("a decision needs exactly one reason per policy id")

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready data: ``allowed``, ``policy_ids``, ``reasons``."""
        return {
            "allowed": self.allowed,
            "policy_ids": list(self.policy_ids),
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Rebuild a decision written by :meth:`to_dict` (e.g. read from the audit log)."""
        return cls(
            allowed=bool(data["allowed"]),
            policy_ids=tuple(str(p) for p in data["policy_ids"]),
            reasons=tuple(str(r) for r in data["reasons"]),
        )


@dataclass(frozen=True)
class PolicyInfo:
    """One loaded policy as an operator sees it."""

    policy_id: str
    """The ``@id`` annotation (``""`` when missing, which :meth:`problems` reports)."""
    reason: str
    """The ``@reason`` annotation (``""`` when missing)."""
    effect: str
    """``permit`` or ``forbid``."""
    file: str
    """The file it came from, relative to the policy directory."""
