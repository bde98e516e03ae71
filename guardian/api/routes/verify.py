"""The public verifier: ``POST /v1/verify``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import (
    CpuDep,
    GuardianDep,
    MetricsDep,
    PublicCaller,
    SettingsDep,
    audit_access,
)
from guardian.api._problems import problem_responses
from guardian.api._upload import read_upload, upload_body
from guardian.app import VerifyReport

router = APIRouter(tags=["verify"])


@router.post(
    "/v1/verify",
    response_model=VerifyReport,
    summary="Say where a clip came from",
    description=(
        "Send the clip as multipart (`file` field) or as a raw `audio/*` body. The answer "
        "is the JSON of `guardian verify --json`; every verdict is HTTP 200.\n\n"
        "```\ncurl -F file=@clip.wav http://localhost:8000/v1/verify\n```"
    ),
    openapi_extra=upload_body(),
    responses=problem_responses(400, 401, 413, 415, 422, 429),
)
async def verify(
    request: Request,
    g: GuardianDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    cpu: CpuDep,
    caller: PublicCaller,
) -> VerifyReport:
    upload = await read_upload(request, limit=settings.api_max_upload_bytes)
    result = await cpu.run(usecases.verify_bytes, g, upload.data, name="upload")
    if caller is not None:
        await run_in_threadpool(audit_access, g, caller, "verify", None)
    metrics.verdicts.labels(result.verdict.value).inc()
    return result.report()
