"""POST /v1/verify: the CLI's verdicts over HTTP, and bad uploads as problems."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from guardian.api import create_app
from guardian.app import Guardian, verify_file
from guardian.config import Settings
from tests.conftest import write_clip


def _problem(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert doc["status"] == status and doc["title"]
    assert doc["request_id"] == r.headers["x-request-id"]
    return doc


def test_multipart_and_raw_give_the_cli_answer(
    client: TestClient, g: Guardian, labeled: Path
) -> None:
    expected = verify_file(g, labeled).to_dict()
    r = client.post("/v1/verify", files={"file": ("x.wav", labeled.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    assert r.json() == expected
    assert r.json()["verdict"] == "verified"
    raw = client.post(
        "/v1/verify", content=labeled.read_bytes(), headers={"content-type": "audio/wav"}
    )
    assert raw.status_code == 200 and raw.json() == expected


def test_every_verdict_is_200(client: TestClient, tmp_path: Path) -> None:
    other = write_clip(tmp_path / "other.wav", seed=42)
    r = client.post("/v1/verify", files={"file": ("o.wav", other.read_bytes())})
    assert r.status_code == 200
    assert r.json()["verdict"] == "not_found"


def test_not_audio_is_415(client: TestClient) -> None:
    doc = _problem(client.post("/v1/verify", files={"file": ("a.txt", b"hello world")}), 415)
    assert "not an audio file" in doc["detail"]
    _problem(
        client.post("/v1/verify", content=b"{}", headers={"content-type": "application/json"}),
        415,
    )


def test_undecodable_is_422(client: TestClient, labeled: Path) -> None:
    data = labeled.read_bytes()[:200]  # a WAV header and nothing playable
    _problem(client.post("/v1/verify", files={"file": ("t.wav", data)}), 422)


def test_over_the_limit_is_413_and_not_read(g: Guardian, settings: Settings, labeled: Path) -> None:
    small = settings.model_copy(update={"api_max_upload_bytes": 1000})
    with TestClient(create_app(small, guardian=g)) as c:
        _problem(c.post("/v1/verify", files={"file": ("x.wav", labeled.read_bytes())}), 413)
        chunks = (b"\0" * 600 for _ in range(4))  # no content-length: streamed
        _problem(c.post("/v1/verify", content=chunks, headers={"content-type": "audio/wav"}), 413)


def test_no_file_part_is_400(client: TestClient) -> None:
    _problem(client.post("/v1/verify", data={"other": "x"}, files={"x": ("a", b"b")}), 400)


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    _problem(client.get("/v1/nothing-here"), 404)


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    r = client.get("/healthz", headers={"x-request-id": "abcdef123456"})
    assert r.headers["x-request-id"] == "abcdef123456"
    r = client.get("/healthz", headers={"x-request-id": "bad id\n"})
    assert r.headers["x-request-id"] != "bad id\n" and len(r.headers["x-request-id"]) == 16


def test_ready_and_metrics(client: TestClient, labeled: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    client.post("/v1/verify", files={"file": ("x.wav", labeled.read_bytes())})
    text = client.get("/metrics").text
    assert 'guardian_verify_verdicts_total{verdict="verified"} 1.0' in text
    assert "guardian_http_request_seconds_bucket" in text
    assert 'guardian_jobs{state="queued"}' in text


def test_openapi_documents_the_shared_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/verify"]["post"]
    assert set(op["requestBody"]["content"]) == {"multipart/form-data", "audio/*"}
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/VerifyReport")
    report = spec["components"]["schemas"]["VerifyReport"]
    assert set(report["properties"]["verdict"]["enum"]) == {
        "verified",
        "traced",
        "watermarked",
        "tampered",
        "not_found",
    }
    assert "Problem" in spec["components"]["schemas"]


def test_no_path_or_traceback_reaches_a_client(g: Guardian, settings: Settings) -> None:
    from guardian.api._problems import scrub
    from guardian.errors import UsageError

    assert scrub("/tmp/guardian-api-x1/labeled.wav: cannot write") == "labeled.wav: cannot write"
    app = create_app(settings, guardian=g)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"secret at {settings.home}/master.key")

    @app.get("/usage")
    def usage() -> None:
        raise UsageError(f"{settings.home}/keys/x.key: bad")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("application/problem+json")
        assert str(settings.home) not in r.text and "secret" not in r.text
        assert "Traceback" not in r.text and r.json()["request_id"]
        r = c.get("/usage")
        assert r.status_code == 400 and str(settings.home) not in r.text
        assert r.json()["detail"] == "x.key: bad"
