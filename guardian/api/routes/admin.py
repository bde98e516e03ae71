"""Signing keys, the audit log and policy explanations (keyed, read-only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from guardian import app as usecases
from guardian.api._deps import GuardianDep, require
from guardian.api._problems import problem_responses
from guardian.app import ApiKeyInfo, Scope
from guardian.errors import PermissionDeniedError
from guardian.policy import Action, PolicyRequest

router = APIRouter(tags=["administration"])
_ERRORS = problem_responses(400, 401, 403, 422, 429)


class KeyList(BaseModel):
    keys: list[dict[str, Any]]


class AuditCheck(BaseModel):
    ok: bool
    entries: int
    head: str
    problems: list[dict[str, Any]]


class AuditEntries(BaseModel):
    entries: list[dict[str, Any]]


class PolicyDecision(BaseModel):
    allowed: bool
    policy_ids: list[str]
    reasons: list[str]
    requester: str


@router.get("/v1/keys", response_model=KeyList, summary="Signing keys", responses=_ERRORS)
def keys(g: GuardianDep, key: Annotated[ApiKeyInfo, Depends(require(Scope.ADMIN))]) -> KeyList:
    with usecases.acting_as(key.id):
        usecases.record_api_access(g, key, "keys.list", target=None)
        return KeyList(keys=[k.to_dict() for k in usecases.list_keys(g)])


@router.get(
    "/v1/audit/verify", response_model=AuditCheck, summary="Check the audit log", responses=_ERRORS
)
def audit_verify(
    g: GuardianDep, key: Annotated[ApiKeyInfo, Depends(require(Scope.AUDIT))]
) -> AuditCheck:
    with usecases.acting_as(key.id):
        report = usecases.verify_audit(g)
        usecases.record_api_access(g, key, "audit.verify", target=None)
    return AuditCheck(
        ok=bool(report),
        entries=report.entries,
        head=report.head_hash,
        problems=[{"seq": p.seq, "reason": p.reason} for p in report.problems],
    )


@router.get(
    "/v1/audit/entries",
    response_model=AuditEntries,
    summary="The newest audit entries",
    responses=_ERRORS,
)
def audit_show(
    g: GuardianDep,
    key: Annotated[ApiKeyInfo, Depends(require(Scope.AUDIT))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> AuditEntries:
    with usecases.acting_as(key.id):
        usecases.record_api_access(g, key, "audit.show", target=None)
        return AuditEntries(entries=usecases.recent_audit(g, limit=limit))


@router.get(
    "/v1/policy/explain",
    response_model=PolicyDecision,
    summary="What the policies would decide for this key's organisation",
    description="The requester is always the API key's organisation; needs the scope named "
    "by the action (`synthesize` or `train`).",
    responses=_ERRORS,
)
def explain(
    g: GuardianDep,
    key: Annotated[ApiKeyInfo, Depends(require(Scope.ADMIN, any_scope=True))],
    action: Action,
    voice_id: Annotated[str, Query(min_length=1, max_length=40)],
    purpose: Annotated[str, Query(min_length=1, max_length=200)],
    epsilon: Annotated[float, Query(ge=0, le=100)] = 0.0,
) -> PolicyDecision:
    if not key.allows(Scope(action.value)):
        raise PermissionDeniedError(f"this API key lacks the {action.value!r} scope")
    request = PolicyRequest(action, voice_id, purpose, key.organization, epsilon=epsilon)
    with usecases.acting_as(key.id):
        decision = usecases.explain_policy(g, request)
        usecases.record_api_access(g, key, "policy.explain", target=voice_id)
    return PolicyDecision(**decision.to_dict(), requester=key.organization)
