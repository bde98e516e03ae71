"""Use-cases: long work as jobs in the database, run by a worker process.

``guardian serve`` starts one worker beside the HTTP workers (the embedded default).
With ``GUARDIAN_RAY_ADDRESS`` set, the worker
runs each training as a Ray task (``docs/scaling.md``) and keeps the ledger itself.
A job moves ``queued → running → succeeded | failed | cancelled``. A running job whose
worker process is gone is marked failed (and can be retried); cancelling a running
training stops it at the next step and records only the ε it actually spent.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from guardian.app._consent import check_id
from guardian.app._context import Guardian, open_guardian
from guardian.app._engine import TrainingCancelled, train_voice
from guardian.audit import acting_as
from guardian.errors import GuardianError, JobStateError, NotFoundError, UsageError
from guardian.store import Job, JobStatus, as_utc, utcnow

log = logging.getLogger("guardian")

TRAIN = "train"
_FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class JobView:
    id: str
    kind: str
    status: JobStatus
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    organization: str
    attempts: int
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None

    @classmethod
    def from_row(cls, row: Job) -> JobView:
        def iso(v: Any) -> str | None:
            return as_utc(v).strftime("%Y-%m-%dT%H:%M:%SZ") if v else None

        return cls(
            id=row.id,
            kind=row.kind,
            status=row.status,
            params=json.loads(row.params_json),
            result=json.loads(row.result_json) if row.result_json else None,
            error=row.error,
            organization=row.organization,
            attempts=row.attempts,
            cancel_requested=row.cancel_requested,
            created_at=iso(row.created_at) or "",
            started_at=iso(row.started_at),
            finished_at=iso(row.finished_at),
        )

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["status"] = self.status.value
        return d


def submit_train_job(
    g: Guardian, voice_id: str, *, epsilon: float, organization: str, key_id: str | None
) -> JobView:
    """Queue the training of ``voice_id``; the policy is decided when it runs."""
    check_id(voice_id, "voice")
    if not 0 < epsilon <= 100:
        raise UsageError("epsilon must be in (0, 100]")
    g.ensure_keys()
    with g.transaction() as s:
        row = Job(
            id=f"job_{secrets.token_hex(10)}",
            kind=TRAIN,
            status=JobStatus.QUEUED,
            params_json=json.dumps({"voice_id": voice_id, "epsilon": epsilon}),
            key_id=key_id,
            organization=organization,
            created_at=utcnow(),
        )
        s.add(row)
        g.audit.append(
            s, "job.submit", target=row.id, details={"kind": TRAIN, "voice_id": voice_id}
        )
    return JobView.from_row(row)


def _get(g: Guardian, job_id: str, organization: str | None) -> Job:
    with g.reading() as s:
        row = s.get(Job, job_id)
    # Another organisation's job is answered like a missing one.
    if row is None or (organization is not None and row.organization != organization):
        raise NotFoundError(f"no job {job_id}")
    return row


def get_job(g: Guardian, job_id: str, *, organization: str | None = None) -> JobView:
    """A job, as seen by ``organization`` (None: any organisation, for admins)."""
    return JobView.from_row(_get(g, job_id, organization))


def cancel_job(g: Guardian, job_id: str, *, organization: str | None = None) -> JobView:
    """Cancel a queued job at once, or ask a running one to stop after its current step."""
    _get(g, job_id, organization)
    with g.transaction() as s:
        row = s.get(Job, job_id)
        assert row is not None  # checked above; jobs are never deleted
        if row.status is JobStatus.QUEUED:
            row.status, row.finished_at = JobStatus.CANCELLED, utcnow()
        elif row.status is JobStatus.RUNNING:
            row.cancel_requested = True
        else:
            raise JobStateError(f"job {job_id} is already {row.status.value}")
        s.add(row)
        g.audit.append(s, "job.cancel", target=job_id)
    return JobView.from_row(row)


def retry_job(g: Guardian, job_id: str, *, organization: str | None = None) -> JobView:
    """Queue a failed or cancelled job again."""
    _get(g, job_id, organization)
    with g.transaction() as s:
        row = s.get(Job, job_id)
        assert row is not None
        if row.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobStateError(
                f"job {job_id} is {row.status.value}; only a failed or cancelled job can be retried"
            )
        row.status, row.error, row.cancel_requested = JobStatus.QUEUED, None, False
        row.started_at = row.finished_at = row.worker_pid = None
        s.add(row)
        g.audit.append(s, "job.retry", target=job_id)
    return JobView.from_row(row)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_jobs(g: Guardian) -> int:
    """Mark running jobs whose worker process is gone as failed; return how many."""
    with g.reading() as s:
        running = s.exec(select(Job).where(Job.status == JobStatus.RUNNING)).all()
    dead = [j.id for j in running if not _alive(j.worker_pid)]
    for job_id in dead:
        _finish(g, job_id, JobStatus.FAILED, error="the worker running this job stopped")
    return len(dead)


def _claim(g: Guardian) -> Job | None:
    with g.transaction() as s:
        row = s.exec(
            select(Job).where(Job.status == JobStatus.QUEUED).order_by(col(Job.created_at))
        ).first()
        if row is None:
            return None
        row.status, row.started_at, row.worker_pid = JobStatus.RUNNING, utcnow(), os.getpid()
        row.attempts += 1
        s.add(row)
        g.audit.append(s, "job.start", target=row.id, details={"attempt": row.attempts})
    return row


def _finish(
    g: Guardian,
    job_id: str,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    with g.transaction() as s:
        row = s.get(Job, job_id)
        if row is None or row.status in _FINAL:
            return
        row.status, row.finished_at = status, utcnow()
        row.result_json = json.dumps(result) if result is not None else None
        row.error = error[:500] if error else None
        s.add(row)
        g.audit.append(s, f"job.{status.value}", target=job_id, details={"error": row.error})


def _cancel_requested(g: Guardian, job_id: str) -> bool:
    with g.reading() as s:
        row = s.get(Job, job_id)
        return bool(row and row.cancel_requested)


def run_one_job(g: Guardian) -> bool:
    """Claim and run the oldest queued job; False when there was none."""
    job = _claim(g)
    if job is None:
        return False
    params = json.loads(job.params_json)
    last_check = [0.0]

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last_check[0] < 1.0:
            return False
        last_check[0] = now
        return _cancel_requested(g, job.id)

    try:
        with acting_as(job.key_id):
            result = train_voice(
                g,
                params["voice_id"],
                epsilon=float(params["epsilon"]),
                requester=job.organization,
                should_stop=should_stop,
                ray_address=g.settings.ray_address,
            )
    except TrainingCancelled as e:
        _finish(g, job.id, JobStatus.CANCELLED, error=e.diagnostics())
    except GuardianError as e:
        _finish(g, job.id, JobStatus.FAILED, error=e.diagnostics())
    else:
        _finish(g, job.id, JobStatus.SUCCEEDED, result=result.to_dict())
    return True


def run_job_worker(poll_s: float = 1.0) -> None:
    """The worker process: reap dead jobs, then run queued jobs until terminated."""
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    g = open_guardian()
    reap_dead_jobs(g)
    while not stop["now"]:
        try:
            if not run_one_job(g):
                time.sleep(poll_s)
        except GuardianError as e:  # a broken job must not stop the worker
            log.error("job worker: %s", e.diagnostics())
            time.sleep(poll_s)


__all__ = [
    "JobView",
    "cancel_job",
    "get_job",
    "reap_dead_jobs",
    "retry_job",
    "run_job_worker",
    "run_one_job",
    "submit_train_job",
]
