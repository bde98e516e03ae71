"""Envelope encryption of personal data, one data key per subject.

Each subject gets a random 256-bit data key when they first appear (at the consent
challenge). The key is wrapped (AES-256-GCM, AAD = subject id) under a key derived from
the master key and the vault root key of the current epoch (:mod:`._rootkey`), and
stored in the subject's row; it never touches disk in the clear. Every blob is
AES-256-GCM under the data key with the blob's id, subject and kind as associated data,
so a ciphertext cannot be moved to another subject, id or kind.

:meth:`Vault.shred` destroys subjects' data keys and moves the vault to a new root-key
epoch, so that copies of the wrapped keys in backups cannot be unwrapped either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from sqlmodel import Session, col, select

from guardian.errors import VaultError
from guardian.keys import MasterKey
from guardian.keys._sealing import open_sealed, seal
from guardian.store import Subject, SubjectStatus, VaultBlob, VaultState, utcnow
from guardian.vault._rootkey import RootKey, RootKeyFile, new_root_key

DATA_KEY_BYTES = 32


class BlobKind(str, Enum):
    CHALLENGE = "challenge"
    """Name, organisation, statement and one-time code of a pending challenge."""
    CONSENT_AUDIO = "consent-audio"
    SAMPLE = "sample"
    TRANSCRIPTS = "transcripts"
    """What the subject read in each sample (the training texts), as a JSON list."""
    EMBEDDING = "embedding"
    CONSENT_RECORD = "consent-record"
    ADAPTER = "adapter"


def new_id(prefix: str) -> str:
    """A random, unguessable id such as ``voice_3kq...`` (128 bits, base32)."""
    token = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()
    return f"{prefix}_{token}"


@dataclass(frozen=True)
class ShredResult:
    epoch: int
    """The root-key epoch now in force."""
    blobs: int
    """Vault blobs deleted."""
    rewrapped: int
    """Other subjects' data keys moved to the new epoch."""


@dataclass(frozen=True)
class StoredBlob:
    """Metadata of a vault blob (never its content)."""

    id: str
    subject_id: str
    kind: BlobKind
    ref: str | None
    size: int


@dataclass(frozen=True)
class SealedBlob:
    """A blob encrypted under its subject's data key, not yet stored (ciphertext only)."""

    blob_id: str
    subject_id: str
    kind: BlobKind
    ciphertext: bytes = field(repr=False)


def _aad(subject_id: str, blob_id: str, kind: BlobKind) -> bytes:
    return f"guardian-vault/v1|{subject_id}|{blob_id}|{kind.value}".encode()


