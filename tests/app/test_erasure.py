"""Export and erasure after a real enrollment: round trips, plaintext scans, backups."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from guardian.app import (
    Guardian,
    SynthesisRequest,
    Verdict,
    enroll,
    export_subject,
    forget,
    synthesize,
    train_voice,
    verify_file,
)
from guardian.consent import SignedRecord, check_record
from guardian.errors import NotFoundError, UsageError, VaultError
from guardian.keys import load_master_key
from guardian.store import AuditEntry, VaultBlob, make_engine
from guardian.vault import Vault
from tests.app.conftest import NAME, ORG, Attempt, needles, slt_transcripts, tree_files

pytestmark = pytest.mark.slow  # full enrollments and a trained adapter


def test_export_round_trip(g: Guardian, attempt: Attempt, tmp_path: Path) -> None:
    result = enroll(g, attempt.request())
    out = tmp_path / "export.zip"
    exported = export_subject(g, result.voice_id, out)
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read("manifest.json"))
        names = set(z.namelist())
        for entry in manifest["files"]:
            assert entry["path"] in names
            assert hashlib.sha256(z.read(entry["path"])).hexdigest() == entry["sha256"]
        record = SignedRecord.from_bytes(z.read(f"consent/{result.consent_id}.json"))
        samples = sorted(n for n in names if "/sample-" in n)
        history = json.loads(z.read("processing.json"))
        embeddings = np.load(io.BytesIO(z.read(f"voices/{result.voice_id}/embeddings.npy")))
    with g.reading() as s:
        assert check_record(record, trust_anchors_pem=g.keys.trust_anchors_pem(s))
    with zipfile.ZipFile(out) as z:
        digests = [hashlib.sha256(z.read(n)).hexdigest() for n in samples]
    assert digests == record.body["evidence"]["samples_sha256"]
    assert digests == [hashlib.sha256(p.read_bytes()).hexdigest() for p in attempt.samples]
    assert embeddings.shape == (1 + len(attempt.samples), 256)
    assert "consent.enroll" in {h["action"] for h in history}
    assert manifest["voices"][0]["privacy_budget"]["max_epsilon"] == 8.0
    assert exported.files == len(manifest["files"])
    with g.reading() as s:
        actions = [e.action for e in s.exec(select(AuditEntry)).all()]
    assert actions[-1] == "subject.export"


def test_export_refuses_bad_targets_and_logs_nothing(
    g: Guardian, attempt: Attempt, tmp_path: Path
) -> None:
    result = enroll(g, attempt.request())
    taken = tmp_path / "taken.zip"
    taken.write_bytes(b"mine")
    with g.reading() as s:
        before = len(s.exec(select(AuditEntry)).all())
    for out in (taken, tmp_path / "x.tar", tmp_path / "missing" / "x.zip"):
        with pytest.raises(UsageError):
            export_subject(g, result.voice_id, out)
    with pytest.raises(NotFoundError):
        export_subject(g, "sub_" + "a" * 26, tmp_path / "y.zip")
    assert taken.read_bytes() == b"mine"
    with g.reading() as s:
        assert len(s.exec(select(AuditEntry)).all()) == before


def test_erasure_reaches_the_backup_and_leaves_no_plaintext(
    g: Guardian, attempt: Attempt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    texts = slt_transcripts()
    result = enroll(g, attempt.request(transcripts=texts))
    train_voice(g, result.voice_id, epsilon=8.0)
    clip = tmp_path / "clip.wav"
    synthesize(g, SynthesisRequest(result.voice_id, "Hello there, friend.", clip, "demo", ORG))
    (adapter,) = g.adapters.values()
    g.engine.dispose()
    backup = tmp_path / "backup"
    shutil.copytree(g.settings.home, backup)
    receipt = forget(g, result.subject_id).receipt
    assert receipt.body["destroyed"]["vault_blobs"] == 1 + len(attempt.samples) + 4
    g.engine.dispose()
    found = needles(attempt.samples)
    found["adapter parameters"] = np.asarray(adapter.theta, dtype="<f4").tobytes()[:32]
    files = {**tree_files(g.settings.home), **tree_files(private_tmp)}
    for path, data in files.items():
        for label, needle in found.items():
            assert needle not in data, f"{label} in {path}"
    # The backup still holds the ciphertexts, but the live keys cannot open them.
    master = load_master_key(env_value=None, path=g.settings.master_key_path, create=False)
    live = Vault(master, g.settings.resolved_vault_key_path)
    engine = make_engine(f"sqlite:///{backup / 'guardian.db'}")
    with Session(engine) as s:
        blobs = s.exec(select(VaultBlob)).all()
        assert {b.kind for b in blobs} >= {"sample", "adapter", "consent-record"}
        for blob in blobs:
            with pytest.raises(VaultError):
                live.get(s, blob.id)
    engine.dispose()
    with pytest.raises(NotFoundError, match="erased"):
        export_subject(g, result.voice_id, tmp_path / "after.zip")
    assert NAME.encode() not in receipt.to_bytes()
    after = verify_file(g, clip)
    assert after.verdict is Verdict.VERIFIED and after.voice_status == "erased"


def test_export_zip_is_private_under_a_permissive_umask(
    g: Guardian, attempt: Attempt, tmp_path: Path
) -> None:
    result = enroll(g, attempt.request())
    out = tmp_path / "export.zip"
    old = os.umask(0o022)
    try:
        export_subject(g, result.voice_id, out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "voice audio and names in the clear"
