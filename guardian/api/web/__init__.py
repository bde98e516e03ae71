"""Guardian's web pages, served by ``guardian serve`` beside the HTTP API.

- ``/``: verify a clip (works without JavaScript; with it, shows upload progress);
- ``/consent/{link}``: a voice owner reads the statement and the sentences in the
  browser and enrolls, on the terms of an operator's invitation;
- ``/me``: the voice owner's self-service page (withdraw, export, erase).

Server-rendered Jinja2 templates and a little plain JavaScript, all served from the
package (no CDN). Routes stay thin over :mod:`guardian.app`, like the API's.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from guardian.api.web import _me, _pages
from guardian.api.web._render import HERE
from guardian.api.web._security import install_log_redaction, page_headers, redact


def install_pages(app: FastAPI) -> None:
    """Add the pages, their static files, their headers and the log redaction."""
    install_log_redaction()
    app.middleware("http")(page_headers)
    app.include_router(_pages.router)
    app.include_router(_me.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


__all__ = ["install_pages", "redact"]