class Vault:
    """Creates subjects' data keys and seals or opens their blobs.

    Methods take the caller's session, so that blobs commit atomically with the rows
    and audit entries that refer to them.
    """

    def __init__(self, master: MasterKey, root_key_path: Path) -> None:
        self._master = master
        self._file = RootKeyFile(root_key_path, master)
        self._root: RootKey | None = None

    def __repr__(self) -> str:
        return f"Vault({self._file.path}, <keys redacted>)"

    # -- root key --------------------------------------------------------------------

    def ensure(self, session: Session) -> None:
        """Create the first root key (epoch 1) or finish an interrupted rotation."""
        if session.get(VaultState, 1) is None:
            key = self._file.read()
            if key is None:
                key = new_root_key(1)
                if not self._file.create(key):
                    key = self._file.read()
            if key is None:
                raise VaultError(f"cannot create the vault key {self._file.path}")
            session.add(VaultState(id=1, epoch=key.epoch, key_check=key.check))
            session.flush()
        self._current(session)

    def _current(self, session: Session) -> RootKey:
        state = session.get(VaultState, 1)
        if state is None:
            raise VaultError("the vault is not initialised")
        if self._root is not None and self._root.epoch == state.epoch:
            return self._root
        pending = self._file.read(self._file.next_path)
        if pending is not None:
            if pending.epoch == state.epoch and hmac.compare_digest(pending.check, state.key_check):
                self._file.promote_next()  # the rotation committed; finish it
            else:
                self._file.discard_next()  # the rotation never committed
        key = self._file.read()
        if (
            key is None
            or key.epoch != state.epoch
            or not hmac.compare_digest(key.check, state.key_check)
        ):
            raise VaultError(
                f"the vault key {self._file.path} does not belong to this database "
                f"(epoch {state.epoch}): a backup restored without its key, or the wrong key"
            )
        self._root = key
        return key

    def _wrap(self, session: Session) -> bytes:
        return self._current(session).wrapping_key(self._master)

    def token_mac(self, token: str) -> str:
        """Keyed MAC of a bearer token, so the database never holds a usable token."""
        key = self._master.derive("vault.token-mac")
        return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()

    def new_subject(self, session: Session) -> Subject:
        """Create a pending subject with a fresh data key."""
        subject_id = new_id("sub")
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        wrapped = seal(self._wrap(session), data_key, aad=subject_id.encode())
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
        return self.put_sealed(session, self.seal(session, subject_id, kind, plaintext), ref=ref)

    def seal(
        self, session: Session, subject_id: str, kind: BlobKind, plaintext: bytes
    ) -> SealedBlob:
        """Encrypt ``plaintext`` for a new blob of the subject without storing it.

        A worker that holds the plaintext (a training run) seals its result this way and
        hands only the ciphertext back; :meth:`put_sealed` stores it later.
        """
        key = self._data_key(session, subject_id)
        blob_id = new_id("blob")
        ciphertext = seal(key, plaintext, aad=_aad(subject_id, blob_id, kind))
        return SealedBlob(blob_id, subject_id, kind, ciphertext)

    def put_sealed(
        self, session: Session, sealed: SealedBlob, *, ref: str | None = None
    ) -> StoredBlob:
        """Store a blob sealed by :meth:`seal`, after checking that it opens under the
        subject's current data key (an erased subject's blob is refused)."""
        key = self._data_key(session, sealed.subject_id)
        aad = _aad(sealed.subject_id, sealed.blob_id, sealed.kind)
        try:
            open_sealed(key, sealed.ciphertext, aad=aad)
        except ValueError as e:
            raise VaultError(f"sealed blob {sealed.blob_id} failed authentication") from e
        session.add(
            VaultBlob(
                id=sealed.blob_id,
                subject_id=sealed.subject_id,
                kind=sealed.kind.value,
                ref=ref,
                created_at=utcnow(),
                ciphertext=sealed.ciphertext,
            )
        )
        session.flush()
        return StoredBlob(
            sealed.blob_id, sealed.subject_id, sealed.kind, ref, len(sealed.ciphertext)
        )

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
        try:
            return open_sealed(self._wrap(session), subject.wrapped_key, aad=subject_id.encode())
        except ValueError as e:
            raise VaultError(f"the data key of subject {subject_id} cannot be unwrapped") from e

    # -- crypto-shredding ------------------------------------------------------------

    def shred(self, session: Session, subject_ids: set[str]) -> ShredResult:
        """Destroy the subjects' data keys and blobs, and ratchet the root key.

        Runs in the caller's transaction; the new root key is written beside the old
        one first. After the commit, call :meth:`finish_shred` to put it in force (an
        interrupted finish is completed by the next :meth:`ensure`).
        """
        current = self._current(session)
        state = session.get(VaultState, 1)
        if state is None:
            raise VaultError("the vault is not initialised")
        nxt = new_root_key(current.epoch + 1)
        self._file.write_next(nxt)
        old_wrap, new_wrap = current.wrapping_key(self._master), nxt.wrapping_key(self._master)
        live = session.exec(select(Subject).where(col(Subject.wrapped_key).is_not(None))).all()
        for subject in live:
            if subject.wrapped_key is None:
                continue
            if subject.id in subject_ids:
                subject.wrapped_key = None
            else:
                aad = subject.id.encode()
                data_key = open_sealed(old_wrap, subject.wrapped_key, aad=aad)
                subject.wrapped_key = seal(new_wrap, data_key, aad=aad)
            session.add(subject)
        blobs = session.exec(
            select(VaultBlob).where(col(VaultBlob.subject_id).in_(subject_ids))
        ).all()
        for blob in blobs:
            session.delete(blob)
        state.epoch, state.key_check = nxt.epoch, nxt.check
        session.add(state)
        session.flush()
        shredded = sum(1 for s in live if s.id in subject_ids)
        return ShredResult(epoch=nxt.epoch, blobs=len(blobs), rewrapped=len(live) - shredded)

    def finish_shred(self, session: Session) -> None:
        """Put the new root key in force and destroy the old one (after the commit)."""
        self._root = None
        self._current(session)
