"""The public verify page (``/``) and the consent page (``/consent/{link}``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import CpuDep, GuardianDep, MetricsDep, SettingsDep, client_address
from guardian.api._upload import read_upload
from guardian.api.web._render import (
    ORIGINS,
    VERDICTS,
    VOICE_STATUS,
    check_results,
    error_page,
    page,
    words,
)
from guardian.api.web._security import CSRF_FIELD, check_csrf
from guardian.app import EnrollResult
from guardian.errors import (
    AuthenticationError,
    EnrollmentRejectedError,
    GuardianError,
    UsageError,
)

router = APIRouter(include_in_schema=False)


@router.get("/")
def verify_form(request: Request, settings: SettingsDep) -> Response:
    return page(request, "verify.html", {"limit_mb": settings.api_max_upload_bytes // 2**20})


@router.post("/verify")
async def verify_page(
    request: Request, g: GuardianDep, settings: SettingsDep, metrics: MetricsDep, cpu: CpuDep
) -> Response:
    """The form's answer, rendered here, so it works without JavaScript."""
    limit_mb = settings.api_max_upload_bytes // 2**20
    try:
        if settings.api_require_key_for_verify:
            # The page has no API key to send: a deployment that closed the public
            # verifier closes the page too, rather than leaving a way around it.
            raise AuthenticationError(
                "this deployment verifies only for API key holders (POST /v1/verify)"
            )
        request.app.state.limiter.charge(f"ip:{client_address(request)}")
        upload = await read_upload(request, limit=settings.api_max_upload_bytes)
        result = await cpu.run(usecases.verify_bytes, g, upload.data, name="upload")
        wave = await run_in_threadpool(usecases.waveform, g, upload.data)
    except GuardianError as e:
        return page(
            request,
            "verify.html",
            {"limit_mb": limit_mb, "error": e.diagnostics()},
            status=e.http_status,
        )
    metrics.verdicts.labels(result.verdict.value).inc()
    report = result.report()
    badge, meaning = VERDICTS[report.verdict]
    return page(
        request,
        "verify.html",
        {
            "limit_mb": limit_mb,
            "report": report,
            "badge": badge,
            "meaning": meaning,
            "ai_generated": report.verdict in ("verified", "traced"),
            "voice_status": VOICE_STATUS.get(report.voice_status or ""),
            "origin": ORIGINS.get(report.origin or ""),
            "wave": _wave_svg(wave, report.watermark.segments),
        },
    )


def _wave_svg(wave: usecases.Waveform, segments: list[list[float]]) -> dict[str, Any]:
    """Bars and highlighted stretches in SVG user units (width 1000, height 100)."""
    n = max(len(wave.peaks), 1)
    step = 1000 / n
    bars = [
        {
            "x": round(i * step, 2),
            "w": round(step * 0.8, 2),
            "y": round(50 - p * 48, 2),
            "h": round(max(p * 96, 1), 2),
        }
        for i, p in enumerate(wave.peaks)
    ]
    span = wave.duration_s or 1.0
    marks = [
        {
            "x": round(1000 * max(0.0, a) / span, 2),
            "w": round(1000 * max(0.0, min(b, span) - max(0.0, a)) / span, 2),
            "start": a,
            "end": b,
        }
        for a, b in segments
    ]
    return {"bars": bars, "marks": marks, "duration": wave.duration_s}


# --- consent --------------------------------------------------------------------------------


@router.get("/consent/{link}")
def consent_page(request: Request, g: GuardianDep, link: str) -> Response:
    request.app.state.limiter.charge(f"ip:{client_address(request)}")
    try:
        view = usecases.open_invitation(g, link)
    except GuardianError as e:
        return error_page(request, e)
    return page(request, "consent.html", {"invite": view})


@router.post("/consent/{link}/enroll")
async def consent_enroll(
    request: Request, g: GuardianDep, settings: SettingsDep, link: str
) -> JSONResponse:
    """The recordings from the consent page; answers each check's result in words."""
    request.app.state.limiter.charge(f"ip:{client_address(request)}")
    try:
        upload = await read_upload(
            request, limit=settings.api_max_upload_bytes, file_field="consent"
        )
        check_csrf(request, upload.fields.get(CSRF_FIELD))
        samples = upload.files.get("samples", [])
        if not samples:
            raise UsageError("no sentence recordings arrived; record each sentence")
        result: EnrollResult = await run_in_threadpool(
            lambda: usecases.enroll_invitation(g, link, consent=upload.data, samples=samples)
        )
        record = await run_in_threadpool(usecases.show_consent, g, result.voice_id)
    except EnrollmentRejectedError as e:
        return JSONResponse(
            {"accepted": False, "checks": check_results(e.kinds), "problems": e.problems},
            status_code=422,
        )
    except GuardianError as e:
        return JSONResponse(
            {"accepted": False, "checks": [], "problems": [words(e)]},
            status_code=min(e.http_status, 500),
        )
    return JSONResponse(
        {
            "accepted": True,
            "checks": check_results(None),
            "voice_id": result.voice_id,
            "consent_id": result.consent_id,
            "withdraw_token": result.withdraw_token,
            "record": record.record.to_dict(),
        },
        status_code=201,
    )


__all__ = ["router"]
