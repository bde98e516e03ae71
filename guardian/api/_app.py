"""The FastAPI application: lifespan, middleware, routers and error handlers."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from guardian import __version__
from guardian import app as usecases
from guardian.api._context import new_request_id, reset_request_id, set_request_id
from guardian.api._cpu import CpuSlots
from guardian.api._metrics import Metrics
from guardian.api._problems import Problem, install_handlers, unexpected_problem
from guardian.api._ratelimit import RateLimiter
from guardian.api.routes import (
    admin,
    consent,
    health,
    jobs,
    label,
    rights,
    softbinding,
    synthesize,
    verify,
)
from guardian.api.web import install_pages
from guardian.app import Guardian
from guardian.config import Settings, get_settings

log = logging.getLogger("guardian.api")

DESCRIPTION = """\
Guardian's HTTP API: the public verifier, the C2PA soft-binding resolution API, and
(with an API key) labeling, consent, training, synthesis and data-subject rights.

Every error is an RFC 9457 `application/problem+json` document carrying the request
id that is also in the `X-Request-ID` header.
"""


def create_app(settings: Settings | None = None, *, guardian: Guardian | None = None) -> FastAPI:
    """Build the app; the Guardian home is opened (and migrated) at startup."""
    settings = settings or get_settings()
    # guardian.app loads each use-case on first use; a server loads them all now, so
    # that no request waits for an import and a broken one fails the start.
    for name in usecases.__all__:
        getattr(usecases, name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        g = (
            guardian
            if guardian is not None
            else await run_in_threadpool(usecases.open_guardian, settings)
        )
        await run_in_threadpool(usecases.prepare, g)
        app.state.guardian = g
        try:
            yield
        finally:
            if guardian is None:
                g.engine.dispose()

    app = FastAPI(
        title="Guardian",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.cpu_slots = CpuSlots(settings.api_cpu_slots or os.cpu_count() or 1)
    app.state.limiter = RateLimiter(
        per_minute=settings.api_rate_per_minute, burst=settings.api_rate_burst
    )
    install_handlers(app)
    app.middleware("http")(_observe)
    for module in (health, verify, softbinding, label, consent, synthesize, jobs, rights, admin):
        app.include_router(module.router)
    install_pages(app)
    _document_problem(app)
    return app


async def _observe(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Request id, access log line and metrics for every request."""
    rid = new_request_id(request.headers.get("x-request-id"))
    token = set_request_id(rid)
    start = time.perf_counter()
    try:
        try:
            response = await call_next(request)
        except Exception as e:  # the top level: nothing unexpected reaches the client
            response = unexpected_problem(e)
        elapsed = time.perf_counter() - start
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics: Metrics = request.app.state.metrics
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(elapsed)
        response.headers["X-Request-ID"] = rid
        log.info(
            "%s %s -> %d in %.0f ms", request.method, route, response.status_code, elapsed * 1e3
        )
        return response
    finally:
        reset_request_id(token)


def _document_problem(app: FastAPI) -> None:
    """Put the Problem schema into OpenAPI, where the routes' error responses refer to it."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["create_app"]
