"""Train as a job, then synthesize over HTTP (whole and streamed); every clip verifies."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

import pytest
from fastapi.testclient import TestClient

from guardian.app import Guardian, enroll, run_one_job, verify_bytes
from tests.api.conftest import bearer, make_key
from tests.app.conftest import ORG, Attempt, slt_transcripts


@pytest.mark.slow
def test_train_job_then_synthesize_whole_and_streamed(
    client: TestClient, g: Guardian, attempt: Attempt
) -> None:
    texts = slt_transcripts()
    voice = enroll(g, attempt.request(transcripts=texts)).voice_id
    studio = make_key(g, "train", "synthesize", org=ORG)
    job = client.post(f"/v1/voices/{voice}/train", json={"epsilon": 4}, headers=bearer(studio))
    assert job.status_code == 202
    assert run_one_job(g)  # the worker process's loop, run here
    done = client.get(job.headers["location"], headers=bearer(studio)).json()
    assert done["status"] == "succeeded", done
    assert 0 < done["result"]["epsilon"] <= 4 + 1e-6

    body = {"text": "Hello there. This is a test.", "purpose": "audiobook"}
    r = client.post(f"/v1/voices/{voice}/synthesize", json=body, headers=bearer(studio))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    assert verify_bytes(g, r.content).verdict.value == "verified"

    with client.stream(
        "POST",
        f"/v1/voices/{voice}/synthesize",
        json={**body, "stream": True},
        headers=bearer(studio),
    ) as streamed:
        assert streamed.status_code == 200
        ctype = streamed.headers["content-type"]
        raw = b"".join(streamed.iter_bytes())
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
    parts = list(message.iter_parts())
    assert len(parts) == 2  # one labeled clip per sentence
    for part in parts:
        assert part["X-Guardian-Label-Id"].startswith("lbl_")
        assert verify_bytes(g, part.get_payload(decode=True)).verdict.value == "verified"

    other = make_key(g, "synthesize", org="Evil Corp")
    denied = client.post(f"/v1/voices/{voice}/synthesize", json=body, headers=bearer(other))
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/problem+json")
