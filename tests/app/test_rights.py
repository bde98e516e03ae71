"""Erasure by crypto-shredding, receipts, and verify after erasure (store-level subjects)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from guardian.app import (
    Guardian,
    LabelRequest,
    Verdict,
    VoiceClaim,
    forget,
    label_audio,
    verify_audit,
    verify_consent_file,
    verify_file,
    verify_receipt_file,
)
from guardian.audio import OutputFormat, decode_bytes
from guardian.consent import SignedRecord
from guardian.errors import NotFoundError, UsageError
from guardian.keys import ManifestSigner, _x509
from guardian.keys._documents import sign_as_service
from guardian.rights import ErasureReceipt, subject_ref
from guardian.store import AuditEntry, Subject, SubjectStatus, VaultBlob, Voice, VoiceStatus, utcnow
from guardian.vault import BlobKind
from tests.conftest import write_clip


def _enrolled(g: Guardian, n: int) -> tuple[str, str]:
    """A subject with a voice and vault blobs, as enrollment leaves them."""
    with g.transaction() as s:
        subject = g.vault.new_subject(s)
        subject.status = SubjectStatus.ENROLLED
        s.add(subject)
        voice_id = "voice_" + chr(ord("a") + n) * 26
        for i in range(3):
            g.vault.put(s, subject.id, BlobKind.SAMPLE, f"voice sample {i}".encode(), ref=voice_id)
        s.add(
            Voice(
                id=voice_id,
                subject_id=subject.id,
                consent_id="consent_" + chr(ord("a") + n) * 26,
                status=VoiceStatus.ACTIVE,
                organization="Guardian Demo Studio",
                purposes_json='["audiobook"]',
                requesters_json="[]",
                max_epsilon=8.0,
                record_blob_id="blob_none",
                record_sha256="0" * 64,
                withdraw_token_mac=str(n) * 64,
                created_at=utcnow(),
            )
        )
    return subject.id, voice_id


def _count(g: Guardian, table: type) -> int:
    with g.reading() as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


def test_forget_shreds_the_key_deletes_data_and_signs_a_receipt(
    g: Guardian, tmp_path: Path
) -> None:
    g.ensure_keys()
    gone, voice = _enrolled(g, 0)
    kept, _ = _enrolled(g, 1)
    result = forget(g, voice, reason="subject request by email")
    body = result.receipt.body
    assert not result.already and body["voices"] == [voice]
    assert body["subject_ref"] == subject_ref(gone) and gone not in json.dumps(body)
    assert body["destroyed"]["vault_blobs"] == 3
    with g.reading() as s:
        subject = s.get(Subject, gone)
        assert subject is not None and subject.wrapped_key is None
        assert subject.status is SubjectStatus.ERASED
        v = s.get(Voice, voice)
        assert v is not None and v.status is VoiceStatus.ERASED
        remaining = s.exec(select(VaultBlob.subject_id)).all()
        assert set(remaining) == {kept}
        tomb = s.exec(select(AuditEntry).where(AuditEntry.action == "subject.erased")).one()
        assert tomb.target == subject_ref(gone)
    path = tmp_path / "receipt.json"
    path.write_bytes(result.receipt.to_bytes())
    assert verify_receipt_file(path, g).service_trusted is True
    assert verify_audit(g)


def test_forget_twice_returns_the_same_receipt_and_changes_nothing(g: Guardian) -> None:
    g.ensure_keys()
    sub, _ = _enrolled(g, 0)
    first = forget(g, sub)
    audits = _count(g, AuditEntry)
    again = forget(g, sub)
    assert again.already and again.receipt.to_bytes() == first.receipt.to_bytes()
    assert _count(g, AuditEntry) == audits


def test_a_tampered_receipt_fails(g: Guardian, tmp_path: Path) -> None:
    g.ensure_keys()
    sub, _ = _enrolled(g, 0)
    doc = forget(g, sub).receipt.to_dict()
    doc["receipt"]["destroyed"]["vault_blobs"] = 0
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(doc))
    check = verify_receipt_file(path)
    assert not check and not check.service_valid


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("sub_" + "z" * 26, NotFoundError),
        ("voice_" + "q" * 26, NotFoundError),
        ("bob", UsageError),
        ("sub_../../etc", UsageError),
    ],
)
def test_bad_references_change_nothing(g: Guardian, ref: str, error: type) -> None:
    g.ensure_keys()
    _enrolled(g, 0)
    before = (_count(g, AuditEntry), _count(g, VaultBlob))
    with pytest.raises(error):
        forget(g, ref)
    assert (_count(g, AuditEntry), _count(g, VaultBlob)) == before


def test_clips_of_an_erased_voice_still_verify_and_say_so(g: Guardian, tmp_path: Path) -> None:
    g.ensure_keys()
    sub, voice = _enrolled(g, 0)
    out = tmp_path / "clip.wav"
    with g.reading() as s:
        consent_id = s.get(Voice, voice).consent_id  # type: ignore[union-attr]
    audio = decode_bytes(write_clip(tmp_path / "in.wav").read_bytes())
    claim = VoiceClaim(voice_id=voice, consent_id=consent_id)  # as synthesis makes it
    label_audio(g, audio, LabelRequest(source=out, output=out), fmt=OutputFormat.WAV, voice=claim)
    forget(g, sub)
    result = verify_file(g, out)
    assert result.verdict is Verdict.VERIFIED and result.voice_status == "erased"
    assert any("erased at" in r for r in result.reasons)
    with g.reading() as s:
        subject_rows = s.exec(select(Subject).where(col(Subject.id) == sub)).all()
    assert all(r.wrapped_key is None for r in subject_rows)


# --- offline checks must not trust a self-made CA --------------------------------------------


def _rogue_signer() -> tuple[ManifestSigner, str]:
    """A CA anyone can make, and a signing leaf under it."""
    now = dt.datetime.now(dt.UTC)
    root_key, root = _x509.make_root(organization="Guardian", now=now)
    key, leaf = _x509.make_leaf(
        root_key=root_key, root_cert=root, organization="Guardian", common_name="x", now=now
    )
    return ManifestSigner("sig-rogue", key, _x509.cert_pem(leaf) + _x509.cert_pem(root)), (
        _x509.cert_pem(root)
    )


def _rogue_receipt(g: Guardian, tmp_path: Path) -> tuple[Path, Path]:
    g.ensure_keys()
    sub, _ = _enrolled(g, 0)
    body = dict(forget(g, sub).receipt.body)
    body["destroyed"] = {**body["destroyed"], "vault_blobs": 0}
    signer, root_pem = _rogue_signer()
    forged = ErasureReceipt(body, (sign_as_service(body, signer),))
    path = tmp_path / "rogue.json"
    path.write_bytes(forged.to_bytes())
    anchor = tmp_path / "rogue-root.pem"
    anchor.write_text(root_pem)
    return path, anchor


def test_a_receipt_signed_by_a_self_made_ca_is_not_valid_offline(
    g: Guardian, tmp_path: Path
) -> None:
    path, _ = _rogue_receipt(g, tmp_path)
    offline = verify_receipt_file(path)
    assert offline.service_valid, "the signature itself is fine"
    assert not offline and offline.signer_untrusted


def test_a_receipt_signed_by_a_self_made_ca_is_untrusted_inside_the_deployment(
    g: Guardian, tmp_path: Path
) -> None:
    path, rogue_root = _rogue_receipt(g, tmp_path)
    inside = verify_receipt_file(path, g)
    assert not inside and inside.service_trusted is False
    ours = tmp_path / "ours.pem"
    with g.reading() as s:
        ours.write_text(g.keys.trust_anchors_pem(s))
    assert not verify_receipt_file(path, trust_anchor=ours)
    assert verify_receipt_file(path, trust_anchor=rogue_root), "an anchor chosen explicitly"


def test_a_consent_record_signed_by_a_self_made_ca_is_not_valid_offline(
    g: Guardian, tmp_path: Path
) -> None:
    signer, _ = _rogue_signer()
    body = {
        "type": "guardian.consent/v1",
        "consent_id": "consent_" + "z" * 26,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    path = tmp_path / "record.json"
    path.write_bytes(SignedRecord(body, (sign_as_service(body, signer),)).to_bytes())
    offline = verify_consent_file(path)
    assert offline.service_valid and not offline and offline.signer_untrusted
    g.ensure_keys()
    assert verify_consent_file(path, g).service_trusted is False
