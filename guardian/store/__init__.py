"""Persistence: SQLModel tables on SQLite (default) or PostgreSQL."""

from guardian.store.db import make_engine, migrate, session_scope
from guardian.store.models import (
    AuditEntry,
    Challenge,
    FingerprintHash,
    KeyRole,
    KeyStatus,
    Label,
    SigningKey,
    Subject,
    SubjectStatus,
    VaultBlob,
    VaultState,
    Voice,
    VoiceStatus,
    as_utc,
    utcnow,
)

__all__ = [
    "AuditEntry",
    "Challenge",
    "FingerprintHash",
    "KeyRole",
    "KeyStatus",
    "Label",
    "SigningKey",
    "Subject",
    "SubjectStatus",
    "VaultBlob",
    "VaultState",
    "Voice",
    "VoiceStatus",
    "as_utc",
    "make_engine",
    "migrate",
    "session_scope",
    "utcnow",
]
