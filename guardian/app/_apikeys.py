"""Use-cases: HTTP API keys (create, list, revoke, authenticate) and who is acting.

A key is ``gdn_<prefix>_<secret>``: the prefix finds the row, the whole token is
compared in constant time against the stored SHA-256 (the token carries 256 random bits,
so a fast hash is enough). The token is shown once, at creation, and never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from guardian.app._context import Guardian
from guardian.app._scopes import Scope
from guardian.errors import AuthenticationError, NotFoundError, UsageError
from guardian.store import ApiKey, as_utc, utcnow

TOKEN_PREFIX = "gdn"  # noqa: S105 (a label, not a secret)
_TOKEN = re.compile(r"^gdn_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# Compared against when no key has the presented prefix, so that an unknown key takes
# the same work and gets the same answer as a known one with a wrong secret.
_DUMMY_SHA256 = hashlib.sha256(b"guardian-no-such-api-key").hexdigest()
_NAME = re.compile(r"^[\w .@:/-]{1,120}$")


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as it may be shown: never the token or its hash."""

    id: str
    name: str
    organization: str
    scopes: tuple[Scope, ...]
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: ApiKey) -> ApiKeyInfo:
        return cls(
            id=row.id,
            name=row.name,
            organization=row.organization,
            scopes=tuple(Scope(v) for v in json.loads(row.scopes_json)),
            prefix=row.prefix,
            created_at=as_utc(row.created_at),
            revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
        )

    def allows(self, scope: Scope) -> bool:
        """``admin`` may do everything; any other scope only itself."""
        return scope in self.scopes or Scope.ADMIN in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "organization": self.organization,
            "scopes": [s.value for s in self.scopes],
            "prefix": self.prefix,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "revoked_at": self.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            if self.revoked_at
            else None,
        }


@dataclass(frozen=True)
class NewApiKey:
    """A freshly created key; ``token`` is shown once and cannot be recovered."""

    info: ApiKeyInfo
    token: str


def parse_scopes(values: Iterable[str]) -> tuple[Scope, ...]:
    """Scopes from names (comma-separated values allowed), refusing unknown ones."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        raise UsageError("an API key needs at least one scope")
    try:
        return tuple(dict.fromkeys(Scope(n) for n in names))
    except ValueError as e:
        known = ", ".join(s.value for s in Scope)
        raise UsageError(f"unknown scope in {names}; known scopes: {known}") from e


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_key(
    g: Guardian, *, name: str, organization: str, scopes: Iterable[str]
) -> NewApiKey:
    """``guardian apikey create``: a new key for ``organization`` with ``scopes``."""
    for value, what in ((name, "name"), (organization, "organization")):
        if not _NAME.match(value):
            raise UsageError(f"invalid {what} {value!r}: 1-120 letters, digits, spaces, .@:/-_")
    chosen = parse_scopes(scopes)
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    g.ensure_keys()
    with g.transaction() as s:
        row = ApiKey(
            id=f"key_{secrets.token_hex(8)}",
            prefix=prefix,
            token_sha256=_digest(token),
            name=name,
            organization=organization,
            scopes_json=json.dumps([sc.value for sc in chosen]),
            created_at=utcnow(),
        )
        s.add(row)
        g.audit.append(
            s,
            "apikey.create",
            target=row.id,
            details={
                "name": name,
                "organization": organization,
                "scopes": [c.value for c in chosen],
            },
        )
    return NewApiKey(ApiKeyInfo.from_row(row), token)


def list_api_keys(g: Guardian) -> list[ApiKeyInfo]:
    with g.reading() as s:
        rows = s.exec(select(ApiKey).order_by(col(ApiKey.created_at))).all()
        return [ApiKeyInfo.from_row(r) for r in rows]


def revoke_api_key(g: Guardian, key_id: str) -> ApiKeyInfo:
    """``guardian apikey revoke``: the key stops working at once (idempotent)."""
    g.ensure_keys()
    with g.transaction() as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            raise NotFoundError(f"no API key {key_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            s.add(row)
            g.audit.append(s, "apikey.revoke", target=key_id)
    return ApiKeyInfo.from_row(row)


def authenticate_api_key(g: Guardian, token: str) -> ApiKeyInfo:
    """The active key ``token`` belongs to.

    Raises:
        AuthenticationError: malformed, unknown or revoked, always with the same message.
    """
    match = _TOKEN.match(token)
    prefix = match.group(1) if match else ""
    with g.reading() as s:
        row = s.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first() if prefix else None
    expected = row.token_sha256 if row is not None else _DUMMY_SHA256
    same = hmac.compare_digest(_digest(token), expected)
    if row is None or not same or row.revoked_at is not None:
        raise AuthenticationError("invalid or revoked API key")
    return ApiKeyInfo.from_row(row)


def record_api_access(g: Guardian, key: ApiKeyInfo, operation: str, *, target: str | None) -> None:
    """Put a keyed call that changes nothing (a read) into the audit log under the key."""
    with g.transaction() as s:
        g.audit.append(
            s,
            "api.access",
            target=target,
            details={"operation": operation, "organization": key.organization},
        )


__all__ = [
    "ApiKeyInfo",
    "NewApiKey",
    "authenticate_api_key",
    "create_api_key",
    "list_api_keys",
    "parse_scopes",
    "record_api_access",
    "revoke_api_key",
]
