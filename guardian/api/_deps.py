"""Dependencies: the Guardian services, the caller's API key and its scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from guardian import app as usecases
from guardian.api._cpu import CpuSlots
from guardian.api._metrics import Metrics
from guardian.api._ratelimit import RateLimiter
from guardian.app import ApiKeyInfo, Guardian, Scope
from guardian.config import Settings
from guardian.errors import AuthenticationError, PermissionDeniedError

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="gdn_<prefix>_<secret>",
    description="An API key from `guardian apikey create`, as `Authorization: Bearer <key>`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_guardian(request: Request) -> Guardian:
    guardian: Guardian = request.app.state.guardian
    return guardian


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_cpu(request: Request) -> CpuSlots:
    slots: CpuSlots = request.app.state.cpu_slots
    return slots


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


GuardianDep = Annotated[Guardian, Depends(get_guardian)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
CpuDep = Annotated[CpuSlots, Depends(get_cpu)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _authenticate(
    request: Request, g: Guardian, creds: HTTPAuthorizationCredentials | None
) -> ApiKeyInfo:
    limiter: RateLimiter = request.app.state.limiter
    if creds is None:
        limiter.charge(f"ip:{client_address(request)}")
        raise AuthenticationError("this operation needs an API key (Authorization: Bearer …)")
    try:
        key = usecases.authenticate_api_key(g, creds.credentials)
    except AuthenticationError:
        limiter.charge(f"ip:{client_address(request)}")  # guessing costs the guesser
        raise
    limiter.charge(f"key:{key.id}")
    request.state.key_id = key.id
    return key


def require(scope: Scope, *, any_scope: bool = False) -> Callable[..., ApiKeyInfo]:
    """A dependency that admits only a valid key holding ``scope`` (or ``admin``).

    With ``any_scope`` every valid key passes, for routes whose scope depends on their
    input (they check it themselves).
    """

    def dependency(request: Request, g: GuardianDep, creds: Credentials) -> ApiKeyInfo:
        key = _authenticate(request, g, creds)
        if not any_scope and not key.allows(scope):
            raise PermissionDeniedError(f"this API key lacks the {scope.value!r} scope")
        return key

    return dependency


def public(
    request: Request, g: GuardianDep, settings: SettingsDep, creds: Credentials
) -> ApiKeyInfo | None:
    """The public verifier: open by default, any valid key when the setting says so.

    A key that is presented must be valid even where none is needed.
    """
    if creds is None and not settings.api_require_key_for_verify:
        request.app.state.limiter.charge(f"ip:{client_address(request)}")
        return None
    return _authenticate(request, g, creds)


PublicCaller = Annotated[ApiKeyInfo | None, Depends(public)]


def audit_access(g: Guardian, key: ApiKeyInfo, operation: str, target: str | None) -> None:
    """Record a keyed call that changed nothing, under the key's id."""
    with usecases.acting_as(key.id):
        usecases.record_api_access(g, key, operation, target=target)


__all__ = [
    "CpuDep",
    "GuardianDep",
    "MetricsDep",
    "PublicCaller",
    "SettingsDep",
    "audit_access",
    "client_address",
    "get_guardian",
    "require",
]
