"""Training as a job: submit (202 + Location), poll, cancel, retry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from guardian import app as usecases
from guardian.api._deps import GuardianDep, audit_access, require
from guardian.api._problems import problem_responses
from guardian.app import ApiKeyInfo, Scope

router = APIRouter(tags=["jobs"])
_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429)
TrainKey = Annotated[ApiKeyInfo, Depends(require(Scope.TRAIN))]


class TrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"epsilon": 8}]})

    epsilon: float = Field(default=8.0, gt=0, le=100, description="Privacy budget to spend")


class JobOut(BaseModel):
    id: str
    kind: str
    status: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    organization: str
    attempts: int
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None


def _scope_org(key: ApiKeyInfo) -> str | None:
    # An admin key sees every organisation's jobs; any other only its own.
    return None if Scope.ADMIN in key.scopes else key.organization


@router.post(
    "/v1/voices/{voice_id}/train",
    status_code=202,
    response_model=JobOut,
    summary="Train a voice's adapter with DP-SGD, as a job",
    description="Needs `train`. Answers 202 with `Location: /v1/jobs/{id}`; the policy "
    "decision (requester: the key's organisation) is made when the job runs.",
    responses=_ERRORS,
)
def train(g: GuardianDep, key: TrainKey, voice_id: str, body: TrainIn) -> JSONResponse:
    with usecases.acting_as(key.id):
        job = usecases.submit_train_job(
            g, voice_id, epsilon=body.epsilon, organization=key.organization, key_id=key.id
        )
    return JSONResponse(job.to_dict(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("/v1/jobs/{job_id}", response_model=JobOut, summary="A job", responses=_ERRORS)
def get(g: GuardianDep, key: TrainKey, job_id: str) -> dict[str, Any]:
    job = usecases.get_job(g, job_id, organization=_scope_org(key))
    audit_access(g, key, "jobs.get", job_id)
    return job.to_dict()


@router.post(
    "/v1/jobs/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a job (a running training stops after its current step)",
    responses=_ERRORS,
)
def cancel(g: GuardianDep, key: TrainKey, job_id: str) -> dict[str, Any]:
    with usecases.acting_as(key.id):
        return usecases.cancel_job(g, job_id, organization=_scope_org(key)).to_dict()


@router.post(
    "/v1/jobs/{job_id}/retry",
    response_model=JobOut,
    summary="Queue a failed or cancelled job again",
    responses=_ERRORS,
)
def retry(g: GuardianDep, key: TrainKey, job_id: str) -> dict[str, Any]:
    with usecases.acting_as(key.id):
        return usecases.retry_job(g, job_id, organization=_scope_org(key)).to_dict()
