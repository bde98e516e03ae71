"""The voice owner's self-service page (``/me``), unlocked by the withdrawal token.

The token arrives once, in a POST body; the browser then holds a signed session cookie
(``/me`` only, HttpOnly, SameSite=Strict) and every action is a POST form with a CSRF
token, so neither the token nor the session ever appears in a URL.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import GuardianDep, client_address
from guardian.api._files import workdir
from guardian.api.web._render import VOICE_STATUS, error_page, page, words
from guardian.api.web._security import (
    check_csrf,
    close_session,
    open_session,
    read_session,
)
from guardian.app import Guardian
from guardian.errors import GuardianError, NotFoundError

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form(max_length=200)]
FormChoice = Annotated[str, Form(max_length=200)]


def _login(request: Request, message: str | None = None, status: int = 200) -> Response:
    return page(request, "me_login.html", {"message": message}, status=status)


def _overview(request: Request, g: Guardian, key: str, *, notice: str | None = None) -> Response:
    view = usecases.self_service_view(g, key)
    return page(
        request,
        "me.html",
        {
            "view": view,
            "status_words": VOICE_STATUS.get(view.status.value, view.status.value),
            "budget_percent": round(100 * view.budget_fraction),
            "notice": notice,
        },
    )


@router.get("/me")
def me(request: Request, g: GuardianDep) -> Response:
    session = read_session(g, request)
    if session is None:
        return _login(request)
    try:
        return _overview(request, g, session.key)
    except NotFoundError:
        return _login(request, "Your session ended. Enter your withdrawal token again.")


@router.post("/me")
def me_login(request: Request, g: GuardianDep, token: FormText, csrf: FormText) -> Response:
    request.app.state.limiter.charge(f"ip:{client_address(request)}")
    try:
        check_csrf(request, csrf)
        key = usecases.session_key(g, token)
    except GuardianError as e:
        return _login(request, words(e), status=min(e.http_status, 500))
    response = RedirectResponse("/me", status_code=303)
    open_session(g, request, response, key)
    return response


def _session_key(request: Request, g: Guardian, csrf: str) -> str:
    check_csrf(request, csrf)
    session = read_session(g, request)
    if session is None:
        raise NotFoundError("your session ended; enter your withdrawal token again")
    return session.key


@router.post("/me/withdraw")
def me_withdraw(request: Request, g: GuardianDep, csrf: FormText) -> Response:
    try:
        key = _session_key(request, g, csrf)
        usecases.withdraw_by_key(g, key)
        notice = "Your consent is withdrawn. No new use is allowed."
        return _overview(request, g, key, notice=notice)
    except GuardianError as e:
        return error_page(request, e, back="/me")


@router.post("/me/export")
async def me_export(request: Request, g: GuardianDep, csrf: FormText) -> Response:
    try:
        key = _session_key(request, g, csrf)

        def run() -> bytes:
            with workdir() as d:
                out = d / "export.zip"
                usecases.export_subject(g, usecases.voice_for_key(g, key), out)
                return out.read_bytes()

        data = await run_in_threadpool(run)
    except GuardianError as e:
        return error_page(request, e, back="/me")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="my-guardian-data.zip"'},
    )


@router.post("/me/erase")
def me_erase(
    request: Request, g: GuardianDep, csrf: FormText, confirm: FormChoice = ""
) -> Response:
    """Without ``confirm=erase`` this only asks; with it the subject is erased."""
    try:
        key = _session_key(request, g, csrf)
        if confirm != "erase":
            return page(request, "me_erase.html", {})
        result = usecases.forget_by_key(g, key)
    except GuardianError as e:
        return error_page(request, e, back="/me")
    receipt = json.dumps(result.receipt.to_dict(), indent=2, sort_keys=True)
    return page(request, "me_erased.html", {"receipt": receipt, "result": result})


@router.post("/me/receipt")
def me_receipt(request: Request, g: GuardianDep, csrf: FormText) -> Response:
    """The signed erasure receipt as a file (erasure is idempotent: the same receipt)."""
    try:
        key = _session_key(request, g, csrf)
        result = usecases.forget_by_key(g, key)
    except GuardianError as e:
        return error_page(request, e, back="/me")
    return Response(
        result.receipt.to_bytes(),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="erasure-receipt.json"'},
    )


@router.post("/me/logout")
def me_logout(request: Request, csrf: FormText) -> Response:
    try:
        check_csrf(request, csrf)
    except GuardianError as e:
        return error_page(request, e, back="/me")
    response = RedirectResponse("/me", status_code=303)
    close_session(request, response)
    return response


__all__ = ["router"]
