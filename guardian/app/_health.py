"""Use-case: is this Guardian ready to serve (database, keys, watermark model)?"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from guardian.app._context import Guardian
from guardian.errors import GuardianError
from guardian.store import Job, JobStatus


@dataclass(frozen=True)
class Readiness:
    database: bool
    keys: bool
    watermark_model: bool
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.database and self.keys and self.watermark_model

    def to_dict(self) -> dict[str, Any]:
        return {
            "ready": bool(self),
            "database": self.database,
            "keys": self.keys,
            "watermark_model": self.watermark_model,
            "problems": list(self.problems),
        }


SYNTHETIC_CONSENT_WARNING = (
    "allow_synthetic_consent is on: consent read by a speech synthesiser is enrolled "
    "(for demos and tests only)"
)


def prepare(g: Guardian) -> None:
    """Create the signing identity if needed and load the watermark detector, so that the
    first request does not pay for either.

    The detector is what ``POST /v1/verify`` runs, on ONNX Runtime; the torch model that
    embeds loads on the first label or synthesis, so a verifier never loads torch.
    """
    g.ensure_keys()
    _ = g.detector


def check_readiness(g: Guardian) -> Readiness:
    problems: list[str] = []
    database = keys = False
    try:
        with g.reading() as s:
            s.connection().execute(text("SELECT 1"))
            database = True
            keys = g.keys.is_initialized(s)
            if not keys:
                problems.append("the signing identity is not initialised")
    except SQLAlchemyError as e:
        problems.append(f"database unreachable ({type(e).__name__})")
    model = g.detector_loaded
    if not model:
        try:
            _ = g.detector
            model = True
        except GuardianError as e:
            problems.append(f"watermark model not loaded ({type(e).__name__})")
    if g.settings.allow_synthetic_consent:
        problems.append(SYNTHETIC_CONSENT_WARNING)
    return Readiness(database, keys, model, problems)


def job_counts(g: Guardian) -> dict[str, int]:
    """How many jobs are in each state."""
    with g.reading() as s:
        return dict(Counter(JobStatus(j).value for j in s.exec(select(Job.status)).all()))


__all__ = ["Readiness", "check_readiness", "job_counts", "prepare"]
