"""Per-request context: the request id, available to handlers and log records."""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar, Token

_REQUEST_ID: ContextVar[str | None] = ContextVar("guardian_request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


def new_request_id(offered: str | None) -> str:
    """The client's ``X-Request-ID`` when it is sane, else a fresh random one."""
    if offered and _SANE_ID.match(offered):
        return offered
    return secrets.token_hex(8)


def set_request_id(value: str | None) -> Token[str | None]:
    return _REQUEST_ID.set(value)


def reset_request_id(token: Token[str | None]) -> None:
    _REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _REQUEST_ID.get() or "-"
        return True


__all__ = [
    "RequestIdFilter",
    "current_request_id",
    "new_request_id",
    "reset_request_id",
    "set_request_id",
]
