"""Training jobs over HTTP: 202 + Location, polling, cancel, retry, dead workers."""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient

from guardian.app import Guardian, reap_dead_jobs, run_one_job
from guardian.store import Job, JobStatus
from tests.api.conftest import bearer, make_key

VOICE = "voice_bja2vzmjbhfrgmxzgcoaidgalm"  # well-formed, never enrolled


def test_submit_poll_fail_retry_cancel(client: TestClient, g: Guardian) -> None:
    token = make_key(g, "train")
    r = client.post(f"/v1/voices/{VOICE}/train", json={"epsilon": 4}, headers=bearer(token))
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    assert location == f"/v1/jobs/{r.json()['id']}" and r.json()["status"] == "queued"
    assert run_one_job(g)  # the worker: no such voice, so the job fails
    job = client.get(location, headers=bearer(token)).json()
    assert job["status"] == "failed" and "no voice" in job["error"]
    retried = client.post(f"{location}/retry", headers=bearer(token))
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    cancelled = client.post(f"{location}/cancel", headers=bearer(token))
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(f"{location}/cancel", headers=bearer(token))
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")


def test_another_organisation_cannot_see_the_job(client: TestClient, g: Guardian) -> None:
    mine = make_key(g, "train", org="Acme Studio")
    theirs = make_key(g, "train", org="Other Org")
    r = client.post(f"/v1/voices/{VOICE}/train", json={}, headers=bearer(mine))
    location = r.headers["location"]
    assert client.get(location, headers=bearer(theirs)).status_code == 404
    assert client.post(f"{location}/cancel", headers=bearer(theirs)).status_code == 404
    assert client.get(location, headers=bearer(make_key(g, "admin"))).status_code == 200


def test_a_job_whose_worker_died_is_failed_and_retryable(client: TestClient, g: Guardian) -> None:
    token = make_key(g, "train")
    job_id = client.post(f"/v1/voices/{VOICE}/train", json={}, headers=bearer(token)).json()["id"]
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    with g.transaction() as s:
        row = s.get(Job, job_id)
        assert row is not None
        row.status, row.worker_pid = JobStatus.RUNNING, int(gone.stdout)
        s.add(row)
    assert reap_dead_jobs(g) == 1
    job = client.get(f"/v1/jobs/{job_id}", headers=bearer(token)).json()
    assert job["status"] == "failed" and "worker" in job["error"]
    assert (
        client.post(f"/v1/jobs/{job_id}/retry", headers=bearer(token)).json()["status"] == "queued"
    )
