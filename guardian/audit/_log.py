"""The audit log over the database, plus its signed head file."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from guardian.audit._chain import (
    GENESIS,
    AuditReport,
    Head,
    StoredEntry,
    check_chain,
    entry_digest,
    head_message,
)
from guardian.errors import AuditError
from guardian.keys import AuditSigner, KeyStore
from guardian.store.models import AuditEntry

_ACTOR: ContextVar[str | None] = ContextVar("guardian_audit_actor", default=None)


@contextmanager
def acting_as(actor: str | None) -> Iterator[None]:
    """Record ``actor`` (an API key id) in every audit entry appended inside the block."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """Append-only, hash-chained, Ed25519-signed log of state changes."""

    def __init__(self, *, keystore: KeyStore, head_path: Path) -> None:
        self._keys = keystore
        self._head_path = head_path

    def append(
        self,
        session: Session,
        action: str,
        *,
        target: str | None = None,
        details: Mapping[str, Any] | None = None,
        signer: AuditSigner | None = None,
    ) -> AuditEntry:
        """Add an entry in the caller's transaction and return it, signed with the active
        audit key (or ``signer``: the previous key, to certify its successor)."""
        signer = signer or self._keys.audit_signer(session)
        last = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc())).first()
        seq = (last.seq + 1) if last else 1
        prev = last.entry_hash if last else GENESIS
        at = _now_iso()
        body = dict(details or {})
        actor = _ACTOR.get()
        if actor is not None:
            body.setdefault("actor", actor)
        digest = entry_digest(seq=seq, at=at, action=action, target=target, details=body, prev=prev)
        entry = AuditEntry(
            seq=seq,
            at=at,
            action=action,
            target=target,
            details_json=json.dumps(body, sort_keys=True),
            prev_hash=prev,
            entry_hash=digest,
            kid=signer.kid,
            signature=base64.b64encode(signer.sign(bytes.fromhex(digest))).decode(),
        )
        session.add(entry)
        session.flush()
        return entry

    def write_head(self, session: Session, signer: AuditSigner | None = None) -> None:
        """Record the newest entry in the head file, after the transaction commits."""
        last = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc())).first()
        if last is None:
            return
        signer = signer or self._keys.audit_signer(session)
        sig = base64.b64encode(signer.sign(head_message(last.seq, last.entry_hash))).decode()
        doc = {"seq": last.seq, "entry_hash": last.entry_hash, "kid": signer.kid, "signature": sig}
        tmp = self._head_path.with_name(f".{self._head_path.name}.{secrets.token_hex(4)}")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self._head_path)

    def entries(self, session: Session, *, limit: int | None = None) -> list[AuditEntry]:
        stmt = select(AuditEntry).order_by(col(AuditEntry.seq))
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(session.exec(stmt).all())

    def count(self, session: Session) -> int:
        return int(session.exec(select(func.count()).select_from(AuditEntry)).one())

    def verify(self, session: Session) -> AuditReport:
        """Check every entry, the chain links, the signatures and the head file."""
        stored = [
            StoredEntry(
                seq=e.seq,
                at=e.at,
                action=e.action,
                target=e.target,
                details=json.loads(e.details_json),
                prev_hash=e.prev_hash,
                entry_hash=e.entry_hash,
                kid=e.kid,
                signature=e.signature,
            )
            for e in self.entries(session)
        ]
        return check_chain(stored, self._keys.audit_public_keys(session), self._read_head())

    def _read_head(self) -> Head | None:
        if not self._head_path.exists():
            return None
        try:
            doc = json.loads(self._head_path.read_text())
            return Head(
                int(doc["seq"]), str(doc["entry_hash"]), str(doc["kid"]), str(doc["signature"])
            )
        except (ValueError, KeyError, TypeError) as e:
            raise AuditError(f"the audit head file {self._head_path} is corrupt") from e
