"""Training as a Ray task, and the trust boundary it crosses.

The caller (the job worker or ``guardian train``) keeps the policy decision and the
budget ledger. Ray carries only a :class:`TrainPlan` there (ids and budget) and a
:class:`TrainedRecord` back (the adapter sealed to its subject, and the accountant's
numbers). The task opens the deployment from its own environment, decrypts the
enrollment audio into its own memory, trains, and seals the result before returning:
no plaintext ever enters Ray's object store, which may spill to disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from guardian.app._context import open_guardian
from guardian.app._engine import TrainedRecord, TrainPlan, run_training
from guardian.app._ray import connect, ray_errors
from guardian.engine import TrainingCancelledError
from guardian.errors import ExitCode, GuardianError

_POLL_S = 0.5


class RemoteTrainingError(GuardianError):
    """The Ray task failed; carries the exit code of the error the worker raised."""

    def __init__(self, message: str, *, exit_code: int = ExitCode.FAILURE, http_status: int = 500):
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)
        self.http_status = http_status


class _Control:
    """A small actor between caller and task: the stop request, and the progress."""

    def __init__(self) -> None:
        self._stop = False
        self._progress: tuple[str, int, int] = ("prepare", 0, 1)

    def stop(self) -> None:
        self._stop = True

    def stopped(self) -> bool:
        return self._stop

    def report(self, stage: str, done: int, total: int) -> None:
        self._progress = (stage, done, total)

    def progress(self) -> tuple[str, int, int]:
        return self._progress


def _train_task(plan: TrainPlan, control: Any) -> dict[str, Any]:
    """Runs on a Ray worker. Returns ``record``, ``cancelled`` (ε spent) or ``error``."""
    import ray

    g = open_guardian()  # GUARDIAN_* and the master key from this worker's environment
    asked = {"stop": False, "at": 0.0}

    def should_stop() -> bool:
        now = time.monotonic()
        if not asked["stop"] and now - asked["at"] >= 1.0:
            asked["at"] = now
            asked["stop"] = bool(ray.get(control.stopped.remote()))
        return bool(asked["stop"])

    def progress(stage: str, done: int, total: int) -> None:
        control.report.remote(stage, done, total)

    try:
        return {"record": run_training(g, plan, progress=progress, should_stop=should_stop)}
    except TrainingCancelledError as e:
        return {"cancelled": e.epsilon_spent}
    except GuardianError as e:
        return {
            "error": e.diagnostics(),
            "exit_code": int(e.exit_code),
            "http_status": e.http_status,
        }
    finally:
        g.engine.dispose()


def train_on_ray(
    plan: TrainPlan,
    *,
    address: str,
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainedRecord:
    """Run ``plan`` as a Ray task (one GPU when the plan says cuda) and wait for it.

    Raises ``TrainingCancelledError`` after a stop, as a local run does. A task whose
    worker dies is not retried (a retry would spend ε again): it raises
    :class:`RemoteTrainingError`, and nothing was stored or spent.
    """
    ray = connect(address)
    control = ray.remote(num_cpus=0)(_Control).remote()
    task = ray.remote(num_cpus=1, num_gpus=1 if plan.device == "cuda" else 0, max_retries=0)
    ref = task(_train_task).remote(plan, control)
    stopping = False
    try:
        while not ray.wait([ref], timeout=_POLL_S)[0]:
            if should_stop is not None and not stopping and should_stop():
                control.stop.remote()
                stopping = True
            if progress is not None:
                progress(*ray.get(control.progress.remote()))
        out: dict[str, Any] = ray.get(ref)
    except ray_errors() as e:
        raise RemoteTrainingError(
            f"the Ray worker training {plan.voice_id} stopped ({type(e).__name__}): "
            "no adapter was stored and no ε recorded"
        ) from e
    finally:
        ray.kill(control)
    if "cancelled" in out:
        raise TrainingCancelledError(float(out["cancelled"]), ())
    if "error" in out:
        raise RemoteTrainingError(
            str(out["error"]), exit_code=int(out["exit_code"]), http_status=int(out["http_status"])
        )
    record = out["record"]
    if not isinstance(record, TrainedRecord):
        raise RemoteTrainingError("the Ray task returned no training record")
    return record


__all__ = ["RemoteTrainingError", "train_on_ray"]
