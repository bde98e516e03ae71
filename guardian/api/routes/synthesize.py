"""Synthesis: labeled audio in one piece, or streamed chunk by chunk."""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import GuardianDep, require
from guardian.api._files import workdir
from guardian.api._problems import problem_responses
from guardian.app import ApiKeyInfo, Guardian, LabelResult, Scope, SynthesisRequest
from guardian.errors import GuardianError

router = APIRouter(tags=["synthesize"])
log = logging.getLogger("guardian.api")
_MEDIA = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}
_BOUNDARY = "guardian-chunk"


class SynthesizeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "Chapter one.", "purpose": "audiobook", "format": "wav"}]
        },
    )

    text: str = Field(min_length=1, max_length=5000)
    purpose: str = Field(min_length=1, max_length=200)
    format: Literal["wav", "flac", "mp3"] = "wav"
    stream: bool = Field(
        default=False,
        description="Send each sentence as its own labeled clip as soon as it is ready "
        f"(multipart/mixed, boundary `{_BOUNDARY}`).",
    )


def _part(data: bytes, media: str, label: LabelResult) -> bytes:
    head = (
        f"--{_BOUNDARY}\r\nContent-Type: {media}\r\n"
        f"X-Guardian-Label-Id: {label.label_id}\r\n"
        f"X-Guardian-Manifest-Id: {label.manifest_id}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data + b"\r\n"


def _stream(g: Guardian, req: SynthesisRequest, key_id: str, media: str) -> queue.Queue[object]:
    """Run the synthesis in a thread; chunks (or the error) arrive on the queue."""
    out: queue.Queue[object] = queue.Queue()

    def on_chunk(label: LabelResult) -> None:
        out.put(_part(label.output.read_bytes(), media, label))
        label.output.unlink(missing_ok=True)  # the bytes are on their way to the client

    def run() -> None:
        try:
            with usecases.acting_as(key_id):
                usecases.synthesize(g, req, stream=True, on_chunk=on_chunk)
        except GuardianError as e:
            out.put(e)
        finally:
            out.put(None)

    threading.Thread(target=run, name="guardian-synthesis", daemon=True).start()
    return out


@router.post(
    "/v1/voices/{voice_id}/synthesize",
    response_class=Response,
    summary="Speak text in an enrolled voice; every clip is watermarked and signed",
    description="Needs `synthesize`. The requester in the policy decision is the key's "
    "organisation.",
    responses={
        200: {
            "description": "The labeled clip (or, with `stream`, multipart/mixed chunks)",
            "content": {
                **{m: {"schema": {"type": "string", "format": "binary"}} for m in _MEDIA.values()},
                "multipart/mixed": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(400, 401, 403, 404, 422, 429),
    },
)
async def synthesize(
    g: GuardianDep,
    key: Annotated[ApiKeyInfo, Depends(require(Scope.SYNTHESIZE))],
    voice_id: str,
    body: SynthesizeIn,
) -> Response:
    media = _MEDIA[body.format]
    if not body.stream:

        def run() -> tuple[bytes, LabelResult]:
            with workdir() as d, usecases.acting_as(key.id):
                req = SynthesisRequest(
                    voice_id,
                    body.text,
                    d / f"speech.{body.format}",
                    body.purpose,
                    key.organization,
                )
                label = usecases.synthesize(g, req).labels[0]
                return label.output.read_bytes(), label

        data, label = await run_in_threadpool(run)
        headers = {
            "X-Guardian-Label-Id": label.label_id,
            "X-Guardian-Manifest-Id": label.manifest_id,
        }
        return Response(data, media_type=media, headers=headers)

    # The stream outlives this function: its directory goes when the stream ends.
    d = Path(tempfile.mkdtemp(prefix="guardian-api-"))
    req = SynthesisRequest(
        voice_id, body.text, d / f"speech.{body.format}", body.purpose, key.organization
    )
    chunks = _stream(g, req, key.id, media)
    first = await run_in_threadpool(chunks.get)
    if not isinstance(first, bytes):
        shutil.rmtree(d, ignore_errors=True)
        if isinstance(first, GuardianError):
            raise first
        return Response(status_code=204)

    async def parts() -> AsyncIterator[bytes]:
        item: object = first
        try:
            while isinstance(item, bytes):
                yield item
                item = await run_in_threadpool(chunks.get)
            if isinstance(item, GuardianError):
                # The status line has gone: the stream ends early, the log says why.
                log.warning("synthesis stream stopped: %s", item.diagnostics())
            yield f"--{_BOUNDARY}--\r\n".encode()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    return StreamingResponse(parts(), media_type=f"multipart/mixed; boundary={_BOUNDARY}")
