"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import GuardianDep, MetricsDep

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class ReadinessReport(BaseModel):
    ready: bool
    database: bool
    keys: bool
    watermark_model: bool
    problems: list[str]


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=ReadinessReport,
    summary="Readiness: database reachable, keys and watermark model loaded",
    responses={503: {"model": ReadinessReport, "description": "Not ready"}},
)
async def readyz(g: GuardianDep) -> Any:
    report = await run_in_threadpool(usecases.check_readiness, g)
    return JSONResponse(report.to_dict(), status_code=200 if report else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(g: GuardianDep, m: MetricsDep) -> Response:
    counts = await run_in_threadpool(usecases.job_counts, g)
    for state in ("queued", "running", "succeeded", "failed", "cancelled"):
        m.jobs.labels(state).set(counts.get(state, 0))
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
