"""API keys: 401 without or with a bad/revoked key, 403 without the scope, the requester
is always the key's organisation, and keyed calls are audited under the key id."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import select

from guardian.api import create_app
from guardian.app import Guardian, authenticate_api_key, revoke_api_key
from guardian.config import Settings
from guardian.store import AuditEntry, Label
from tests.api.conftest import bearer, make_key
from tests.conftest import write_clip


def _status(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def test_missing_key_is_401(client: TestClient) -> None:
    r = client.get("/v1/audit/verify")
    _status(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_unknown_and_wrong_secret_get_the_same_answer(client: TestClient, g: Guardian) -> None:
    token = make_key(g, "audit")
    prefix = token.split("_")[1]
    wrong_secret = f"gdn_{prefix}_{'A' * 43}"
    unknown = f"gdn_{'0' * 12}_{'A' * 43}"
    answers = [
        _status(client.get("/v1/audit/verify", headers=bearer(t)), 401)
        for t in (wrong_secret, unknown, "not-a-key")
    ]
    assert len({(a["detail"], a["type"]) for a in answers}) == 1


def test_wrong_scope_is_403(client: TestClient, g: Guardian) -> None:
    token = make_key(g, "label")
    doc = _status(client.get("/v1/audit/verify", headers=bearer(token)), 403)
    assert "audit" in doc["detail"]


def test_admin_may_do_everything(client: TestClient, g: Guardian) -> None:
    token = make_key(g, "admin")
    assert client.get("/v1/audit/verify", headers=bearer(token)).json()["ok"] is True
    assert client.get("/v1/keys", headers=bearer(token)).status_code == 200


def test_revoked_key_is_401(client: TestClient, g: Guardian) -> None:
    token = make_key(g, "audit")
    assert client.get("/v1/audit/verify", headers=bearer(token)).status_code == 200
    revoke_api_key(g, authenticate_api_key(g, token).id)
    _status(client.get("/v1/audit/verify", headers=bearer(token)), 401)


def test_key_is_stored_hashed(g: Guardian) -> None:
    token = make_key(g, "label")
    dump = b"".join(p.read_bytes() for p in g.settings.home.rglob("*") if p.is_file())
    assert token.encode() not in dump
    assert token.split("_", 2)[2].encode() not in dump  # the secret, "_" and all


def test_presented_key_must_be_valid_even_on_the_public_verifier(
    client: TestClient, labeled: Path
) -> None:
    files = {"file": ("x.wav", labeled.read_bytes())}
    _status(client.post("/v1/verify", files=files, headers=bearer("gdn_x")), 401)


def test_setting_can_require_a_key_for_verify(
    g: Guardian, settings: Settings, labeled: Path
) -> None:
    closed = settings.model_copy(update={"api_require_key_for_verify": True})
    with TestClient(create_app(closed, guardian=g)) as c:
        files = {"file": ("x.wav", labeled.read_bytes())}
        _status(c.post("/v1/verify", files=files), 401)
        token = make_key(g, "label")
        assert c.post("/v1/verify", files=files, headers=bearer(token)).status_code == 200


def test_requester_cannot_be_spoofed(client: TestClient, g: Guardian, tmp_path: Path) -> None:
    token = make_key(g, "label", "synthesize", org="Acme Studio")
    clip = write_clip(tmp_path / "c.wav")
    r = client.post(
        "/v1/label",
        files={"file": ("c.wav", clip.read_bytes())},
        data={"purpose": "ad", "requester": "Evil Corp"},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    with g.reading() as s:
        row = s.exec(select(Label).where(Label.id == r.headers["x-guardian-label-id"])).one()
    assert json.loads(row.assertion_json)["requester"] == "Acme Studio"
    explained = client.get(
        "/v1/policy/explain",
        params={
            "action": "synthesize",
            "voice_id": "voice_0123456789abcdef",
            "purpose": "ad",
            "requester": "Evil Corp",
        },
        headers=bearer(token),
    )
    assert explained.status_code == 200, explained.text
    assert explained.json()["requester"] == "Acme Studio"
    assert explained.json()["allowed"] is False


def test_policy_explain_needs_the_action_scope(client: TestClient, g: Guardian) -> None:
    token = make_key(g, "label")
    params = {"action": "train", "voice_id": "voice_0123456789abcdef", "purpose": "ad"}
    _status(client.get("/v1/policy/explain", params=params, headers=bearer(token)), 403)


def test_keyed_calls_are_audited_under_the_key(
    client: TestClient, g: Guardian, tmp_path: Path
) -> None:
    token = make_key(g, "label", "audit")
    key_id = authenticate_api_key(g, token).id
    clip = write_clip(tmp_path / "c.wav")
    r = client.post(
        "/v1/label", files={"file": ("c.wav", clip.read_bytes())}, headers=bearer(token)
    )
    assert r.status_code == 200
    client.get("/v1/audit/entries", headers=bearer(token))
    client.post("/v1/verify", files={"file": ("c.wav", r.content)}, headers=bearer(token))
    with g.reading() as s:
        entries = s.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
    details = [(e.action, json.loads(e.details_json)) for e in entries]
    assert [d["actor"] for a, d in details if a == "label.create"] == [key_id]
    reads = [d for a, d in details if a == "api.access"]
    assert [d["operation"] for d in reads] == ["audit.show", "verify"]
    assert {d["actor"] for d in reads} == {key_id}


def test_rate_limit_answers_429_with_retry_after(g: Guardian, settings: Settings) -> None:
    tight = settings.model_copy(update={"api_rate_per_minute": 1, "api_rate_burst": 2})
    token = make_key(g, "audit")
    with TestClient(create_app(tight, guardian=g)) as c:
        codes = [c.get("/v1/audit/entries", headers=bearer(token)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.get("/v1/audit/entries", headers=bearer(token))
        doc = _status(r, 429)
        assert int(r.headers["retry-after"]) >= 1 and doc["type"].endswith("rate-limited")
        # Another client address (no key) has its own bucket.
        assert (
            c.post("/v1/verify", content=b"x", headers={"content-type": "audio/wav"}).status_code
            != 429
        )


def test_bad_input_writes_nothing(client: TestClient, g: Guardian) -> None:
    token = make_key(g, "admin")
    with g.reading() as s:
        before = len(s.exec(select(AuditEntry)).all())
    h = bearer(token)
    assert client.post("/v1/consent/challenges", json={"nom": "x"}, headers=h).status_code == 422
    assert (
        client.post("/v1/voices/voice_x/train", json={"epsilon": -1}, headers=h).status_code == 422
    )
    assert client.get("/v1/audit/entries", params={"limit": 0}, headers=h).status_code == 422
    assert (
        client.post(
            "/v1/label", content=b"junk", headers={**h, "content-type": "text/plain"}
        ).status_code
        == 415
    )
    with g.reading() as s:
        assert len(s.exec(select(AuditEntry)).all()) == before
