"""Use-cases: policy decisions on uses of a voice, audited; policy checks and explanations."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session

from guardian.app._context import Guardian
from guardian.errors import PolicyDeniedError
from guardian.policy import ConsentFacts, Decision, LabelPolicyRequest, PolicyRequest
from guardian.policy import check_policies as _check_policies
from guardian.store import Voice, as_utc, utcnow


def consent_facts(voice: Voice | None) -> ConsentFacts | None:
    """The stored terms of a voice's consent, as the policies see them."""
    if voice is None:
        return None
    return ConsentFacts(
        voice_id=voice.id,
        consent_id=voice.consent_id,
        status=voice.status.value,
        organization=voice.organization,
        purposes=frozenset(json.loads(voice.purposes_json)),
        requesters=frozenset(json.loads(voice.requesters_json)),
        expires_at=as_utc(voice.expires_at) if voice.expires_at else None,
        epsilon_spent=voice.epsilon_spent,
        epsilon_cap=voice.max_epsilon,
    )


def _facts(s: Session, voice_id: str) -> ConsentFacts | None:
    return consent_facts(s.get(Voice, voice_id))


def explain(g: Guardian, request: PolicyRequest) -> Decision:
    """The decision on ``request`` and its reasons, without recording or acting on it."""
    with g.reading() as s:
        return g.policies.decide(request, _facts(s, request.voice_id), now=utcnow())


def authorize(g: Guardian, s: Session, request: PolicyRequest) -> Decision:
    """Decide on ``request`` inside the caller's transaction and audit the decision.

    Raises :class:`PolicyDeniedError` on a denial; the caller must commit the audit entry
    first (see :func:`require`), so the denial itself is on record.
    """
    decision = g.policies.decide(request, _facts(s, request.voice_id), now=utcnow())
    g.audit.append(
        s,
        "policy.decision",
        target=request.voice_id,
        details={
            "action": request.action.value,
            "purpose": request.purpose,
            "requester": request.requester,
            "epsilon": request.epsilon,
            **decision.to_dict(),
        },
    )
    return decision


def require(g: Guardian, request: PolicyRequest) -> Decision:
    """Decide, record the decision, and raise if it is a denial."""
    with g.transaction() as s:
        decision = authorize(g, s, request)
    if not decision:
        raise PolicyDeniedError("denied by policy: " + "; ".join(decision.reasons))
    return decision


def require_label(g: Guardian, request: LabelPolicyRequest) -> Decision:
    """Decide on labeling imported audio, record the decision, and raise if denied."""
    with g.transaction() as s:
        decision = g.policies.decide_label(request, now=utcnow())
        g.audit.append(
            s,
            "policy.decision",
            target=None,
            details={
                "action": "label",
                "purpose": request.purpose,
                "requester": request.requester,
                **decision.to_dict(),
            },
        )
    if not decision:
        raise PolicyDeniedError("denied by policy: " + "; ".join(decision.reasons))
    return decision


def check_policies(directory: Path) -> list[str]:
    """Problems with the policies in ``directory`` (empty when they are valid)."""
    return _check_policies(directory)
