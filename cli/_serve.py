"""``guardian serve`` and the client side of ``guardian verify --server``."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli._output import guarded
from guardian import app as usecases
from guardian.errors import ExitCode, GuardianError, UsageError

if TYPE_CHECKING:
    from guardian.app import VerifyReport

# Every line carries the request id (``-`` outside a request).
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "guardian.api.RequestIdFilter"}},
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"}
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "line",
            "filters": ["request_id"],
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "guardian": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


@guarded
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes.")] = 1,
    job_worker: Annotated[
        bool, typer.Option(help="Also run the job worker (training jobs) beside the server.")
    ] = True,
) -> None:
    """Run the HTTP API (FastAPI under uvicorn) on this Guardian home."""
    import uvicorn

    # Migrate, create keys and check the watermark model once, before any worker starts,
    # so that workers never race to upgrade the schema.
    usecases.prepare(usecases.open_guardian())
    # Share the cores between the workers (they inherit the environment): requests
    # running at once, and torch's threads per process. N processes each spinning
    # threads for every core made a two-worker server several times slower.
    share = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("GUARDIAN_API_CPU_SLOTS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, share)
    supervisor = _JobWorkerSupervisor() if job_worker else None
    try:
        uvicorn.run(
            "guardian.api:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=LOG_CONFIG,
            access_log=False,  # the app logs each request itself, with its request id
            proxy_headers=False,
            # A worker imports torch and loads the watermark model before it answers
            # the supervisor's health checks; on a busy machine that takes a while.
            timeout_worker_healthcheck=120,
        )
    finally:
        if supervisor is not None:
            supervisor.stop()


class _JobWorkerSupervisor:
    """Runs the job worker in its own process and starts a new one if it dies; the new
    one marks the jobs the dead one was running as failed (they can be retried)."""

    def __init__(self, check_s: float = 5.0) -> None:
        self._stopping = threading.Event()
        self._proc = self._start()
        self._thread = threading.Thread(
            target=self._watch, args=(check_s,), name="job-worker-supervisor", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _start() -> BaseProcess:
        from guardian.app import run_job_worker

        proc = multiprocessing.get_context("spawn").Process(
            target=run_job_worker, name="guardian-job-worker", daemon=True
        )
        proc.start()
        return proc

    def _watch(self, check_s: float) -> None:
        while not self._stopping.wait(check_s):
            if not self._proc.is_alive():
                logging.getLogger("guardian").warning(
                    "the job worker exited (code %s); starting a new one", self._proc.exitcode
                )
                self._proc = self._start()

    def stop(self) -> None:
        self._stopping.set()
        self._proc.terminate()
        self._proc.join(timeout=10)


class RemoteError(GuardianError):
    """The remote verifier answered with a problem, or could not be reached."""


_STATUS_EXIT = {
    400: ExitCode.USAGE,
    401: ExitCode.REJECTED,
    403: ExitCode.REJECTED,
    404: ExitCode.NOT_FOUND,
    413: ExitCode.UNREADABLE,
    415: ExitCode.UNREADABLE,
    422: ExitCode.UNREADABLE,
}


def remote_verify(server: str, clip: Path) -> VerifyReport:
    """POST ``clip`` to ``server``'s ``/v1/verify`` and parse the shared report schema."""
    import httpx

    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--server must be an http(s) URL, not {server!r}")
    try:
        data = clip.read_bytes()
    except OSError as e:
        error = RemoteError(f"{clip.name}: cannot read ({e.strerror or e})")
        error.exit_code = ExitCode.UNREADABLE
        raise error from e
    headers = {}
    if key := os.environ.get("GUARDIAN_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    url = server.rstrip("/") + "/v1/verify"
    try:
        response = httpx.post(
            url, files={"file": (clip.name, data)}, headers=headers, timeout=120.0
        )
    except httpx.HTTPError as e:
        raise RemoteError(f"cannot reach {url}: {type(e).__name__}") from e
    if response.status_code != 200:
        try:
            detail = response.json().get("detail") or response.reason_phrase
        except ValueError:
            detail = response.reason_phrase
        error = RemoteError(f"{url} answered {response.status_code}: {detail}")
        error.exit_code = _STATUS_EXIT.get(response.status_code, ExitCode.FAILURE)
        raise error
    try:
        return usecases.VerifyReport.model_validate_json(response.content)
    except ValueError as e:
        raise RemoteError(f"{url} did not answer with a verify report") from e


__all__ = ["remote_verify", "serve"]
