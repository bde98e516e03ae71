"""Consent: challenges, enrollment, showing and revoking consent, self-service withdrawal."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from guardian import app as usecases
from guardian.api._deps import GuardianDep, SettingsDep, client_address, require
from guardian.api._files import workdir, write
from guardian.api._problems import problem_responses
from guardian.api._upload import read_upload
from guardian.app import ApiKeyInfo, EnrollRequest, Scope
from guardian.errors import PermissionDeniedError, UsageError

router = APIRouter(tags=["consent"])
_ERRORS = problem_responses(400, 401, 403, 404, 422, 429)


class ChallengeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Alex Morgan"}]}
    )

    name: str = Field(min_length=1, max_length=120, description="The speaker's name")
    locale: str = Field(default="en-US", max_length=16)


class TokenIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"token": "gwt_3kq7v2m4x8p1r6t9"}]}
    )

    token: str = Field(min_length=1, max_length=80, description="The withdrawal token (gwt_…)")


class RevokeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "contract ended"}]}
    )

    reason: str = Field(default="revoked through the API", max_length=200)


class Document(BaseModel):
    """A JSON document whose fields are listed in the guide (docs/api.md)."""

    model_config = ConfigDict(extra="allow")


@router.post(
    "/v1/consent/challenges",
    response_model=Document,
    status_code=201,
    summary="Issue a consent challenge (statement with a one-time code)",
    description="Needs `enroll`. The organisation named in the statement is the key's.",
    responses=_ERRORS,
)
def challenge(
    g: GuardianDep, key: Annotated[ApiKeyInfo, Depends(require(Scope.ENROLL))], body: ChallengeIn
) -> dict[str, Any]:
    with usecases.acting_as(key.id):
        result = usecases.create_challenge(
            g, name=body.name, organization=key.organization, locale=body.locale
        )
    return result.to_dict()


class InvitationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Alex Morgan", "purposes": ["audiobook"], "expires": "2027-06-30"}
            ]
        },
    )

    name: str = Field(min_length=1, max_length=120, description="The speaker's name")
    purposes: list[str] = Field(min_length=1, max_length=20)
    requesters: list[str] = Field(default_factory=list, max_length=20)
    expires: str | None = Field(default=None, max_length=40, description="Consent expiry")
    sentences: list[str] = Field(
        default_factory=list, max_length=20, description="Sentences to read (default: 4 random)"
    )
    valid_hours: float = Field(default=72, gt=0, le=24 * 14, description="Link lifetime")


@router.post(
    "/v1/consent/invitations",
    response_model=Document,
    status_code=201,
    summary="Invite a voice owner to the consent page (a single-use, expiring link)",
    description=(
        "Needs `enroll`. The answer's `url` opens the consent page, where the person reads "
        "the statement and the sentences in the browser; the purposes, requesters and "
        "expiry are fixed here. The link is shown once and works until it expires or is "
        "used. The organisation is the key's."
    ),
    responses=_ERRORS,
)
def invitation(
    request: Request,
    g: GuardianDep,
    key: Annotated[ApiKeyInfo, Depends(require(Scope.ENROLL))],
    body: InvitationIn,
) -> dict[str, Any]:
    with usecases.acting_as(key.id):
        result = usecases.create_invitation(
            g,
            name=body.name,
            organization=key.organization,
            purposes=body.purposes,
            requesters=body.requesters,
            consent_expires=usecases.parse_when(body.expires),
            sentences=body.sentences,
            ttl=dt.timedelta(hours=body.valid_hours),
        )
    return {**result.to_dict(), "url": str(request.base_url).rstrip("/") + result.path}


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@router.post(
    "/v1/enrollments",
    response_model=Document,
    status_code=201,
    summary="Enroll a voice: the spoken consent plus samples (multipart)",
    description=(
        "Needs `enroll`. Multipart fields: `challenge_id`, `purposes` (comma-separated), "
        "optional `expires` (YYYY-MM-DD) and `transcripts` (one line per sample); files: "
        "`consent` (one) and `samples` (repeat). The answer holds the withdrawal token, "
        "shown once."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["challenge_id", "purposes", "consent", "samples"],
                        "properties": {
                            "challenge_id": {"type": "string", "maxLength": 40},
                            "purposes": {"type": "string", "maxLength": 400},
                            "expires": {"type": "string", "maxLength": 40},
                            "transcripts": {"type": "string", "maxLength": 20000},
                            "consent": {"type": "string", "format": "binary"},
                            "samples": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                        },
                    }
                }
            },
        }
    },
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429),
)
async def enrollment(
    request: Request,
    g: GuardianDep,
    settings: SettingsDep,
    key: Annotated[ApiKeyInfo, Depends(require(Scope.ENROLL))],
) -> dict[str, Any]:
    upload = await read_upload(request, limit=settings.api_max_upload_bytes, file_field="consent")
    samples = upload.files.get("samples", [])
    if not samples:
        raise UsageError("the multipart body has no 'samples' file parts")
    challenge_id = upload.fields.get("challenge_id", "")
    if not challenge_id or len(challenge_id) > 40:
        raise UsageError("challenge_id is required")
    purposes = _list(upload.fields.get("purposes"))
    expires = usecases.parse_when(upload.fields.get("expires"))
    transcripts = tuple(
        line.strip() for line in upload.fields.get("transcripts", "").splitlines() if line.strip()
    )

    def run() -> dict[str, Any]:
        with workdir() as d, usecases.acting_as(key.id):
            req = EnrollRequest(
                challenge_id=challenge_id,
                consent=write(d, "consent", upload.data),
                samples=tuple(write(d, f"sample-{i:03d}", b) for i, b in enumerate(samples)),
                purposes=purposes,
                expires=expires,
                transcripts=transcripts,
            )
            return usecases.enroll(g, req).to_dict()

    return await run_in_threadpool(run)


@router.get(
    "/v1/voices/{voice_id}/consent",
    response_model=Document,
    summary="A voice's consent record and status",
    description="Needs `enroll` or `rights`.",
    responses=_ERRORS,
)
def show(
    g: GuardianDep,
    key: Annotated[ApiKeyInfo, Depends(require(Scope.RIGHTS, any_scope=True))],
    voice_id: str,
) -> dict[str, Any]:
    if not (key.allows(Scope.ENROLL) or key.allows(Scope.RIGHTS)):
        raise PermissionDeniedError("this API key lacks the 'enroll' and 'rights' scopes")
    with usecases.acting_as(key.id):
        view = usecases.show_consent(g, voice_id)
        usecases.record_api_access(g, key, "consent.show", target=voice_id)
    return view.to_dict()


@router.post(
    "/v1/voices/{voice_id}/revoke",
    response_model=Document,
    summary="Revoke a voice's consent (every later use is denied)",
    description="Needs `rights`.",
    responses=_ERRORS,
)
def revoke(
    g: GuardianDep,
    key: Annotated[ApiKeyInfo, Depends(require(Scope.RIGHTS))],
    voice_id: str,
    body: RevokeIn | None = None,
) -> dict[str, Any]:
    reason = body.reason if body else "revoked through the API"
    with usecases.acting_as(key.id):
        return usecases.revoke_consent(g, voice_id, reason=reason).to_dict()


@router.post(
    "/v1/consent/withdraw",
    response_model=Document,
    summary="Withdraw consent with the subject's withdrawal token (no API key)",
    responses=problem_responses(400, 404, 422, 429),
)
def withdraw(request: Request, g: GuardianDep, body: TokenIn) -> dict[str, Any]:
    request.app.state.limiter.charge(f"ip:{client_address(request)}")
    return usecases.withdraw_consent(g, body.token).to_dict()
