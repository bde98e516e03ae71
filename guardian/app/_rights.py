"""Use-cases for data-subject rights: erasure (Art. 17) and export (Art. 15/20)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from guardian import __version__
from guardian.app._consent import check_id, document_anchors, find_voice, stored_record
from guardian.app._context import Guardian
from guardian.app._label import TIME_FORMAT, write_new_file
from guardian.audio import sniff
from guardian.errors import DocumentError, NotFoundError, UsageError
from guardian.keys._documents import DocumentCheck, sign_as_service
from guardian.rights import ErasureReceipt, check_receipt, receipt_body, subject_ref
from guardian.store import (
    AuditEntry,
    Challenge,
    Label,
    Subject,
    SubjectStatus,
    Voice,
    VoiceStatus,
    as_utc,
    utcnow,
)
from guardian.vault import BlobKind, new_id

EXPORT_FORMAT = "guardian.subject-export/v1"


def resolve_subject(s: Session, ref: str) -> Subject:
    """A subject by subject id, voice id or consent id."""
    ref = ref.strip()
    if ref.startswith("sub_"):
        subject = s.get(Subject, check_id(ref, "sub"))
    elif ref.startswith(("voice_", "consent_")):
        subject = s.get(Subject, find_voice(s, ref).subject_id)
    else:
        raise UsageError(f"{ref!r} is not a subject, voice or consent id")
    if subject is None:
        raise NotFoundError(f"no subject, voice or consent {ref}")
    return subject


def _voices(s: Session, subject_id: str) -> list[Voice]:
    return list(
        s.exec(
            select(Voice).where(Voice.subject_id == subject_id).order_by(col(Voice.created_at))
        ).all()
    )


# --- erasure --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgetResult:
    receipt: ErasureReceipt
    already: bool
    """True when the subject had been erased before (the same receipt is returned)."""

    def to_dict(self) -> dict[str, Any]:
        return {"already_erased": self.already, **self.receipt.to_dict()}


def _stored_receipt(s: Session, subject_id: str) -> ErasureReceipt:
    entry = s.exec(
        select(AuditEntry)
        .where(AuditEntry.action == "subject.erased", AuditEntry.target == subject_ref(subject_id))
        .order_by(col(AuditEntry.seq))
    ).first()
    if entry is None:
        raise DocumentError(f"subject {subject_id} is erased but its receipt is missing")
    receipt = json.loads(entry.details_json)["receipt"]
    return ErasureReceipt.from_bytes(json.dumps(receipt).encode())


def forget(
    g: Guardian, ref: str, *, reason: str = "erasure requested by the subject"
) -> ForgetResult:
    """Erase a subject: destroy their data key, then their data, in one transaction.

    Idempotent: a second call returns the first call's receipt and changes nothing.
    """
    reason = " ".join(reason.split())[:200] or "unspecified"
    g.ensure_keys()
    with g.transaction() as s:
        subject = resolve_subject(s, ref)
        if subject.status is SubjectStatus.ERASED:
            return ForgetResult(_stored_receipt(s, subject.id), already=True)
        now = utcnow()
        voices = _voices(s, subject.id)
        for voice in voices:
            voice.status = VoiceStatus.ERASED
            voice.revoked_at = voice.revoked_at or now
            voice.revocation_reason = voice.revocation_reason or "erased"
            s.add(voice)
        shred = g.vault.shred(s, {subject.id})
        subject.status, subject.erased_at = SubjectStatus.ERASED, now
        s.add(subject)
        body = receipt_body(
            receipt_id=new_id("receipt"),
            subject_id=subject.id,
            voices=[v.id for v in voices],
            erased_at=now.strftime(TIME_FORMAT),
            reason=reason,
            blobs_destroyed=shred.blobs,
            vault_epoch=shred.epoch,
            software=f"guardian/{__version__}",
        )
        receipt = ErasureReceipt(body, (sign_as_service(body, g.keys.manifest_signer(s)),))
        g.audit.append(
            s,
            "subject.erased",
            target=subject_ref(subject.id),
            details={
                "subject_ref": subject_ref(subject.id),
                "erased_at": body["erased_at"],
                "legal_basis": body["legal_basis"],
                "receipt": receipt.to_dict(),
            },
        )
    with g.reading() as s:
        g.vault.finish_shred(s)
    return ForgetResult(receipt, already=False)


def verify_receipt_file(
    path: Path, g: Guardian | None = None, *, trust_anchor: Path | None = None
) -> DocumentCheck:
    """Check an erasure receipt file against ``trust_anchor`` (a PEM file of roots), else
    against this deployment's anchors (given ``g``); with neither, a valid signature is
    reported with its signer untrusted (:attr:`DocumentCheck.signer_untrusted`)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    receipt = ErasureReceipt.from_bytes(data)
    return check_receipt(receipt, trust_anchors_pem=document_anchors(g, trust_anchor))


# --- export ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    output: Path
    subject_id: str
    files: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "subject_id": self.subject_id,
            "files": self.files,
            "sha256": self.sha256,
        }


def _check_export_path(out: Path) -> None:
    if out.suffix.lower() != ".zip":
        raise UsageError(f"{out}: the export is a .zip file")
    if out.exists():
        raise UsageError(f"{out} already exists; not overwriting it")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent} is not a directory")


