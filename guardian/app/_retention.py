"""Use-case: ``guardian retention run`` applies the retention rules (idempotent)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from guardian.app._context import Guardian
from guardian.rights import RetentionRules, subject_ref
from guardian.store import (
    Challenge,
    Subject,
    SubjectStatus,
    VaultBlob,
    Voice,
    VoiceStatus,
    as_utc,
    utcnow,
)
from guardian.vault import BlobKind


@dataclass(frozen=True)
class RetentionAction:
    rule: str
    target: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "target": self.target, "detail": self.detail}


@dataclass
class RetentionReport:
    rules: RetentionRules
    dry_run: bool
    actions: list[RetentionAction] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "rules": self.rules.to_dict(),
            "actions": [a.to_dict() for a in self.actions],
        }


def retention_rules(g: Guardian) -> RetentionRules:
    return RetentionRules.load(g.policy_dir / "retention.yaml")


def _raw_audio(s: Session, rules: RetentionRules, now: dt.datetime) -> list[RetentionAction]:
    """Raw audio of voices whose adapter was trained longer ago than the rule allows."""
    out = []
    adapters = s.exec(select(VaultBlob).where(VaultBlob.kind == BlobKind.ADAPTER.value)).all()
    trained: dict[str, dt.datetime] = {}
    for a in adapters:
        if a.ref:
            trained[a.ref] = min(trained.get(a.ref, as_utc(a.created_at)), as_utc(a.created_at))
    raw = (BlobKind.CONSENT_AUDIO.value, BlobKind.SAMPLE.value)
    for voice_id, at in sorted(trained.items()):
        if now - at < rules.raw_audio_after:
            continue
        blobs = s.exec(
            select(VaultBlob.id).where(VaultBlob.ref == voice_id, col(VaultBlob.kind).in_(raw))
        ).all()
        out += [RetentionAction("raw_audio_days_after_training", b, voice_id) for b in blobs]
    return out


def _expired(s: Session, now: dt.datetime) -> list[RetentionAction]:
    voices = s.exec(
        select(Voice).where(Voice.status == VoiceStatus.ACTIVE, col(Voice.expires_at).is_not(None))
    ).all()
    return [
        RetentionAction("revoke_expired_consents", v.id, f"expired {as_utc(v.expires_at):%Y-%m-%d}")
        for v in voices
        if v.expires_at is not None and as_utc(v.expires_at) <= now
    ]


def _pending(s: Session, rules: RetentionRules, now: dt.datetime) -> list[RetentionAction]:
    out = []
    for subject in s.exec(select(Subject).where(Subject.status == SubjectStatus.PENDING)).all():
        ends = s.exec(select(Challenge.expires_at).where(Challenge.subject_id == subject.id)).all()
        last = max((as_utc(e) for e in ends), default=as_utc(subject.created_at))
        if now - last >= rules.pending_after:
            out.append(RetentionAction("pending_subject_hours", subject.id, "never enrolled"))
    return out


def _tombstones(s: Session, rules: RetentionRules, now: dt.datetime) -> list[RetentionAction]:
    rows = s.exec(select(Subject).where(Subject.status == SubjectStatus.ERASED)).all()
    return [
        RetentionAction("erased_tombstone_years", subject_ref(r.id), "tombstone rows")
        for r in rows
        if r.erased_at is not None and now - as_utc(r.erased_at) >= rules.tombstone_after
    ]


def plan(g: Guardian, *, now: dt.datetime | None = None) -> RetentionReport:
    """What a retention run would do now."""
    rules, now = retention_rules(g), now or utcnow()
    report = RetentionReport(rules, dry_run=True)
    with g.reading() as s:
        report.actions += _raw_audio(s, rules, now)
        if rules.revoke_expired_consents:
            report.actions += _expired(s, now)
        report.actions += _pending(s, rules, now)
        report.actions += _tombstones(s, rules, now)
    return report


def run_retention(
    g: Guardian, *, dry_run: bool = False, now: dt.datetime | None = None
) -> RetentionReport:
    """Apply the rules; a second run right after finds nothing left to do."""
    report = plan(g, now=now)
    report.dry_run = dry_run
    if dry_run or not report.actions:
        return report
    pending = {a.target for a in report.actions if a.rule == "pending_subject_hours"}
    with g.transaction() as s:
        for a in report.actions:
            _apply(s, a)
        if pending:
            g.vault.shred(s, pending)
            for sid in pending:
                subject = s.get(Subject, sid)
                if subject is not None:
                    subject.status, subject.erased_at = SubjectStatus.ERASED, utcnow()
                    s.add(subject)
        counts: dict[str, int] = {}
        for a in report.actions:
            counts[a.rule] = counts.get(a.rule, 0) + 1
        g.audit.append(s, "retention.run", details={"applied": counts})
    if pending:
        with g.reading() as s:
            g.vault.finish_shred(s)
    return report


def _apply(s: Session, action: RetentionAction) -> None:
    if action.rule == "raw_audio_days_after_training":
        blob = s.get(VaultBlob, action.target)
        if blob is not None:
            s.delete(blob)
    elif action.rule == "revoke_expired_consents":
        voice = s.get(Voice, action.target)
        if voice is not None:
            voice.status, voice.revoked_at = VoiceStatus.REVOKED, utcnow()
            voice.revocation_reason = "consent expired"
            s.add(voice)
    elif action.rule == "erased_tombstone_years":
        for subject in s.exec(select(Subject).where(Subject.status == SubjectStatus.ERASED)).all():
            if subject_ref(subject.id) == action.target:
                _drop_tombstone(s, subject)


def _drop_tombstone(s: Session, subject: Subject) -> None:
    for voice in s.exec(select(Voice).where(Voice.subject_id == subject.id)).all():
        s.delete(voice)
    for challenge in s.exec(select(Challenge).where(Challenge.subject_id == subject.id)).all():
        s.delete(challenge)
    s.flush()
    s.delete(subject)
