"""Retention rules applied to a real store: idempotent, dry-run safe, logged."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlmodel import select

from guardian.app import Guardian, create_challenge, forget, plan_retention, run_retention
from guardian.config import Settings
from guardian.errors import PolicyError
from guardian.policy import default_policy_dir
from guardian.store import AuditEntry, Subject, SubjectStatus, VaultBlob, Voice, VoiceStatus
from guardian.vault import BlobKind
from tests.app.test_rights import _enrolled

LATER = dt.timedelta(days=400)


def _now(delta: dt.timedelta) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + delta


def test_expired_consent_is_revoked_once(g: Guardian) -> None:
    g.ensure_keys()
    _, voice = _enrolled(g, 0)
    with g.transaction() as s:
        v = s.get(Voice, voice)
        assert v is not None
        v.expires_at = _now(dt.timedelta(days=1))
        s.add(v)
    assert plan_retention(g).actions == []
    later = _now(dt.timedelta(days=2))
    dry = run_retention(g, dry_run=True, now=later)
    assert [a.rule for a in dry.actions] == ["revoke_expired_consents"]
    with g.reading() as s:
        assert s.get(Voice, voice).status is VoiceStatus.ACTIVE  # type: ignore[union-attr]
    run_retention(g, now=later)
    with g.reading() as s:
        assert s.get(Voice, voice).status is VoiceStatus.REVOKED  # type: ignore[union-attr]
        runs = s.exec(select(AuditEntry).where(AuditEntry.action == "retention.run")).all()
    assert len(runs) == 1
    assert run_retention(g, now=later).actions == []


def test_raw_audio_goes_after_training_and_the_record_stays(g: Guardian) -> None:
    g.ensure_keys()
    sub, voice = _enrolled(g, 0)
    with g.transaction() as s:
        g.vault.put(s, sub, BlobKind.ADAPTER, b"adapter", ref=voice)
        g.vault.put(s, sub, BlobKind.CONSENT_RECORD, b"record", ref=voice)
    assert run_retention(g, now=_now(dt.timedelta(days=29))).actions == []
    report = run_retention(g, now=_now(dt.timedelta(days=31)))
    assert {a.rule for a in report.actions} == {"raw_audio_days_after_training"}
    with g.reading() as s:
        kinds = sorted(b.kind for b in s.exec(select(VaultBlob)).all())
    assert kinds == ["adapter", "consent-record"]


def test_a_subject_who_never_enrolled_is_shredded(g: Guardian) -> None:
    c = create_challenge(g, name="Alex Morgan", organization="Guardian Demo Studio")
    assert run_retention(g, now=_now(dt.timedelta(hours=1))).actions == []
    run_retention(g, now=_now(dt.timedelta(hours=26)))
    with g.reading() as s:
        subject = s.get(Subject, c.subject_id)
        assert subject is not None and subject.status is SubjectStatus.ERASED
        assert subject.wrapped_key is None
        assert s.exec(select(VaultBlob)).all() == []


def test_old_tombstones_are_dropped(g: Guardian) -> None:
    g.ensure_keys()
    sub, voice = _enrolled(g, 0)
    forget(g, sub)
    assert run_retention(g, now=_now(LATER)).actions == []
    run_retention(g, now=_now(dt.timedelta(days=365 * 6 + 1)))
    with g.reading() as s:
        assert s.get(Subject, sub) is None and s.get(Voice, voice) is None


@pytest.mark.parametrize(
    "text",
    [
        "raw_audio_days_after_training: 30\n",
        "{}",
        "- a list\n",
        "raw_audio_days_after_training: -1\nrevoke_expired_consents: true\n"
        "pending_subject_hours: 1\nerased_tombstone_years: 1\n",
        "raw_audio_days_after_training: yes\nrevoke_expired_consents: true\n"
        "pending_subject_hours: 1\nerased_tombstone_years: 1\n",
    ],
)
def test_a_bad_rules_file_is_refused(settings: Settings, tmp_path: Path, text: str) -> None:
    from guardian.app import open_guardian

    policies = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policies)
    (policies / "retention.yaml").write_text(text)
    g = open_guardian(settings.model_copy(update={"policy_dir": policies}))
    with pytest.raises(PolicyError, match="retention"):
        run_retention(g)
