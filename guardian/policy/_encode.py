"""Pure translation of a use of a voice into a Cedar request and entities.

Units (the schema in ``policies/schema.cedarschema`` documents them too):

- Privacy budgets are whole micro-epsilon. Cedar's ``decimal`` has no addition, and
  the budget rule must add the requested spend to what is spent, so ε travels as a
  ``Long``. Each figure is read from its shortest decimal form (``0.1`` is exactly
  100 000 µε, not the binary float's 100 000.000000000005…). What is spent or
  requested rounds up, the cap rounds down: quantising can only make the budget
  check stricter, never looser.
- Times are whole seconds since the Unix epoch, rounded down. Rounding both the
  decision time and the consent's end down keeps ``now >= expires`` true whenever it
  holds for the exact times, so quantising can only end a consent earlier, by under
  a second, never later. Naive datetimes are UTC (the store's convention).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from guardian.policy._model import ConsentFacts, LabelPolicyRequest, PolicyRequest

MICRO_PER_EPSILON = 1_000_000

# Figures saturate here (10^12 ε, far beyond any meaningful budget) so that
# spent + requested stays inside Cedar's 64-bit Long. A cap saturates one below the
# limit, so a saturated spend or request always exceeds every cap: saturation can
# only deny, never allow.
MICRO_EPSILON_LIMIT = 10**18

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

REQUESTER_TYPE = "Requester"
VOICE_TYPE = "Voice"
IMPORTED_AUDIO_TYPE = "ImportedAudio"
_IMPORTED_AUDIO_ID = "input"


def micro_epsilon(value: float, *, round_up: bool) -> int:
    """``value`` ε as whole micro-ε, rounded up or down and saturated at the limit.

    Args:
        value: A finite, non-negative ε (the dataclasses enforce this).
        round_up: Round towards +∞ (spent, requested) rather than towards 0 (cap).

    Returns:
        The figure in micro-ε: at most :data:`MICRO_EPSILON_LIMIT` rounded up, at
        most one less rounded down.
    """
    scaled = Decimal(repr(float(value))) * MICRO_PER_EPSILON
    whole = int(scaled.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_FLOOR))
    return min(whole, MICRO_EPSILON_LIMIT if round_up else MICRO_EPSILON_LIMIT - 1)


def epoch_seconds(moment: dt.datetime) -> int:
    """Whole seconds from the Unix epoch to ``moment``, rounded down (towards the past)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    # Integer arithmetic on the timedelta: float timestamps round unpredictably.
    delta = moment - _EPOCH
    return delta.days * 86_400 + delta.seconds


def cedar_request(request: PolicyRequest, *, now: dt.datetime) -> dict[str, Any]:
    """The Cedar request (principal, action, resource, context) for ``request``."""
    return {
        # The structured uid form accepts any id string, unlike Cedar's surface syntax.
        "principal": {"type": REQUESTER_TYPE, "id": request.requester},
        "action": {"type": "Action", "id": request.action.value},
        "resource": {"type": VOICE_TYPE, "id": request.voice_id},
        "context": {
            "purpose": request.purpose,
            "now": epoch_seconds(now),
            "epsilon_requested_micro": micro_epsilon(request.epsilon, round_up=True),
        },
    }


def cedar_entities(request: PolicyRequest, facts: ConsentFacts) -> list[dict[str, Any]]:
    """The Cedar entities the request refers to: its requester and the voice."""
    expires = facts.expires_at
    return [
        {
            "uid": {"type": REQUESTER_TYPE, "id": request.requester},
            "attrs": {"name": request.requester},
            "parents": [],
        },
        {
            "uid": {"type": VOICE_TYPE, "id": facts.voice_id},
            "attrs": {
                "consent_id": facts.consent_id,
                "status": facts.status,
                "organization": facts.organization,
                # Sorted so that the same facts always give the same entity JSON.
                "purposes": sorted(facts.purposes),
                "requesters": sorted(facts.requesters),
                "never_expires": expires is None,
                "expires": 0 if expires is None else epoch_seconds(expires),
                "epsilon_spent_micro": micro_epsilon(facts.epsilon_spent, round_up=True),
                "epsilon_cap_micro": micro_epsilon(facts.epsilon_cap, round_up=False),
            },
            "parents": [],
        },
    ]


def cedar_label_request(request: LabelPolicyRequest, *, now: dt.datetime) -> dict[str, Any]:
    """The Cedar request for labeling imported audio."""
    return {
        "principal": {"type": REQUESTER_TYPE, "id": request.requester},
        "action": {"type": "Action", "id": "label"},
        "resource": {"type": IMPORTED_AUDIO_TYPE, "id": _IMPORTED_AUDIO_ID},
        "context": {"purpose": request.purpose, "now": epoch_seconds(now)},
    }


def cedar_label_entities(request: LabelPolicyRequest) -> list[dict[str, Any]]:
    """The requester and the imported audio."""
    return [
        {
            "uid": {"type": REQUESTER_TYPE, "id": request.requester},
            "attrs": {"name": request.requester},
            "parents": [],
        },
        {
            "uid": {"type": IMPORTED_AUDIO_TYPE, "id": _IMPORTED_AUDIO_ID},
            "attrs": {
                "format": request.format,
                "duration_ms": int(request.duration_s * 1000),
            },
            "parents": [],
        },
    ]
