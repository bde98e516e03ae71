"""Consent and rights over HTTP: challenge, enrollment, policy for the key's organisation,
self-service withdrawal, export and erasure by token."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from guardian.app import Guardian
from guardian.app._consent_voice import enrollment_samples, spoken_consent
from guardian.audio import OutputFormat, encode_bytes
from guardian.consent import CODE_WORDS
from tests.api.conftest import bearer, make_key
from tests.app.conftest import NAME, ORG, SLT, slt_samples


@pytest.mark.slow
def test_enroll_explain_withdraw_export_forget(client: TestClient, g: Guardian) -> None:
    studio = make_key(g, "enroll", "synthesize", "rights", org=ORG)
    r = client.post("/v1/consent/challenges", json={"name": NAME}, headers=bearer(studio))
    assert r.status_code == 201, r.text
    challenge = r.json()
    assert ORG in challenge["statement"]
    said = spoken_consent(SLT, challenge["phrase"].split(), challenge["code"].split())
    consent = encode_bytes(said, OutputFormat.WAV)
    samples = [p.read_bytes() for p in slt_samples()]
    r = client.post(
        "/v1/enrollments",
        data={"challenge_id": challenge["challenge_id"], "purposes": "audiobook,demo"},
        files=[("consent", ("consent.wav", consent))]
        + [("samples", (f"s{i}.wav", b)) for i, b in enumerate(samples)],
        headers=bearer(studio),
    )
    assert r.status_code == 201, r.text
    enrolled = r.json()
    voice, token = enrolled["voice_id"], enrolled["withdraw_token"]

    shown = client.get(f"/v1/voices/{voice}/consent", headers=bearer(studio))
    assert shown.status_code == 200, shown.text

    params = {"action": "synthesize", "voice_id": voice, "purpose": "audiobook"}
    assert client.get("/v1/policy/explain", params=params, headers=bearer(studio)).json()["allowed"]
    other = make_key(g, "synthesize", org="Evil Corp")
    spoofed = client.get(
        "/v1/policy/explain", params={**params, "requester": ORG}, headers=bearer(other)
    ).json()
    assert spoofed["allowed"] is False and spoofed["requester"] == "Evil Corp"

    r = client.post("/v1/consent/withdraw", json={"token": token})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert not client.get("/v1/policy/explain", params=params, headers=bearer(studio)).json()[
        "allowed"
    ]
    exported = client.post("/v1/me/export", json={"token": token})
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(exported.content)).namelist()
    receipt = client.post("/v1/me/forget", json={"token": token})
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["already_erased"] is False
    again = client.post(f"/v1/subjects/{voice}/forget", headers=bearer(studio))
    assert again.status_code == 200 and again.json()["already_erased"] is True
    gone = client.post("/v1/me/export", json={"token": "gwt_unknown"})
    assert gone.status_code == 404


@pytest.mark.slow  # enrolls through the speech and speaker models
def test_refused_enrollment_is_422(client: TestClient, g: Guardian, tmp_path: Path) -> None:
    studio = make_key(g, "enroll", org=ORG)
    challenge = client.post(
        "/v1/consent/challenges", json={"name": NAME}, headers=bearer(studio)
    ).json()
    code = challenge["code"].split()
    wrong_code = [*code[:-1], next(w for w in CODE_WORDS if w != code[-1])]
    wrong = encode_bytes(
        spoken_consent(SLT, challenge["phrase"].split(), wrong_code), OutputFormat.WAV
    )
    samples = [p.read_bytes() for p in enrollment_samples(SLT)][:3]
    r = client.post(
        "/v1/enrollments",
        data={"challenge_id": challenge["challenge_id"], "purposes": "audiobook"},
        files=[("consent", ("c.wav", wrong))] + [("samples", ("s.wav", b)) for b in samples],
        headers=bearer(studio),
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
