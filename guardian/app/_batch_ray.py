"""``verify-batch --ray``: long-lived Ray actors, each with its own deployment.

Each actor opens the deployment from its node's environment (``GUARDIAN_*``, the master
key included: nothing secret travels through Ray) and loads the watermark model once.
Clips go to the actors by path, so they must see the same files (a shared volume);
lines come back as each clip finishes.
"""

from __future__ import annotations

import math
from typing import Any

from guardian.app._batch import Line, OnLine, crashed_line, open_worker, verify_line
from guardian.app._ray import connect, ray_errors
from guardian.errors import UsageError

_IN_FLIGHT = 2
"""Clips queued per actor, so that none waits between two clips."""


class _Verifier:
    """A Ray actor: one deployment and one watermark model for its whole life."""

    def __init__(self, threads: int) -> None:
        self._g = open_worker(threads=threads)

    def verify(self, path: str) -> Line:
        return verify_line(self._g, path)


def _actor_count(ray: Any, workers: int | None, cpus: float, gpus: float) -> int:
    resources = ray.cluster_resources()
    fits = math.floor(float(resources.get("CPU", 0)) / cpus)
    if gpus > 0:
        fits = min(fits, math.floor(float(resources.get("GPU", 0)) / gpus))
    if fits < 1:
        raise UsageError(
            f"the Ray cluster has no room for one actor ({cpus} CPU, {gpus} GPU): {resources}"
        )
    return min(fits, workers) if workers else fits


def run_on_ray(
    paths: list[str],
    *,
    address: str,
    workers: int | None,
    actor_cpus: float,
    actor_gpus: float,
    on_line: OnLine,
) -> int:
    """Verify ``paths`` on the Ray cluster at ``address``; returns the number of actors.

    An actor that dies fails the clips it held (the lines say so) and is restarted.
    """
    ray = connect(address)
    n = min(_actor_count(ray, workers, actor_cpus, actor_gpus), len(paths))
    cls = ray.remote(num_cpus=actor_cpus, num_gpus=actor_gpus, max_restarts=3)(_Verifier)
    actors = [cls.remote(max(1, int(actor_cpus))) for _ in range(n)]
    queue = list(reversed(paths))
    running: dict[Any, tuple[str, Any]] = {}
    load = dict.fromkeys(range(n), 0)
    try:
        while queue or running:
            for i in range(n):
                while queue and load[i] < _IN_FLIGHT:
                    path = queue.pop()
                    running[actors[i].verify.remote(path)] = (path, i)
                    load[i] += 1
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                path, i = running.pop(ref)
                load[i] -= 1
                try:
                    line: Line = ray.get(ref)
                except ray_errors():
                    line = crashed_line(path)
                on_line(line)
    finally:
        for actor in actors:
            ray.kill(actor)
    return n


__all__ = ["run_on_ray"]
