"""Database tables. Every change to them goes through an Alembic migration."""

from __future__ import annotations

import datetime as dt
from enum import Enum

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class KeyRole(str, Enum):
    ROOT = "root"
    SIGNER = "signer"
    AUDIT = "audit"


class KeyStatus(str, Enum):
    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


class SigningKey(SQLModel, table=True):
    """Public half and lifecycle of a key; the sealed private half is a key file."""

    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    role: KeyRole = Field(index=True)
    status: KeyStatus = Field(index=True)
    public_pem: str = Field(sa_column=Column(Text, nullable=False))
    serial: str | None = Field(default=None, index=True, max_length=64)
    issuer_kid: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    not_after: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    revoked_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    revocation_reason: str | None = None


class Label(SQLModel, table=True):
    """One labeled clip in the provenance registry."""

    __tablename__ = "label"

    id: str = Field(primary_key=True, max_length=40)
    manifest_id: str = Field(index=True, unique=True, max_length=120)
    content_sha256: str = Field(index=True, max_length=64)
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    duration_s: float
    sample_rate: int
    channels: int
    format: str = Field(max_length=8)
    signer_kid: str = Field(foreign_key="signing_key.kid", max_length=64)
    purpose: str | None = None
    voice_id: str | None = Field(default=None, index=True, max_length=64)
    consent_id: str | None = Field(default=None, max_length=64)
    assertion_json: str = Field(sa_column=Column(Text, nullable=False))
    wm_payload: int | None = None
    """The 16-bit watermark message embedded in the clip (None: not watermarked)."""
    wm_tag: int | None = Field(default=None, index=True)
    """The payload's 12-bit label tag, indexed to narrow watermark-led look-ups."""
    wm_model: str | None = Field(default=None, max_length=80)


class FingerprintClip(SQLModel, table=True):
    """A small integer for each fingerprinted label, so that an index row holds four
    bytes where the label id would take forty (docs/adr/0005-registry-compact-postings.md)."""

    __tablename__ = "fingerprint_clip"

    n: int | None = Field(default=None, primary_key=True)
    label_id: str = Field(foreign_key="label.id", unique=True, index=True, max_length=40)


class FingerprintPosting(SQLModel, table=True):
    """Inverted index from a 32-bit sub-fingerprint to where it occurs.

    The primary key is the whole row, ``(hash, clip, frame)``, and the look-up reads
    it by hash: on PostgreSQL an index-only scan, on SQLite a table without rowids
    that *is* that index (docs/adr/0005-registry-compact-postings.md).
    """

    __tablename__ = "fingerprint_posting"
    __table_args__ = ({"sqlite_with_rowid": False},)

    hash: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    clip: int = Field(
        sa_column=Column(
            Integer, ForeignKey("fingerprint_clip.n"), primary_key=True, autoincrement=False
        )
    )
    frame: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))


class AuditEntry(SQLModel, table=True):
    """One link of the hash-chained, signed audit log."""

    __tablename__ = "audit_entry"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: str = Field(max_length=40)
    action: str = Field(index=True, max_length=64)
    target: str | None = Field(default=None, max_length=200)
    details_json: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)
    kid: str = Field(max_length=64)
    signature: str = Field(max_length=200)


class SubjectStatus(str, Enum):
    PENDING = "pending"
    """A challenge was issued; no enrollment has succeeded yet."""
    ENROLLED = "enrolled"
    ERASED = "erased"


class VoiceStatus(str, Enum):
    ACTIVE = "active"
    REVOKED = "revoked"
    ERASED = "erased"


class Subject(SQLModel, table=True):
    """A data subject, known only by a pseudonymous id.

    ``wrapped_key`` is the subject's vault data key, sealed under the master key; it is
    the only way to read the subject's vault blobs (crypto-shredding sets it to None).
    """

    __tablename__ = "subject"

    id: str = Field(primary_key=True, max_length=40)
    status: SubjectStatus = Field(index=True)
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    wrapped_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    erased_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class VaultState(SQLModel, table=True):
    """The vault root key epoch in force (one row), and a check value of its key file."""

    __tablename__ = "vault_state"

    id: int = Field(default=1, primary_key=True)
    epoch: int
    key_check: str = Field(max_length=64)


