"""Envelope encryption of personal data, one data key per subject.

Each subject gets a random 256-bit data key when they first appear (at the consent
challenge). The key is sealed under the master key (HKDF purpose ``vault.subject-key``,
AAD = subject id) and stored in the subject's row; it never touches disk in the clear.
Every blob is AES-256-GCM under that data key with the blob's id, subject and kind as
associated data, so a ciphertext cannot be moved to another subject, id or kind.

Destroying the sealed data key (:meth:`Vault.shred`) makes every ciphertext of the
subject unreadable, wherever a copy of it lies.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from enum import Enum

from sqlmodel import Session, col, select

from guardian.errors import VaultError
from guardian.keys import MasterKey
from guardian.keys._sealing import open_sealed, seal
from guardian.store import Subject, SubjectStatus, VaultBlob, utcnow

_KEY_PURPOSE = "vault.subject-key"
DATA_KEY_BYTES = 32


class BlobKind(str, Enum):
    CHALLENGE = "challenge"
    """Name, organisation, statement and one-time code of a pending challenge."""
    CONSENT_AUDIO = "consent-audio"
    SAMPLE = "sample"
    EMBEDDING = "embedding"
    CONSENT_RECORD = "consent-record"
    ADAPTER = "adapter"


def new_id(prefix: str) -> str:
    """A random, unguessable id such as ``voice_3kq...`` (128 bits, base32)."""
    token = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()
    return f"{prefix}_{token}"


@dataclass(frozen=True)
class StoredBlob:
    """Metadata of a vault blob (never its content)."""

    id: str
    subject_id: str
    kind: BlobKind
    ref: str | None
    size: int


def _aad(subject_id: str, blob_id: str, kind: BlobKind) -> bytes:
    return f"guardian-vault/v1|{subject_id}|{blob_id}|{kind.value}".encode()


class Vault:
    """Creates subjects' data keys and seals or opens their blobs.

    Methods take the caller's session, so that blobs commit atomically with the rows
    and audit entries that refer to them.
    """

    def __init__(self, master: MasterKey) -> None:
        self._master = master

    def __repr__(self) -> str:
        return "Vault(<master key redacted>)"

    def new_subject(self, session: Session) -> Subject:
        """Create a pending subject with a fresh data key."""
        subject_id = new_id("sub")
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        wrapped = self._master.seal(data_key, purpose=_KEY_PURPOSE, aad=subject_id.encode())
        row = Subject(
            id=subject_id, status=SubjectStatus.PENDING, created_at=utcnow(), wrapped_key=wrapped
        )
        session.add(row)
        session.flush()
        return row

    def put(
        self,
        session: Session,
        subject_id: str,
        kind: BlobKind,
        plaintext: bytes,
        *,
        ref: str | None = None,
    ) -> StoredBlob:
        """Encrypt ``plaintext`` under the subject's data key and store it."""
        key = self._data_key(session, subject_id)
        blob_id = new_id("blob")
        ciphertext = seal(key, plaintext, aad=_aad(subject_id, blob_id, kind))
        session.add(
            VaultBlob(
                id=blob_id,
                subject_id=subject_id,
                kind=kind.value,
                ref=ref,
                created_at=utcnow(),
                ciphertext=ciphertext,
            )
        )
        session.flush()
        return StoredBlob(blob_id, subject_id, kind, ref, len(ciphertext))

    def get(self, session: Session, blob_id: str) -> bytes:
        """Decrypt one blob; raises :class:`VaultError` if it is gone or unreadable."""
        row = session.get(VaultBlob, blob_id)
        if row is None:
            raise VaultError(f"vault blob {blob_id} does not exist")
        key = self._data_key(session, row.subject_id)
        try:
            return open_sealed(
                key, row.ciphertext, aad=_aad(row.subject_id, row.id, BlobKind(row.kind))
            )
        except ValueError as e:
            raise VaultError(f"vault blob {blob_id} failed authentication") from e

    def blobs(
        self, session: Session, subject_id: str, *, kind: BlobKind | None = None
    ) -> list[StoredBlob]:
        """The subject's blobs, oldest first."""
        query = select(VaultBlob).where(VaultBlob.subject_id == subject_id)
        if kind is not None:
            query = query.where(VaultBlob.kind == kind.value)
        rows = session.exec(query.order_by(col(VaultBlob.created_at), col(VaultBlob.id))).all()
        return [
            StoredBlob(r.id, r.subject_id, BlobKind(r.kind), r.ref, len(r.ciphertext)) for r in rows
        ]

    def delete(self, session: Session, blob_id: str) -> None:
        row = session.get(VaultBlob, blob_id)
        if row is not None:
            session.delete(row)
            session.flush()

    def _data_key(self, session: Session, subject_id: str) -> bytes:
        subject = session.get(Subject, subject_id)
        if subject is None:
            raise VaultError(f"subject {subject_id} does not exist")
        if subject.wrapped_key is None:
            raise VaultError(f"subject {subject_id} was erased: their data key is destroyed")
        return self._master.open(subject.wrapped_key, purpose=_KEY_PURPOSE, aad=subject_id.encode())
