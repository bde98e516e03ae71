"""Templates, and the words the pages use for verdicts, statuses and checks."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from guardian.api._context import current_request_id
from guardian.api._problems import scrub
from guardian.api.web._security import csrf_token, set_csrf
from guardian.errors import GuardianError

log = logging.getLogger("guardian.api")
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")

VERDICTS: dict[str, tuple[str, str]] = {
    "verified": ("Verified", "A valid manifest signed by this Guardian deployment."),
    "traced": (
        "Traced",
        "The manifest is missing, but the audio matches a clip in this deployment's registry.",
    ),
    "watermarked": (
        "Watermark only",
        "A Guardian watermark was heard, but no registered clip matches. This is weak "
        "evidence: anyone with the public detector could imitate a watermark.",
    ),
    "tampered": (
        "Tampered",
        "The provenance data is broken, forged, or signed by a revoked key.",
    ),
    "not_found": ("No Guardian provenance", "Nothing shows that this clip came from Guardian."),
}
VOICE_STATUS = {
    "active": "voice active (consent in force)",
    "revoked": "voice withdrawn (consent revoked)",
    "erased": "voice erased",
}
ORIGINS = {
    "synthesized": "made by Guardian's cloning engine from a consented voice",
    "imported": "speech from another tool, labeled by Guardian",
}

CHECKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("live", "Live recordings, not generated clips", ("c2pa-manifest", "guardian-audio")),
    ("quality", "Recording quality", ("quality", "channels", "total-speech")),
    ("statement", "Statement and one-time code heard", ("statement",)),
    ("speaker", "The same speaker in every recording", ("speaker",)),
)
ADVICE = {
    "live": "Record yourself live on this page; do not play back a recording.",
    "quality": "Record in a quiet room, close to the microphone, and read each sentence fully.",
    "statement": "Read the whole statement, including every word of the code, clearly.",
    "speaker": "The same person must read the statement and every sentence.",
}


def check_results(kinds: list[str] | None) -> list[dict[str, Any]]:
    """Each enrollment check with its outcome in words (``kinds`` None: all passed)."""
    out = []
    for key, title, prefixes in CHECKS:
        failed = [k for k in kinds or [] if k.startswith(prefixes)]
        out.append(
            {
                "key": key,
                "title": title,
                "passed": not failed,
                "words": "passed" if not failed else "not passed",
                "advice": ADVICE[key] if failed else None,
            }
        )
    known = tuple(p for _, _, ps in CHECKS for p in ps)
    if kinds and any(not k.startswith(known) for k in kinds):
        out.append(
            {
                "key": "other",
                "title": "Checks that could not run",
                "passed": False,
                "words": "not passed",
                "advice": "Try again later; if it keeps failing, tell the organisation.",
            }
        )
    return out


def page(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> Response:
    """Render a page with a CSRF token (the cookie is set when the browser has none)."""
    token = csrf_token(request)
    response = templates.TemplateResponse(
        request, name, {"csrf": token, **context}, status_code=status
    )
    set_csrf(request, response, token)
    return response


def words(error: GuardianError) -> str:
    """What a person is told about an error: the API's detail (paths scrubbed), or, for a
    server-side failure, only that it failed (the log has the rest, as for the API)."""
    if error.http_status < 500:
        return scrub(error.diagnostics())
    log.error("page request %s failed: %s", current_request_id(), error.diagnostics())
    return "The server could not do this. Try again later, or tell the operator."


def error_page(request: Request, error: GuardianError, *, back: str = "/") -> Response:
    """A GuardianError in words, with the status the API would give."""
    status = error.http_status if error.http_status < 500 else 500
    return page(request, "error.html", {"message": words(error), "back": back}, status=status)


def when(value: str | None) -> str:
    """An ISO 8601 UTC time as people read it: ``6 December 2026, 09:07 UTC``."""
    if not value:
        return ""
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return f"{t.day} {t:%B %Y, %H:%M} UTC"


templates.env.filters["when"] = when


__all__ = [
    "ORIGINS",
    "VERDICTS",
    "VOICE_STATUS",
    "check_results",
    "error_page",
    "page",
    "templates",
    "when",
    "words",
]
