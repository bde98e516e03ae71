"""A real ``guardian serve`` (uvicorn subprocess, two workers) on a free port.

Concurrent writers through both workers, and a CLI beside them, append to one audit
log; afterwards ``guardian audit verify`` finds the chain intact. The job worker that
``guardian serve`` starts runs a submitted job. Runs on PostgreSQL too
when GUARDIAN_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, postgres_schema, wait_until_ready, write_clip

pytestmark = pytest.mark.slow  # live uvicorn servers, several workers each

GUARDIAN = [sys.executable, "-m", "cli.main"]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_watermark_card: Path,
) -> Iterator[dict[str, str]]:
    tmp_path = tmp_path_factory.mktemp("live")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDIAN_")}
    env["GUARDIAN_HOME"] = str(tmp_path / "home")
    env["GUARDIAN_WATERMARK_MODEL"] = str(tiny_watermark_card)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    if request.param == "sqlite":
        yield env
        return
    with postgres_schema() as url:
        env["GUARDIAN_DATABASE_URL"] = url
        yield env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GUARDIAN, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def server(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("server")
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [*GUARDIAN, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, url, tmp_path / "server.log")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_live_server_concurrent_writers_keep_one_chain(
    env: dict[str, str], server: str, tmp_path: Path
) -> None:
    created = cli(
        env, "apikey", "create", "--name", "t", "--org", "Acme", "--scopes", "label,audit", "--json"
    )
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["key"]
    clips = [write_clip(tmp_path / f"c{i}.wav", seconds=2.0, seed=10 + i) for i in range(8)]

    def label(path: Path) -> int:
        with httpx.Client(timeout=120) as c:
            r = c.post(
                f"{server}/v1/label",
                files={"file": (path.name, path.read_bytes())},
                data={"purpose": "live"},
                headers={"Authorization": f"Bearer {token}"},
            )
            return r.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(label, p) for p in clips]
        # A CLI writing beside the server's workers.
        beside = cli(env, "label", str(clips[0]), "-o", str(tmp_path / "cli.wav"), "--json")
        codes = [f.result() for f in futures]
    assert beside.returncode == 0, beside.stderr
    assert codes == [200] * len(clips)

    audit = cli(env, "audit", "verify", "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = json.loads(audit.stdout)
    assert report["ok"] is True and report["entries"] >= len(clips) + 2
    over_http = httpx.get(
        f"{server}/v1/audit/verify", headers={"Authorization": f"Bearer {token}"}, timeout=60
    ).json()
    assert over_http["ok"] is True


def test_curl_verify_matches_the_cli(env: dict[str, str], server: str, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "s.wav", seconds=3.0)
    out = tmp_path / "labeled.mp3"
    assert cli(env, "label", str(src), "-o", str(out)).returncode == 0
    curl = subprocess.run(
        ["curl", "-sS", "-F", f"file=@{out}", f"{server}/v1/verify"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    local = cli(env, "verify", str(out), "--json")
    assert json.loads(curl.stdout) == json.loads(local.stdout)
    remote = cli(env, "verify", str(out), "--server", server, "--json")
    assert remote.returncode == local.returncode == 0
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    other = write_clip(tmp_path / "o.wav", seed=99)
    assert cli(env, "verify", str(other), "--server", server).returncode == 1
    junk = tmp_path / "junk.wav"
    junk.write_text("hello")
    bad = cli(env, "verify", str(junk), "--server", server)
    assert bad.returncode == 4 and "415" in bad.stderr


def test_the_job_worker_runs_jobs(env: dict[str, str], server: str) -> None:
    created = cli(
        env, "apikey", "create", "--name", "j", "--org", "Acme", "--scopes", "train", "--json"
    )
    headers = {"Authorization": f"Bearer {json.loads(created.stdout)['key']}"}
    voice = "voice_bja2vzmjbhfrgmxzgcoaidgalm"  # well-formed, never enrolled
    r = httpx.post(f"{server}/v1/voices/{voice}/train", json={}, headers=headers, timeout=60)
    assert r.status_code == 202
    deadline = time.monotonic() + 120
    while (job := httpx.get(f"{server}{r.headers['location']}", headers=headers).json())[
        "status"
    ] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "failed" and "no voice" in job["error"]
