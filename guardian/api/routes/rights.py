"""Data-subject rights: export (zip) and erasure (signed receipt).

An operator with the `rights` scope acts on a subject, voice or consent id; the subject
acts on their own data with their withdrawal token, without an API key.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import GuardianDep, client_address, require
from guardian.api._files import workdir
from guardian.api._problems import problem_responses
from guardian.app import ApiKeyInfo, Guardian, Scope

router = APIRouter(tags=["rights"])
_ERRORS = problem_responses(400, 401, 403, 404, 422, 429)
_ZIP: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Everything Guardian holds about the subject",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class TokenIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"token": "gwt_3kq7v2m4x8p1r6t9"}]}
    )

    token: str = Field(min_length=1, max_length=80, description="The withdrawal token (gwt_…)")


class Receipt(BaseModel):
    """The signed erasure receipt, plus whether the subject had been erased already."""

    model_config = ConfigDict(extra="allow")

    already_erased: bool


def _export(g: Guardian, ref: str) -> bytes:
    with workdir() as d:
        out = d / "export.zip"
        usecases.export_subject(g, ref, out)
        return out.read_bytes()


def _zip(data: bytes) -> Response:
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="guardian-export.zip"'},
    )


@router.post(
    "/v1/subjects/{ref}/export",
    response_class=Response,
    summary="Export a subject's data (subject, voice or consent id)",
    description="Needs `rights`.",
    responses={**_ZIP, **_ERRORS},
)
async def export(
    g: GuardianDep, key: Annotated[ApiKeyInfo, Depends(require(Scope.RIGHTS))], ref: str
) -> Response:
    def run() -> bytes:
        with usecases.acting_as(key.id):
            usecases.record_api_access(g, key, "subject.export", target=ref)
            return _export(g, ref)

    return _zip(await run_in_threadpool(run))


@router.post(
    "/v1/subjects/{ref}/forget",
    response_model=Receipt,
    summary="Erase a subject (crypto-shredding); answers the signed receipt",
    description="Needs `rights`. Idempotent: a second call returns the first receipt.",
    responses=_ERRORS,
)
def forget(
    g: GuardianDep, key: Annotated[ApiKeyInfo, Depends(require(Scope.RIGHTS))], ref: str
) -> dict[str, Any]:
    with usecases.acting_as(key.id):
        return usecases.forget(
            g, ref, reason=f"erasure requested through {key.organization}"
        ).to_dict()


@router.post(
    "/v1/me/export",
    response_class=Response,
    summary="A subject exports their own data with their withdrawal token",
    responses={**_ZIP, **problem_responses(400, 404, 422, 429)},
)
async def my_export(request: Request, g: GuardianDep, body: TokenIn) -> Response:
    request.app.state.limiter.charge(f"ip:{client_address(request)}")

    def run() -> bytes:
        return _export(g, usecases.voice_for_token(g, body.token))

    return _zip(await run_in_threadpool(run))


@router.post(
    "/v1/me/forget",
    response_model=Receipt,
    summary="A subject erases their own data with their withdrawal token",
    responses=problem_responses(400, 404, 422, 429),
)
def my_forget(request: Request, g: GuardianDep, body: TokenIn) -> dict[str, Any]:
    request.app.state.limiter.charge(f"ip:{client_address(request)}")
    voice_id = usecases.voice_for_token(g, body.token)
    return usecases.forget(g, voice_id).to_dict()