class VaultBlob(SQLModel, table=True):
    """One encrypted object of a subject: audio, embedding, consent record, adapter."""

    __tablename__ = "vault_blob"

    id: str = Field(primary_key=True, max_length=40)
    subject_id: str = Field(foreign_key="subject.id", index=True, max_length=40)
    kind: str = Field(index=True, max_length=32)
    ref: str | None = Field(default=None, index=True, max_length=64)
    """The voice or challenge the blob belongs to."""
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Challenge(SQLModel, table=True):
    """A one-time consent challenge; the name, statement and code live in the vault."""

    __tablename__ = "challenge"

    id: str = Field(primary_key=True, max_length=40)
    subject_id: str = Field(foreign_key="subject.id", index=True, max_length=40)
    organization: str = Field(max_length=200)
    locale: str = Field(max_length=16)
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    outcome: str | None = Field(default=None, max_length=16)


class Voice(SQLModel, table=True):
    """An enrolled voice and the terms of its consent (the signed record is in the vault)."""

    __tablename__ = "voice"

    id: str = Field(primary_key=True, max_length=40)
    subject_id: str = Field(foreign_key="subject.id", index=True, max_length=40)
    consent_id: str = Field(unique=True, max_length=40)
    status: VoiceStatus = Field(index=True)
    organization: str = Field(max_length=200)
    purposes_json: str = Field(sa_column=Column(Text, nullable=False))
    requesters_json: str = Field(sa_column=Column(Text, nullable=False))
    expires_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    max_epsilon: float
    epsilon_spent: float = 0.0
    delta_spent: float = 0.0
    record_blob_id: str = Field(max_length=40)
    record_sha256: str = Field(max_length=64)
    subject_signed: bool = False
    withdraw_token_mac: str = Field(index=True, unique=True, max_length=64)
    """HMAC of the subject's self-service withdrawal token (the token itself is never
    stored; it is shown once, at enrollment)."""
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    revocation_reason: str | None = Field(default=None, max_length=200)


class ApiKey(SQLModel, table=True):
    """An HTTP API key. Only a SHA-256 of the token is stored; ``prefix`` finds the row."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=40)
    prefix: str = Field(index=True, unique=True, max_length=16)
    token_sha256: str = Field(max_length=64)
    name: str = Field(max_length=120)
    organization: str = Field(max_length=200)
    scopes_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(SQLModel, table=True):
    """Long work (training) requested over HTTP and run by a worker process."""

    __tablename__ = "job"

    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(index=True, max_length=32)
    status: JobStatus = Field(index=True)
    params_json: str = Field(sa_column=Column(Text, nullable=False))
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, max_length=500)
    key_id: str | None = Field(default=None, max_length=40)
    organization: str = Field(max_length=200)
    cancel_requested: bool = False
    worker_pid: int | None = None
    attempts: int = 0
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    started_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    finished_at: dt.datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class AuditLock(SQLModel, table=True):
    """One row that every audit append locks first, so concurrent writers (server
    workers, a CLI beside them) take turns and the hash chain never forks."""

    __tablename__ = "audit_lock"

    id: int = Field(default=1, primary_key=True)
    appends: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class ManifestStore(SQLModel, table=True):
    """The signed C2PA manifest store of a label, served by the soft-binding API."""

    __tablename__ = "manifest_store"

    manifest_id: str = Field(primary_key=True, max_length=120)
    label_id: str = Field(foreign_key="label.id", index=True, max_length=40)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


__all__ = [
    "ApiKey",
    "AuditEntry",
    "AuditLock",
    "Challenge",
    "FingerprintClip",
    "FingerprintPosting",
    "Job",
    "JobStatus",
    "KeyRole",
    "KeyStatus",
    "Label",
    "ManifestStore",
    "SigningKey",
    "Subject",
    "SubjectStatus",
    "VaultBlob",
    "VaultState",
    "Voice",
    "VoiceStatus",
    "as_utc",
    "utcnow",
]
