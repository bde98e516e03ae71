"""The C2PA soft-binding resolution API and the deployment's trust anchors.

Paths, parameters and response shapes follow the C2PA specification's Soft Binding
Resolution API (``/matches/byBinding``, ``/matches/byContent``,
``/manifests/{manifestId}``, ``/services/supportedAlgorithms``) under ``/v1``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import CpuDep, GuardianDep, PublicCaller, SettingsDep, audit_access
from guardian.api._problems import problem_responses
from guardian.api._upload import read_upload, upload_body

router = APIRouter(tags=["soft-binding resolution"])


class AlgEntry(BaseModel):
    alg: str


class SoftBindingAlgList(BaseModel):
    """``c2pa.softBindingAlgList``."""

    watermarks: list[AlgEntry]
    fingerprints: list[AlgEntry]


class SoftBindingMatch(BaseModel):
    # Field names as the specification spells them.
    manifestId: str
    similarityScore: int = Field(ge=0, le=100)


class SoftBindingQueryResult(BaseModel):
    """``c2pa.softBindingQueryResult``."""

    matches: list[SoftBindingMatch]


MaxResults = Annotated[
    int, Query(alias="maxResults", ge=1, le=100, description="Most manifest ids to return")
]


def _result(matches: list[usecases.Match]) -> SoftBindingQueryResult:
    return SoftBindingQueryResult(
        matches=[
            SoftBindingMatch(manifestId=m.manifest_id, similarityScore=m.similarity)
            for m in matches
        ]
    )


@router.get(
    "/v1/services/supportedAlgorithms",
    response_model=SoftBindingAlgList,
    summary="Soft-binding algorithms this service resolves",
)
async def supported_algorithms() -> SoftBindingAlgList:
    return SoftBindingAlgList.model_validate(usecases.supported_algorithms())


@router.get(
    "/v1/matches/byBinding",
    response_model=SoftBindingQueryResult,
    summary="Manifest ids for a watermark payload or a fingerprint",
    description=(
        f"`alg` is `{usecases.WATERMARK_ALG}` (value: the 2-byte payload) or "
        f"`{usecases.FINGERPRINT_ALG}` (value: the fingerprint), base64-encoded.\n\n"
        "```\ncurl 'http://localhost:8000/v1/matches/byBinding?"
        f"alg={usecases.WATERMARK_ALG}&value=pBw='\n```"
    ),
    responses=problem_responses(400, 401, 422, 429),
)
def by_binding(
    g: GuardianDep,
    caller: PublicCaller,
    alg: Annotated[str, Query(min_length=1, max_length=100, description="Algorithm name")],
    value: Annotated[str, Query(min_length=1, max_length=65536, description="Base64 value")],
    max_results: MaxResults = 10,
) -> SoftBindingQueryResult:
    found = usecases.match_by_binding(g, alg=alg, value=value, max_results=max_results)
    if caller is not None:
        audit_access(g, caller, "matches.byBinding", None)
    return _result(found)


@router.post(
    "/v1/matches/byContent",
    response_model=SoftBindingQueryResult,
    summary="Manifest ids for an uploaded clip",
    openapi_extra=upload_body(),
    responses=problem_responses(400, 401, 413, 415, 422, 429),
)
async def by_content(
    request: Request,
    g: GuardianDep,
    settings: SettingsDep,
    caller: PublicCaller,
    cpu: CpuDep,
    max_results: MaxResults = 10,
) -> SoftBindingQueryResult:
    upload = await read_upload(request, limit=settings.api_max_upload_bytes)
    found = await cpu.run(usecases.match_by_content, g, upload.data, max_results=max_results)
    if caller is not None:
        await run_in_threadpool(audit_access, g, caller, "matches.byContent", None)
    return _result(found)


@router.get(
    "/v1/manifests/{manifest_id}",
    response_class=Response,
    summary="The C2PA manifest store of a labeled clip",
    responses={
        200: {
            "content": {"application/c2pa": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The manifest store",
        },
        **problem_responses(401, 404, 429),
    },
)
def manifest(g: GuardianDep, caller: PublicCaller, manifest_id: str) -> Response:
    store = usecases.manifest_store(g, manifest_id)
    if caller is not None:
        audit_access(g, caller, "manifests.get", manifest_id)
    return Response(store, media_type="application/c2pa")


@router.get(
    "/v1/trust/anchors.pem",
    response_class=Response,
    tags=["trust"],
    summary="The deployment's root certificates (current and retired), PEM",
    responses={
        200: {
            "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
            "description": "Root certificates",
        }
    },
)
def anchors(g: GuardianDep) -> Response:
    return Response(usecases.trust_anchors(g), media_type="application/x-pem-file")
