"""Use-case: verify many clips, one JSON line each, in parallel and resumable.

Each worker (a local process, or a Ray actor with ``--ray``) opens the deployment and
loads the watermark model once, then verifies clip after clip with
:func:`verify_file`, so that a line says exactly what ``guardian verify --json`` says
about the clip. The report is appended to and synced line by line: a rerun after a
crash or a kill skips what is already reported.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from guardian.app._context import Guardian, open_guardian
from guardian.app._verify import verify_file
from guardian.config import Settings, get_settings
from guardian.errors import ConfigError, GuardianError, UsageError

log = logging.getLogger("guardian")

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mp4", ".aac"})
"""Files a directory or glob SOURCE contributes (by suffix, case-insensitive)."""
Backend = Literal["pool", "ray"]
Line = dict[str, Any]
OnLine = Callable[[Line], None]
_GLOB_CHARS = frozenset("*?[")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_LINE_START = b'{"path":'
"""Every report line starts so (``path`` is its first key)."""


@dataclass(frozen=True)
class BatchSummary:
    """What one ``verify-batch`` run did (``--json`` prints ``to_dict``)."""

    report: str
    backend: Backend
    workers: int
    listed: int
    """Clips in SOURCE."""
    skipped: int
    """Clips already in the report from an earlier run."""
    done: int
    """Clips reported by this run (verdicts plus errors)."""
    verdicts: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0

    @property
    def clips_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["seconds"] = round(self.seconds, 3)
        d["clips_per_s"] = round(self.clips_per_s, 3)
        return d


# --- sources --------------------------------------------------------------------------------


def _audio_files(paths: Iterator[Path]) -> list[Path]:
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _csv_paths(listing: Path) -> list[str]:
    with listing.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and r[0].strip()]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    column = header.index("path") if "path" in header else 0
    body = rows[1:] if "path" in header else rows
    return [r[column].strip() for r in body if len(r) > column and r[column].strip()]


def _jsonl_paths(listing: Path) -> list[str]:
    out: list[str] = []
    for n, raw in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as e:
            raise UsageError(f"{listing}: line {n} is not JSON") from e
        path = item.get("path") if isinstance(item, dict) else item
        if not isinstance(path, str) or not path:
            raise UsageError(f'{listing}: line {n} has no "path" string')
        out.append(path)
    return out


def list_clips(source: str) -> list[Path]:
    """The clips SOURCE names: a directory (recursive), a glob, a ``.csv`` list (a
    ``path`` column, else the first), a ``.jsonl`` list (``{"path": ...}`` or strings),
    or one audio file. Listed paths are relative to the list's folder. Each clip once,
    in listing order."""
    given = Path(source).expanduser()
    if given.is_dir():
        clips = _audio_files(given.rglob("*"))
    elif given.is_file() and given.suffix.lower() in (".csv", ".jsonl"):
        try:
            names = _csv_paths(given) if given.suffix.lower() == ".csv" else _jsonl_paths(given)
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise UsageError(f"cannot read the list {given}: {e}") from e
        clips = [given.parent / n if not Path(n).is_absolute() else Path(n) for n in names]
    elif given.is_file():
        clips = [given]
    elif _GLOB_CHARS & set(source):
        clips = _audio_files(
            Path(p) for p in glob.iglob(os.path.expanduser(source), recursive=True)
        )
    else:
        raise UsageError(f"no such file, directory or glob: {source}")
    unique = list(dict.fromkeys(clips))
    if not unique:
        raise UsageError(f"{source} names no audio clips")
    return unique


# --- the report -----------------------------------------------------------------------------


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def check_report_path(report: Path) -> None:
    """Refuse a report path that is a directory or lies in a missing directory."""
    if report.is_dir():
        raise UsageError(f"-o {report} is a directory; give a .jsonl file")
    if not report.parent.resolve().is_dir():
        raise UsageError(f"the directory of -o {report} does not exist")


def reported(report: Path) -> set[str]:
    """Clips the report already holds (resolved paths). A last line cut short by a kill
    is removed; anything else that is not a report line is refused."""
    if not report.exists():
        return set()
    data = report.read_bytes()
    done: set[str] = set()
    good = 0
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n") and raw.startswith(_LINE_START):
            break  # the torn last line of a killed run
        try:
            line = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            line = None
        if not isinstance(line, dict) or not isinstance(line.get("path"), str):
            raise UsageError(f"{report} is not a verify-batch report (line {len(done) + 1})")
        done.add(_key(line["path"]))
        good += len(raw)
    if good < len(data):
        with report.open("r+b") as f:
            f.truncate(good)
            os.fsync(f.fileno())
    return done


class _Writer:
    """Appends lines to the report; each line is on disk before the next is written."""

    def __init__(self, report: Path) -> None:
        self._f = report.open("a", encoding="utf-8")

    def write(self, line: Line) -> None:
        self._f.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


# --- one clip, in a worker ------------------------------------------------------------------


def error_line(path: str, error: GuardianError) -> Line:
    return {
        "path": path,
        "error": {
            "type": type(error).__name__,
            "message": error.diagnostics(),
            "exit_code": int(error.exit_code),
        },
    }


def verify_line(g: Guardian, path: str) -> Line:
    """The report line for one clip: ``guardian verify --json`` plus ``path`` and
    ``error`` (None), or ``path`` and ``error`` alone when the clip cannot be verified."""
    try:
        report = verify_file(g, Path(path)).to_dict()
    except GuardianError as e:
        return error_line(path, e)
    except Exception as e:  # a worker's top level: one clip must not stop the batch
        log.exception("verify-batch: internal error on one clip")
        return error_line(path, GuardianError(f"internal error: {type(e).__name__}"))
    return {"path": path, **report, "error": None}


def open_worker(settings: Settings | None = None, *, threads: int = 1) -> Guardian:
    """A worker's deployment: one database engine and the watermark detector ``verify``
    runs, loaded once. The detector gets ``threads`` (one per core the worker holds),
    so that N workers use N cores, not N²."""
    g = open_guardian(settings)
    g.detector_threads = threads
    _ = g.detector
    return g


_worker: Guardian | None = None


def _init_pool_worker(settings: Settings) -> None:
    global _worker
    _worker = open_worker(settings)


def _pool_verify(path: str) -> Line:
    if _worker is None:  # the initializer always runs first in a pool worker
        raise RuntimeError("verify-batch worker used without its initializer")
    return verify_line(_worker, path)


def crashed_line(path: str) -> Line:
    error = GuardianError("the worker verifying this clip (or another beside it) stopped")
    return error_line(path, error)


@contextmanager
def _one_thread_libraries() -> Iterator[None]:
    """One OpenMP / BLAS thread in the workers this process starts.

    The native thread pools size themselves when a worker imports numpy and torch, before
    any initializer runs; N workers with N threads each on N cores spin against each
    other. This process's own pools are already sized, so only the children see it.
    """
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_pool(paths: list[str], settings: Settings, workers: int, on_line: OnLine) -> None:
    """A local process pool; a worker that dies fails its clips, not the batch."""
    with _one_thread_libraries():
        _pool_loop(paths, settings, workers, on_line)


def _pool_loop(paths: list[str], settings: Settings, workers: int, on_line: OnLine) -> None:
    queue = list(reversed(paths))
    while queue:
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=_init_pool_worker,
            initargs=(settings,),
        )
        running: dict[Future[Line], str] = {}
        answered = 0
        try:
            while queue or running:
                while queue and len(running) < 2 * workers:
                    path = queue.pop()
                    running[pool.submit(_pool_verify, path)] = path
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    path = running.pop(fut)
                    on_line(fut.result())
                    answered += 1
        except BrokenProcessPool as e:
            if not answered:  # the workers cannot even start: report nothing, stop
                raise ConfigError(
                    "the verify-batch workers stopped before verifying any clip "
                    "(their error is on stderr)"
                ) from e
            for path in running.values():
                on_line(crashed_line(path))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# --- the use case ---------------------------------------------------------------------------


def verify_batch(
    source: str,
    report: Path,
    *,
    settings: Settings | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    actor_cpus: float = 1.0,
    actor_gpus: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Verify every clip SOURCE names into the JSON-lines ``report``; see ``docs/cli.md``.

    Runs on a local process pool (``workers``, default: every core), or on the Ray
    cluster at ``ray_address`` (one actor per ``actor_cpus``, up to ``workers``).
    Clips already in ``report`` are skipped.
    """
    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    if actor_cpus <= 0 or actor_gpus < 0:
        raise UsageError("actor resources must be positive")
    settings = settings or get_settings()
    check_report_path(report)
    clips = list_clips(source)
    done_before = reported(report)
    todo = [str(p) for p in clips if _key(p) not in done_before]
    open_guardian(settings).engine.dispose()  # create or upgrade the home once, here
    backend: Backend = "ray" if ray_address else "pool"
    counts: Counter[str] = Counter()
    writer = _Writer(report)

    def on_line(line: Line) -> None:
        writer.write(line)
        counts["error" if line.get("error") else str(line["verdict"])] += 1
        if progress is not None:
            progress(counts.total(), len(todo))

    start = time.perf_counter()
    try:
        if not todo:
            n = 0
        elif ray_address:
            from guardian.app._batch_ray import run_on_ray  # Ray loads only when asked

            n = run_on_ray(
                todo,
                address=ray_address,
                workers=workers,
                actor_cpus=actor_cpus,
                actor_gpus=actor_gpus,
                on_line=on_line,
            )
        else:
            n = min(workers or os.cpu_count() or 1, len(todo))
            _run_pool(todo, settings, n, on_line)
    finally:
        writer.close()
    errors = counts.pop("error", 0)
    return BatchSummary(
        report=str(report),
        backend=backend,
        workers=n,
        listed=len(clips),
        skipped=len(clips) - len(todo),
        done=sum(counts.values()) + errors,
        verdicts=dict(sorted(counts.items())),
        errors=errors,
        seconds=time.perf_counter() - start,
    )


__all__ = [
    "AUDIO_SUFFIXES",
    "BatchSummary",
    "list_clips",
    "open_worker",
    "reported",
    "verify_batch",
    "verify_line",
]
