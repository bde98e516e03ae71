"""Labeling any audio ("bring your own TTS")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import GuardianDep, SettingsDep, require
from guardian.api._files import workdir, write
from guardian.api._problems import problem_responses
from guardian.api._upload import read_upload, upload_body
from guardian.app import ApiKeyInfo, LabelRequest, Scope
from guardian.errors import UsageError

router = APIRouter(tags=["label"])
_MEDIA = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}
_FIELDS = {
    "format": {"type": "string", "enum": list(_MEDIA), "default": "wav"},
    "purpose": {"type": "string", "maxLength": 200},
}


def _field(fields: dict[str, str], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is not None and len(value) > limit:
        raise UsageError(f"{name} is longer than {limit} characters")
    return value or None


@router.post(
    "/v1/label",
    response_class=Response,
    summary="Watermark, sign and register a clip; answers the labeled audio",
    description=(
        "Needs the `label` scope. The labeled clip comes back in the requested `format`; "
        "its label and manifest ids are in `X-Guardian-Label-Id` and "
        "`X-Guardian-Manifest-Id`.\n\n```\ncurl -H 'Authorization: Bearer $KEY' "
        "-F file=@speech.wav -F purpose=podcast -o labeled.wav "
        "http://localhost:8000/v1/label\n```"
    ),
    openapi_extra=upload_body(extra=_FIELDS),
    responses={
        200: {
            "description": "The labeled clip",
            "content": {
                m: {"schema": {"type": "string", "format": "binary"}} for m in _MEDIA.values()
            },
        },
        **problem_responses(400, 401, 403, 409, 413, 415, 422, 429),
    },
)
async def label(
    request: Request,
    g: GuardianDep,
    settings: SettingsDep,
    key: Annotated[ApiKeyInfo, Depends(require(Scope.LABEL))],
) -> Response:
    upload = await read_upload(request, limit=settings.api_max_upload_bytes)
    fmt = upload.fields.get("format", "wav")
    if fmt not in _MEDIA:
        raise UsageError(f"format must be one of {', '.join(_MEDIA)}")
    purpose = _field(upload.fields, "purpose", 200)

    def run() -> tuple[bytes, usecases.LabelResult]:
        with workdir() as d, usecases.acting_as(key.id):
            req = LabelRequest(
                source=write(d, "upload", upload.data),
                output=d / f"labeled.{fmt}",
                purpose=purpose,
                requester=key.organization,
            )
            result = usecases.label_file(g, req)
            return result.output.read_bytes(), result

    data, result = await run_in_threadpool(run)
    return Response(
        data,
        media_type=_MEDIA[fmt],
        headers={
            "X-Guardian-Label-Id": result.label_id,
            "X-Guardian-Manifest-Id": result.manifest_id,
        },
    )
