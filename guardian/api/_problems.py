"""RFC 9457 problem details for every error the API returns.

Every error, whether a :class:`GuardianError` from a use-case, a request that fails
validation, an unknown route or an unexpected exception, leaves as
``application/problem+json`` with the request id. Details are scrubbed of file-system
paths; an unexpected exception says only that the request failed (the traceback goes to
the server log with the same request id).
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from guardian.api._context import current_request_id
from guardian.errors import AuthenticationError, GuardianError, RateLimitedError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("guardian.api")

# Absolute paths (POSIX or Windows) anywhere in a message; only the last part is kept.
_PATH = re.compile(r"(?:[A-Za-z]:\\|/)(?:[^\s/\\:'\"]+[/\\])+(?=[^\s/\\]*)")


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:guardian:problem:not-audio",
                    "title": "Unsupported Media Type",
                    "status": 415,
                    "detail": "upload: not an audio file (unrecognised format)",
                    "request_id": "5c0f7a1e2b3d4c5e",
                }
            ]
        },
    )

    type: str = Field(default="about:blank", description="URI reference naming the problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    request_id: str | None = None


def scrub(text: str) -> str:
    """Drop directory parts of any path in ``text`` (file names stay: they help)."""
    return _PATH.sub("", text)


def _slug(name: str) -> str:
    name = name.removesuffix("Error").rstrip("_")
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower() or "error"


def problem_response(
    status: int,
    *,
    detail: str | None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(
        type=type_,
        title=HTTPStatus(status).phrase,
        status=status,
        detail=scrub(detail) if detail else None,
        request_id=current_request_id(),
        **extra,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def guardian_problem(error: GuardianError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="guardian"'
    if isinstance(error, RateLimitedError):
        headers["Retry-After"] = str(error.retry_after)
    status = error.http_status
    detail = error.diagnostics() if status < 500 else _server_detail(error)
    return problem_response(
        status,
        detail=detail,
        type_=f"urn:guardian:problem:{_slug(type(error).__name__)}",
        headers=headers,
    )


def _server_detail(error: GuardianError) -> str:
    # A server-side GuardianError (configuration, keys, policies) is the operator's to
    # fix; the client learns only its kind, the log has the rest.
    log.error("request %s failed: %s", current_request_id(), error.diagnostics())
    return f"the server could not complete the request ({type(error).__name__})"


async def _on_guardian_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GuardianError)
    return guardian_problem(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()[:20]
    ]
    return problem_response(
        422,
        detail="the request is malformed",
        type_="urn:guardian:problem:invalid-request",
        errors=problems,
    )


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(
        exc.status_code,
        detail=str(exc.detail) if exc.detail else None,
        headers=dict(exc.headers or {}),
    )


def unexpected_problem(exc: BaseException) -> JSONResponse:
    log.error("request %s failed unexpectedly", current_request_id(), exc_info=exc)
    return problem_response(500, detail="internal error; quote the request id to the operator")


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    return unexpected_problem(exc)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers: the only place errors become responses."""
    app.add_exception_handler(GuardianError, _on_guardian_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems a route can return."""
    return {
        s: {
            "description": HTTPStatus(s).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "guardian_problem",
    "install_handlers",
    "problem_responses",
    "scrub",
    "unexpected_problem",
]
