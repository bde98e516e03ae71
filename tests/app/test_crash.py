"""Crash injection: the process dies at each step of ``forget`` and of enrollment.

Each crash is a real process exit (``os._exit``, no cleanup, no rollback call) at a
step boundary. After a restart the home must be consistent: the audit chain verifies,
a subject is either wholly there or wholly erased (never a destroyed key with
ciphertext left, never a half-written vault key), and no plaintext is left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from guardian.app import Guardian, forget, open_guardian, verify_audit
from guardian.config import Settings
from guardian.store import Subject, SubjectStatus, VaultBlob, Voice
from tests.app.conftest import NAME, ORG, SLT, slt_samples, write_wav
from tests.app.test_rights import _enrolled

pytestmark = pytest.mark.slow  # crash injection

_CHILD = r"""
import os, sys
from pathlib import Path
import guardian.audit._log as audit_log
import guardian.vault._rootkey as rootkey
import guardian.vault._vault as vault

point, action = sys.argv[1], sys.argv[2]

def die(*args, **kwargs):
    os._exit(137)

def after(cls, name):
    original = getattr(cls, name)
    def wrapped(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        os._exit(137)
    setattr(cls, name, wrapped)

def nth_put(n):
    original = vault.Vault.put
    calls = {"n": 0}
    def wrapped(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            os._exit(137)
        return original(self, *args, **kwargs)
    vault.Vault.put = wrapped

if point == "after-shred":
    after(vault.Vault, "shred")
elif point == "audit-append":
    audit_log.AuditLog.append = die
elif point == "before-finish":
    vault.Vault.finish_shred = die
elif point == "after-promote":
    after(rootkey.RootKeyFile, "promote_next")
elif point.startswith("put-"):
    nth_put(int(point.split("-")[1]))

from guardian.app import open_guardian, forget, enroll, EnrollRequest
g = open_guardian()
if action == "forget":
    forget(g, sys.argv[3])
else:
    import json
    args = json.loads(sys.argv[3])
    args["samples"] = tuple(Path(p) for p in args["samples"])
    args["consent"] = Path(args["consent"])
    args["purposes"] = tuple(args["purposes"])
    enroll(g, EnrollRequest(**args))
os._exit(0)
"""


def _crash(home: Path, point: str, action: str, arg: str) -> int:
    env = {**os.environ, "GUARDIAN_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, point, action, arg],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode


def _reopen(home: Path, settings: Settings) -> Guardian:
    return open_guardian(settings.model_copy(update={"home": home}))


def _consistent(g: Guardian) -> None:
    assert verify_audit(g), "audit chain broken after the crash"
    key = g.settings.resolved_vault_key_path
    assert not key.with_name(key.name + ".next").exists(), "half-rotated vault key left"
    with g.reading() as s:
        for subject in s.exec(select(Subject)).all():
            blobs = s.exec(select(VaultBlob).where(VaultBlob.subject_id == subject.id)).all()
            if subject.wrapped_key is None:
                assert subject.status is SubjectStatus.ERASED and not blobs
            else:
                for blob in blobs:  # every ciphertext left must still open
                    g.vault.get(s, blob.id)


@pytest.mark.parametrize("point", ["after-shred", "audit-append", "before-finish", "after-promote"])
def test_a_crash_during_forget_leaves_before_or_after(
    settings: Settings, tmp_path: Path, point: str
) -> None:
    g = open_guardian(settings)
    g.ensure_keys()
    sub, _ = _enrolled(g, 0)
    _enrolled(g, 1)
    g.engine.dispose()
    home = tmp_path / f"crash-{point}"
    shutil.copytree(settings.home, home)
    assert _crash(home, point, "forget", sub) == 137
    again = _reopen(home, settings)
    _consistent(again)
    receipt = forget(again, sub)  # finishing the erasure after the restart works
    _consistent(again)
    with again.reading() as s:
        subject = s.get(Subject, sub)
        assert subject is not None and subject.wrapped_key is None
    assert receipt.receipt.body["voices"]


@pytest.mark.parametrize("point", ["put-2", "put-5", "audit-append"])
def test_a_crash_during_enrollment_keeps_nothing(
    settings: Settings, tmp_path: Path, point: str
) -> None:
    import json

    from guardian.app import create_challenge
    from guardian.app._consent_voice import spoken_consent

    g = open_guardian(settings)
    challenge = create_challenge(g, name=NAME, organization=ORG)
    consent = write_wav(
        tmp_path / "consent.wav", spoken_consent(SLT, challenge.phrase, challenge.code)
    )
    g.engine.dispose()
    args = {
        "challenge_id": challenge.challenge_id,
        "consent": str(consent),
        "samples": [str(p) for p in slt_samples()],
        "purposes": ["demo"],
    }
    code = _crash(settings.home, point, "enroll", json.dumps(args))
    assert code == 137
    again = _reopen(settings.home, settings)
    _consistent(again)
    with again.reading() as s:
        assert s.exec(select(Voice)).all() == []
        kinds = {b.kind for b in s.exec(select(VaultBlob)).all()}
    assert kinds <= {"challenge"}  # only the pending challenge's sealed secret
