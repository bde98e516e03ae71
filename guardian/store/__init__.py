"""Persistence: SQLModel tables on SQLite (default) or PostgreSQL."""

from guardian.store.db import make_engine, migrate, session_scope
from guardian.store.models import (
    AuditEntry,
    FingerprintHash,
    KeyRole,
    KeyStatus,
    Label,
    SigningKey,
    as_utc,
    utcnow,
)

__all__ = [
    "AuditEntry",
    "FingerprintHash",
    "KeyRole",
    "KeyStatus",
    "Label",
    "SigningKey",
    "as_utc",
    "make_engine",
    "migrate",
    "session_scope",
    "utcnow",
]