class _Zip:
    """Collects files and their hashes for the export manifest."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.zip = zipfile.ZipFile(self.buffer, "w", zipfile.ZIP_DEFLATED)
        self.listing: list[dict[str, Any]] = []

    def add(self, path: str, data: bytes, kind: str, **meta: Any) -> None:
        self.zip.writestr(path, data)
        entry = {"path": path, "kind": kind, "sha256": hashlib.sha256(data).hexdigest()}
        self.listing.append({**entry, **meta})

    def add_json(self, path: str, obj: Any, kind: str) -> None:
        self.add(path, json.dumps(obj, indent=2, sort_keys=True).encode(), kind)


def _audio_name(stem: str, data: bytes) -> str:
    container = sniff(data)
    return f"{stem}.{container.value if container else 'bin'}"


def _add_voice(g: Guardian, s: Session, z: _Zip, voice: Voice) -> dict[str, Any]:
    record = stored_record(g, s, voice)
    z.add(f"consent/{voice.consent_id}.json", record.to_bytes(), "consent-record")
    base = f"voices/{voice.id}"
    samples = 0
    for blob in g.vault.blobs(s, voice.subject_id):
        if blob.ref != voice.id:
            continue
        data = g.vault.get(s, blob.id)
        if blob.kind is BlobKind.CONSENT_AUDIO:
            z.add(_audio_name(f"{base}/consent", data), data, "consent-audio")
        elif blob.kind is BlobKind.SAMPLE:
            samples += 1
            z.add(_audio_name(f"{base}/sample-{samples:02d}", data), data, "enrollment-sample")
        elif blob.kind is BlobKind.EMBEDDING:
            buf = io.BytesIO()
            np.save(buf, np.frombuffer(data, dtype=np.float32).reshape(-1, 256))
            z.add(f"{base}/embeddings.npy", buf.getvalue(), "speaker-embeddings")
        elif blob.kind is BlobKind.ADAPTER:
            z.add(f"{base}/adapter-{blob.id}.bin", data, "voice-adapter")
    return {
        "voice_id": voice.id,
        "consent_id": voice.consent_id,
        "status": voice.status.value,
        "created_at": as_utc(voice.created_at).strftime(TIME_FORMAT),
        "revoked_at": as_utc(voice.revoked_at).strftime(TIME_FORMAT) if voice.revoked_at else None,
        "privacy_budget": {
            "epsilon_spent": voice.epsilon_spent,
            "delta_spent": voice.delta_spent,
            "max_epsilon": voice.max_epsilon,
        },
    }


def _history(s: Session, subject: Subject, voices: list[Voice]) -> list[dict[str, Any]]:
    challenges = s.exec(select(Challenge.id).where(Challenge.subject_id == subject.id)).all()
    targets = {subject.id, *challenges, *(v.id for v in voices)}
    entries = s.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
    out = []
    for e in entries:
        details = json.loads(e.details_json)
        if e.target in targets or details.get("subject_id") == subject.id:
            out.append(
                {
                    "seq": e.seq,
                    "at": e.at,
                    "action": e.action,
                    "target": e.target,
                    "details": details,
                }
            )
    return out


def _clips(s: Session, voices: list[Voice]) -> list[dict[str, Any]]:
    ids = [v.id for v in voices]
    labels = s.exec(
        select(Label).where(col(Label.voice_id).in_(ids)).order_by(col(Label.created_at))
    ).all()
    out = []
    for label in labels:
        assertion = json.loads(label.assertion_json)
        out.append(
            {
                "label_id": label.id,
                "manifest_id": label.manifest_id,
                "voice_id": label.voice_id,
                "purpose": label.purpose,
                "requester": assertion.get("requester"),
                "created_at": as_utc(label.created_at).strftime(TIME_FORMAT),
            }
        )
    return out


def export_subject(g: Guardian, ref: str, out: Path) -> ExportResult:
    """Write everything Guardian holds about a subject to a zip (GDPR Art. 15/20)."""
    _check_export_path(out)
    z = _Zip()
    with g.reading() as s:
        subject = resolve_subject(s, ref)
        if subject.status is SubjectStatus.ERASED:
            raise NotFoundError(f"subject {subject.id} was erased; nothing is left to export")
        voices = _voices(s, subject.id)
        summaries = [_add_voice(g, s, z, v) for v in voices]
        z.add_json("processing.json", _history(s, subject, voices), "processing-history")
        z.add_json("clips.json", _clips(s, voices), "generated-clips")
    manifest = {
        "format": EXPORT_FORMAT,
        "subject_id": subject.id,
        "exported_at": dt.datetime.now(dt.UTC).strftime(TIME_FORMAT),
        "voices": summaries,
        "files": z.listing,
    }
    z.zip.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    z.zip.close()
    data = z.buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    with g.transaction() as s:
        g.audit.append(
            s,
            "subject.export",
            target=subject.id,
            details={"subject_id": subject.id, "files": len(z.listing), "sha256": digest},
        )
        write_new_file(out, data, private=True)
    return ExportResult(out, subject.id, len(z.listing), digest)
