"""What the web pages add to the API's defences: headers, CSRF, sessions, log redaction.

- Every page and static file leaves with a strict Content-Security-Policy (scripts,
  styles and media from this origin only, no inline code, no framing),
  ``Referrer-Policy: no-referrer`` and ``X-Content-Type-Options: nosniff``.
- State-changing forms carry a CSRF token that must equal a random cookie
  (double submit), compared in constant time; the cookies are ``SameSite=Strict``.
- The self-service session is a signed cookie holding an expiry and the keyed MAC of
  the withdrawal token (the value the database keeps), never the token.
- Consent links are secrets in a URL path: access-log lines have them replaced.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response

from guardian import app as usecases
from guardian.app import Guardian
from guardian.errors import PermissionDeniedError

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_PREFIXES = ("/consent/", "/me", "/static/", "/verify")
CSRF_COOKIE = "guardian_csrf"
CSRF_FIELD = "csrf"
SESSION_COOKIE = "guardian_me"
SESSION_SECONDS = 15 * 60


def is_page(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


async def page_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Security headers on every page (the API's JSON keeps its own, looser, docs UI)."""
    response = await call_next(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if is_page(request.url.path):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
    return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


# --- CSRF ---------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The browser's CSRF token (the cookie's value), or a new one to set."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if 20 <= len(current) <= 100 else secrets.token_urlsafe(32)


def set_csrf(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


def check_csrf(request: Request, offered: str | None) -> None:
    """Refuse a form whose token is missing or differs from the cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not offered or not hmac.compare_digest(cookie, offered):
        raise PermissionDeniedError(
            "the form expired or came from another site; reload the page and try again"
        )


# --- the self-service session -------------------------------------------------------------


@dataclass(frozen=True)
class MeSession:
    key: str
    """Keyed MAC of the withdrawal token."""
    expires: int


def open_session(g: Guardian, request: Request, response: Response, key: str) -> None:
    expires = int(time.time()) + SESSION_SECONDS
    payload = f"{expires}.{key}"
    response.set_cookie(
        SESSION_COOKIE,
        f"{payload}.{usecases.sign_session(g, payload)}",
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/me",
    )


def read_session(g: Guardian, request: Request) -> MeSession | None:
    """The session this browser holds, if it is well-formed, signed here and not expired."""
    parts = request.cookies.get(SESSION_COOKIE, "").split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    expires, key, signature = int(parts[0]), parts[1], parts[2]
    if not usecases.session_valid(g, f"{parts[0]}.{key}", signature):
        return None
    if expires <= time.time():
        return None
    return MeSession(key, expires)


def close_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/me", httponly=True, samesite="strict", secure=_secure(request)
    )


# --- logs ---------------------------------------------------------------------------------

_LINK = re.compile(r"/consent/[^/\s?\"]+")
REDACTED = "/consent/[link]"


def redact(text: str) -> str:
    return _LINK.sub(REDACTED, text)


class RedactConsentLinks(logging.Filter):
    """Replace consent links in log records (uvicorn's access log prints request paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    # A logger's filters see only the records logged on it, not its children's: name
    # each logger that may print a request path.
    for name in ("uvicorn.access", "uvicorn.error", "guardian.api"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactConsentLinks) for f in logger.filters):
            logger.addFilter(RedactConsentLinks())


__all__ = [
    "CSP",
    "CSRF_FIELD",
    "MeSession",
    "check_csrf",
    "close_session",
    "csrf_token",
    "install_log_redaction",
    "is_page",
    "open_session",
    "page_headers",
    "read_session",
    "redact",
    "set_csrf",
]
