"""The audit log must expose any modified, deleted, reordered or inserted entry."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlmodel import select

from guardian.app import Guardian, init_keys, rotate_key, verify_audit
from guardian.store import AuditEntry


@pytest.fixture
def logged(g: Guardian) -> Guardian:
    init_keys(g)
    for _ in range(3):
        rotate_key(g)
    with g.transaction() as s:
        g.audit.append(s, "test.event", target="t", details={"n": 1, "who": "x"})
    report = verify_audit(g)
    assert report and report.entries == 5
    return g


def _sql(g: Guardian, stmt: str, **params: object) -> None:
    with g.engine.begin() as conn:
        conn.execute(text(stmt), params)


def _problems(g: Guardian) -> list[tuple[int, str]]:
    return [(p.seq, p.reason) for p in verify_audit(g).problems]


def test_intact_log_verifies(logged: Guardian) -> None:
    assert _problems(logged) == []


def test_modified_entry_is_named(logged: Guardian) -> None:
    _sql(logged, "UPDATE audit_entry SET details_json = :d WHERE seq = 3", d=json.dumps({"x": 2}))
    problems = _problems(logged)
    assert problems and problems[0][0] == 3 and "modified" in problems[0][1]


def test_rehashed_modification_fails_the_signature(logged: Guardian) -> None:
    from guardian.audit._chain import entry_digest

    with logged.reading() as s:
        e = s.get(AuditEntry, 5)
        assert e is not None
        forged = entry_digest(
            seq=5,
            at=e.at,
            action="forged",
            target=e.target,
            details=json.loads(e.details_json),
            prev=e.prev_hash,
        )
    _sql(logged, "UPDATE audit_entry SET action='forged', entry_hash=:h WHERE seq=5", h=forged)
    problems = _problems(logged)
    assert (5, "entry 5 has an invalid signature") in problems


def test_deleted_entry_is_named(logged: Guardian) -> None:
    _sql(logged, "DELETE FROM audit_entry WHERE seq = 2")
    problems = _problems(logged)
    assert any(seq == 2 and "missing" in why for seq, why in problems)


def test_reordered_entries_are_detected(logged: Guardian) -> None:
    _sql(logged, "UPDATE audit_entry SET seq = 100 WHERE seq = 2")
    _sql(logged, "UPDATE audit_entry SET seq = 2 WHERE seq = 3")
    _sql(logged, "UPDATE audit_entry SET seq = 3 WHERE seq = 100")
    problems = _problems(logged)
    assert any(seq in (2, 3) for seq, _ in problems)


def test_inserted_entry_is_detected(logged: Guardian) -> None:
    _sql(logged, "UPDATE audit_entry SET seq = seq + 100 WHERE seq >= 3")
    _sql(logged, "UPDATE audit_entry SET seq = seq - 99 WHERE seq >= 103")
    _sql(
        logged,
        "INSERT INTO audit_entry (seq, at, action, target, details_json, prev_hash, entry_hash,"
        " kid, signature) VALUES (3, '2026-01-01T00:00:00.000000Z', 'evil', NULL, '{}', :p, :h,"
        " 'audit-x', 'AAAA')",
        p="0" * 64,
        h="1" * 64,
    )
    problems = _problems(logged)
    assert any(seq == 3 for seq, _ in problems)


def test_truncated_tail_is_detected_by_the_signed_head(logged: Guardian) -> None:
    _sql(logged, "DELETE FROM audit_entry WHERE seq >= 4")
    problems = _problems(logged)
    assert any("truncated" in why for _, why in problems)


def test_missing_head_file_is_reported(logged: Guardian) -> None:
    logged.settings.audit_head_path.unlink()
    assert any("head file is missing" in why for _, why in _problems(logged))


def test_a_rogue_audit_key_inserted_in_the_database_cannot_rewrite_history(
    logged: Guardian,
) -> None:
    """DB write access, no master key: insert an audit key, rewrite an entry, re-sign
    the chain and the head with it."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from sqlmodel import col, select

    from guardian.audit._chain import entry_digest
    from guardian.store import KeyRole, KeyStatus, SigningKey, utcnow

    rogue = ed25519.Ed25519PrivateKey.generate()
    pem = rogue.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with logged.transaction() as s:
        s.add(
            SigningKey(
                kid="audit-rogue",
                role=KeyRole.AUDIT,
                status=KeyStatus.RETIRED,
                public_pem=pem.decode(),
                created_at=utcnow(),
            )
        )
        prev = "0" * 64
        for e in s.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all():
            details = json.loads(e.details_json)
            if e.seq == 3:
                details = {"rewritten": True}
                e.details_json = json.dumps(details)
            e.prev_hash = prev
            e.entry_hash = entry_digest(
                seq=e.seq, at=e.at, action=e.action, target=e.target, details=details, prev=prev
            )
            e.kid = "audit-rogue"
            e.signature = base64.b64encode(rogue.sign(bytes.fromhex(e.entry_hash))).decode()
            s.add(e)
            prev = e.entry_hash
    from guardian.keys import AuditSigner

    with logged.reading() as s:
        logged.audit.write_head(s, AuditSigner("audit-rogue", rogue))
    report = verify_audit(logged)
    assert not report, "a key from the database alone must not vouch for the log"
    assert any("signature" in p.reason for p in report.problems)


def test_a_new_audit_key_is_certified_by_the_previous_one_in_the_chain(
    logged: Guardian,
) -> None:
    from guardian.app import rotate_audit_key

    new = rotate_audit_key(logged)
    with logged.transaction() as s:
        logged.audit.append(s, "test.after", details={})
    report = verify_audit(logged)
    assert report, report.problems
    with logged.reading() as s:
        last = s.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()  # type: ignore[attr-defined]
    assert last is not None and last.kid == new.kid


def test_an_audit_key_not_certified_in_the_chain_is_refused(logged: Guardian) -> None:
    """Even a properly sealed key must be introduced by its predecessor inside the log."""
    with logged.transaction() as s:
        logged.keys.rotate_audit(s)  # no certification entry
        logged.audit.append(s, "test.after", details={})
    report = verify_audit(logged)
    assert any("certifies" in p.reason for p in report.problems), report.problems
