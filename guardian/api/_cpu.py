"""Bounding the CPU-bound work one server process runs at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
R = TypeVar("R")


class CpuSlots:
    """At most ``slots`` CPU-bound calls at once; the others wait their turn.

    More decodes and detections at once than there are cores only make each one slower
    (and the slowest much slower): queueing keeps the tail latency near the median.
    """

    def __init__(self, slots: int) -> None:
        self._limiter = anyio.CapacityLimiter(slots)

    async def run(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        async with self._limiter:
            return await run_in_threadpool(func, *args, **kwargs)


__all__ = ["CpuSlots"]
