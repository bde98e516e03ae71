"""Pure audit-chain computation: entry digests and chain checking."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

GENESIS = "0" * 64
CERTIFY_ACTION = "audit.key.certify"
"""An entry that introduces the next audit key, signed by the key before it. The chain
trusts the key of its first entry and, after that, only keys certified in the chain, so
an audit key inserted into the database cannot take over the log."""


def key_fingerprint(key: ed25519.Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, as a certification entry names it."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def entry_digest(
    *, seq: int, at: str, action: str, target: str | None, details: Mapping[str, Any], prev: str
) -> str:
    """SHA-256 over the RFC 8785 canonical JSON of an entry and its predecessor's hash."""
    body = {
        "seq": seq,
        "at": at,
        "action": action,
        "target": target,
        "details": dict(details),
        "prev": prev,
    }
    return hashlib.sha256(rfc8785.dumps(cast(Any, body))).hexdigest()


def head_message(seq: int, entry_hash: str) -> bytes:
    return f"guardian-audit-head:{seq}:{entry_hash}".encode()


@dataclass(frozen=True)
class StoredEntry:
    """The columns of one stored entry, as read back."""

    seq: int
    at: str
    action: str
    target: str | None
    details: Mapping[str, Any]
    prev_hash: str
    entry_hash: str
    kid: str
    signature: str


@dataclass(frozen=True)
class Head:
    """The last entry's position, kept outside the database to catch truncation."""

    seq: int
    entry_hash: str
    kid: str
    signature: str


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    reason: str


@dataclass(frozen=True)
class AuditReport:
    """Result of checking the chain; truthy when the log is intact."""

    entries: int
    head_hash: str
    problems: list[AuditProblem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems


def _sig_ok(keys: Mapping[str, ed25519.Ed25519PublicKey], kid: str, sig: str, msg: bytes) -> bool:
    key = keys.get(kid)
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(sig, validate=True), msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def check_chain(
    entries: Sequence[StoredEntry],
    keys: Mapping[str, ed25519.Ed25519PublicKey],
    head: Head | None,
) -> AuditReport:
    """Find modified, deleted, reordered, inserted or truncated entries.

    ``entries`` must be in storage order (ascending ``seq``). Each problem names
    the entry where the evidence is.
    """
    problems: list[AuditProblem] = []
    prev_hash = GENESIS
    certified = {entries[0].kid} if entries else set()
    for expected, e in enumerate(entries, start=1):
        if e.seq != expected:
            problems.append(AuditProblem(expected, f"entry {expected} is missing (found {e.seq})"))
        digest = entry_digest(
            seq=e.seq,
            at=e.at,
            action=e.action,
            target=e.target,
            details=e.details,
            prev=e.prev_hash,
        )
        if digest != e.entry_hash:
            problems.append(AuditProblem(e.seq, f"entry {e.seq} was modified"))
        elif not _sig_ok(keys, e.kid, e.signature, bytes.fromhex(e.entry_hash)):
            problems.append(AuditProblem(e.seq, f"entry {e.seq} has an invalid signature"))
        elif e.kid not in certified:
            problems.append(
                AuditProblem(
                    e.seq,
                    f"entry {e.seq} is signed by audit key {e.kid}, "
                    "which no earlier entry certifies",
                )
            )
        elif e.action == CERTIFY_ACTION:
            _certify(e, keys, certified)
        if e.prev_hash != prev_hash:
            problems.append(
                AuditProblem(
                    e.seq,
                    f"entry {e.seq} does not follow entry {e.seq - 1} "
                    "(an entry was deleted, inserted or reordered)",
                )
            )
        prev_hash = e.entry_hash
    if head is not None:
        if head.kid not in certified and entries:
            problems.append(
                AuditProblem(head.seq, f"the audit head is signed by uncertified key {head.kid}")
            )
        _check_head(entries, keys, head, problems)
    elif entries:
        problems.append(AuditProblem(len(entries), "the signed audit head file is missing"))
    return AuditReport(entries=len(entries), head_hash=prev_hash, problems=problems)


def _certify(
    e: StoredEntry, keys: Mapping[str, ed25519.Ed25519PublicKey], certified: set[str]
) -> None:
    """Trust the key an entry (signed by a trusted key) certifies, if it is the one named."""
    kid, fingerprint = e.details.get("kid"), e.details.get("fingerprint")
    key = keys.get(str(kid))
    if key is not None and key_fingerprint(key) == fingerprint:
        certified.add(str(kid))


def _check_head(
    entries: Sequence[StoredEntry],
    keys: Mapping[str, ed25519.Ed25519PublicKey],
    head: Head,
    problems: list[AuditProblem],
) -> None:
    if not _sig_ok(keys, head.kid, head.signature, head_message(head.seq, head.entry_hash)):
        problems.append(AuditProblem(head.seq, "the audit head file has an invalid signature"))
        return
    if head.seq > len(entries):
        problems.append(
            AuditProblem(
                len(entries) + 1,
                f"entries {len(entries) + 1}..{head.seq} were deleted (log truncated)",
            )
        )
        return
    if head.seq >= 1 and entries[head.seq - 1].entry_hash != head.entry_hash:
        problems.append(AuditProblem(head.seq, f"entry {head.seq} differs from the signed head"))
