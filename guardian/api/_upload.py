"""Reading an uploaded clip: multipart ``file`` field or a raw ``audio/*`` body.

The body is streamed and counted; past the limit the request is refused with 413 and
the rest is never read, so no upload is held beyond the limit.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from guardian.errors import InputTooLargeError, NotAudioError, UsageError

# Room for multipart boundaries and part headers on top of the file itself.
_MULTIPART_SLACK = 64 * 1024
_RAW_TYPES = ("audio/", "application/octet-stream")


@dataclass(frozen=True)
class Upload:
    data: bytes
    fields: dict[str, str]
    files: dict[str, list[bytes]]


def upload_body(
    *, required_file: str = "file", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for a clip sent as multipart or as a raw audio body."""
    props: dict[str, Any] = {required_file: {"type": "string", "format": "binary"}}
    props.update(extra or {})
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": props, "required": [required_file]}
                },
                "audio/*": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputTooLargeError(f"the upload is {declared} bytes, over the {limit} byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise InputTooLargeError(f"the upload is over the {limit} byte limit")
    return bytes(body)


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


async def read_upload(request: Request, *, limit: int, file_field: str = "file") -> Upload:
    """The clip (and any other form fields) of a request, within ``limit`` bytes.

    Raises:
        InputTooLargeError: over the limit (413).
        NotAudioError: a body that is neither multipart nor ``audio/*`` (415).
        UsageError: malformed multipart, or no ``file`` part (400).
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype.startswith(_RAW_TYPES):
        data = await _read_limited(request, limit)
        return Upload(data, {}, {file_field: [data]})
    if ctype != "multipart/form-data":
        raise NotAudioError(
            f"send the clip as multipart/form-data (field {file_field!r}) or as an audio/* body"
        )
    body = await _read_limited(request, limit + _MULTIPART_SLACK)
    parser = MultiPartParser(request.headers, _once(body), max_files=64, max_fields=64)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise UsageError(f"malformed multipart body: {e.message}") from e
    fields: dict[str, str] = {}
    files: dict[str, list[bytes]] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.setdefault(name, []).append(await value.read())
            elif name == file_field:  # a client that sent the clip without a filename
                files.setdefault(name, []).append(value.encode("utf-8", "surrogateescape"))
            else:
                fields[name] = value
    finally:
        await form.close()
    if not files.get(file_field):
        raise UsageError(f"the multipart body has no {file_field!r} file part")
    for parts in files.values():
        if any(len(p) > limit for p in parts):
            raise InputTooLargeError(f"an uploaded file is over the {limit} byte limit")
    return Upload(files[file_field][0], fields, files)


__all__ = ["Upload", "read_upload", "upload_body"]
