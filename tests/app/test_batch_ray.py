"""verify-batch and training on a local Ray cluster (two CPUs, no dashboard).

Ray workers read their settings from the environment the cluster was started with, so
this module starts one cluster on one Guardian home and every test here uses that home.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from guardian.app import (
    Guardian,
    TrainResult,
    enroll,
    get_job,
    run_one_job,
    submit_train_job,
    train_voice,
    verify_batch,
)
from guardian.app._engine import TrainingCancelled
from guardian.config import Settings
from guardian.engine import TrainedAdapter
from guardian.store import AuditEntry, JobStatus, VaultBlob, Voice
from guardian.vault import BlobKind
from tests.app.conftest import ORG, Attempt, slt_transcripts
from tests.app.test_batch import assert_same_as_verify, make_corpus, read_report

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_home(tmp_path_factory: pytest.TempPathFactory, tiny_watermark_card: Path) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("ray") / "home"
    saved = {k: os.environ.get(k) for k in ("GUARDIAN_HOME", "GUARDIAN_WATERMARK_MODEL")}
    os.environ["GUARDIAN_HOME"] = str(home)
    os.environ["GUARDIAN_WATERMARK_MODEL"] = str(tiny_watermark_card)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield home
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def settings(ray_home: Path, tiny_watermark_card: Path) -> Settings:
    """The cluster's home (this overrides the per-test home of ``tests/conftest.py``), with
    training jobs sent to the cluster as ``GUARDIAN_RAY_ADDRESS`` would."""
    return Settings(home=ray_home, watermark_model=str(tiny_watermark_card), ray_address="local")


def test_ray_actors_say_what_verify_says(g: Guardian, settings: Settings, tmp_path: Path) -> None:
    clips = make_corpus(g, tmp_path)
    report = tmp_path / "report.jsonl"
    summary = verify_batch(str(clips), report, settings=settings, ray_address="local")
    lines = read_report(report)
    assert summary.backend == "ray" and summary.workers == 2
    assert summary.done == len(lines) == 19 and summary.errors == 1
    assert_same_as_verify(g, lines)


def _voice(g: Guardian, attempt: Attempt) -> str:
    texts = slt_transcripts()
    return enroll(g, attempt.request(transcripts=texts)).voice_id


def _ledger(g: Guardian, voice: str) -> tuple[float, list[VaultBlob], str]:
    with g.reading() as s:
        v = s.get(Voice, voice)
        assert v is not None
        adapters = s.exec(select(VaultBlob).where(VaultBlob.kind == BlobKind.ADAPTER.value)).all()
        last = s.exec(
            select(AuditEntry)
            .where(col(AuditEntry.action).startswith("voice.train"))
            .order_by(col(AuditEntry.seq).desc())
        ).first()
        assert last is not None
        return v.epsilon_spent, list(adapters), last.action


def test_training_jobs_run_as_ray_tasks_and_come_back_sealed(g: Guardian, attempt: Attempt) -> None:
    voice = _voice(g, attempt)
    with pytest.raises(TrainingCancelled):
        train_voice(g, voice, epsilon=3.0, ray_address="local", should_stop=lambda: True)
    spent, adapters, action = _ledger(g, voice)
    assert adapters == [] and action == "voice.train.cancelled"
    assert 0.0 <= spent < 3.0

    job = submit_train_job(g, voice, epsilon=4.0, organization=ORG, key_id=None)
    assert run_one_job(g)  # the job worker, with GUARDIAN_RAY_ADDRESS set
    done = get_job(g, job.id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert done.result is not None
    result = TrainResult(**done.result)
    total, adapters, action = _ledger(g, voice)
    assert action == "voice.train" and 0 < result.epsilon <= 4.0 + 1e-6
    assert total == pytest.approx(spent + result.epsilon) == result.epsilon_total
    assert len(adapters) == 1 and adapters[0].ref == voice
    with g.reading() as s:
        plaintext = g.vault.get(s, adapters[0].id)  # sealed to the subject, opens here
        n = s.exec(select(func.count()).select_from(VaultBlob)).one()
    adapter = TrainedAdapter.from_bytes(plaintext)
    assert adapter.epsilon_spent == pytest.approx(result.epsilon)
    assert plaintext not in adapters[0].ciphertext and n > 1
