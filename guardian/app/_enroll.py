"""Use-case: enroll a voice from a spoken consent recording and samples.

Order of work, so that a refused enrollment writes nothing to the vault:

1. check the arguments (usage errors: nothing is touched);
2. read and decode every file (unreadable input is logged, the challenge stays usable);
3. claim the challenge atomically (a second attempt, concurrent or later, finds it used);
4. run every check: not a Guardian clip, audio quality, the spoken statement and code,
   one speaker throughout;
5. refused: log the reasons and keep nothing. Accepted: in one transaction, encrypt the
   audio and embeddings into the subject's vault, sign the consent record, create the
   voice and log it.

Audio and embeddings stay in memory until they are sealed; nothing is written to disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import update
from sqlmodel import col, func, select

from guardian import __version__
from guardian.app._consent import (
    ChallengeSecret,
    _iso,
    check_id,
    load_subject_key,
)
from guardian.app._context import Guardian
from guardian.app._enroll_checks import CheckedInput, Findings, embedding_of, inspect_inputs
from guardian.app._label import TIME_FORMAT
from guardian.audio import decode_bytes, read_input_bytes
from guardian.consent import (
    RECORD_TYPE,
    SignedRecord,
    SpeakerCheck,
    SyntheticCheck,
    public_key_b64,
    sign_as_service,
    sign_as_subject,
)
from guardian.errors import (
    AudioError,
    ChallengeError,
    EnrollmentRejectedError,
    GuardianError,
    InputTooLargeError,
    UsageError,
)
from guardian.store import (
    AuditEntry,
    Challenge,
    Subject,
    SubjectStatus,
    Voice,
    VoiceStatus,
    as_utc,
    utcnow,
)
from guardian.vault import BlobKind, new_id

MAX_SAMPLES = 200
MAX_TEXT_CHARS = 1000
WITHDRAW_TOKEN_PREFIX = "gwt_"  # noqa: S105 - a prefix, not a secret
DEFAULT_MAX_EPSILON = 8.0
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_REQUESTER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$")


@dataclass(frozen=True)
class EnrollRequest:
    """``guardian enroll`` arguments."""

    challenge_id: str
    consent: Path
    samples: tuple[Path, ...]
    purposes: tuple[str, ...]
    requesters: tuple[str, ...] = ()
    expires: dt.datetime | None = None
    max_epsilon: float = DEFAULT_MAX_EPSILON
    subject_key: Path | None = None
    transcripts: tuple[str, ...] = ()
    """What each sample says, in order (needed to train an adapter); optional."""


@dataclass(frozen=True)
class EnrollResult:
    voice_id: str
    consent_id: str
    subject_id: str
    purposes: tuple[str, ...]
    requesters: tuple[str, ...]
    expires_at: dt.datetime | None
    max_epsilon: float
    speaker: SpeakerCheck
    statement_score: float
    synthetic: SyntheticCheck
    speech_s: float
    subject_signed: bool
    withdraw_token: str = field(repr=False)
    """The subject's self-service withdrawal token; shown once, never stored."""

    @property
    def synthetic_allowed(self) -> bool:
        """The reading sounded synthetic: only ``allow_synthetic_consent`` let it through."""
        return self.synthetic.synthetic

    def to_dict(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "consent_id": self.consent_id,
            "subject_id": self.subject_id,
            "purposes": list(self.purposes),
            "requesters": list(self.requesters),
            "expires_at": _iso(self.expires_at),
            "max_epsilon": self.max_epsilon,
            "speaker": {
                "threshold": self.speaker.threshold,
                "consent_score": round(self.speaker.consent_score, 4),
                "sample_scores": [round(x, 4) for x in self.speaker.sample_scores],
            },
            "statement_score": round(self.statement_score, 4),
            "synthetic_speech": _synthetic_evidence(self.synthetic),
            "speech_s": round(self.speech_s, 1),
            "subject_signed": self.subject_signed,
            "withdraw_token": self.withdraw_token,
        }


# --- 1. arguments --------------------------------------------------------------------------


def _check_request(req: EnrollRequest, now: dt.datetime) -> EnrollRequest:
    check_id(req.challenge_id, "chl")
    if not req.samples:
        raise UsageError("give at least one enrollment sample")
    if len(req.samples) > MAX_SAMPLES:
        raise UsageError(f"at most {MAX_SAMPLES} enrollment samples")
    purposes = tuple(dict.fromkeys(p.strip().lower() for p in req.purposes))
    if not purposes:
        raise UsageError("give at least one --purpose")
    for p in purposes:
        if not _SLUG_RE.match(p):
            raise UsageError(f"purpose {p!r} must be a slug such as 'audiobook' or 'ivr.support'")
    requesters = tuple(dict.fromkeys(" ".join(r.split()) for r in req.requesters))
    for r in requesters:
        if not _REQUESTER_RE.match(r):
            raise UsageError(f"requester {r!r} has characters outside letters, digits, ' ._@-'")
    if req.expires is not None and as_utc(req.expires) <= now:
        raise UsageError("--expires must be in the future")
    if not 0 < req.max_epsilon <= 100:
        raise UsageError("--max-epsilon must be in (0, 100]")
    transcripts = tuple(" ".join(t.split()) for t in req.transcripts)
    if transcripts and len(transcripts) != len(req.samples):
        raise UsageError(
            f"{len(transcripts)} transcripts for {len(req.samples)} samples: give one per sample"
        )
    if any(not 0 < len(t) <= MAX_TEXT_CHARS for t in transcripts):
        raise UsageError(f"each transcript must be 1-{MAX_TEXT_CHARS} characters")
    return EnrollRequest(
        req.challenge_id,
        req.consent,
        req.samples,
        purposes,
        requesters,
        as_utc(req.expires) if req.expires else None,
        req.max_epsilon,
        req.subject_key,
        transcripts,
    )


# --- 2. inputs -------------------------------------------------------------------------------


def _read_inputs(
    g: Guardian, req: EnrollRequest, recorded: Sequence[bytes] | None = None
) -> list[CheckedInput]:
    """Read the files of ``req``, or take ``recorded`` (the same files, in memory)."""
    files = [("consent recording", "consent recording", req.consent)]
    files += [
        (f"sample {i} ({p.name})", f"sample {i}", p) for i, p in enumerate(req.samples, start=1)
    ]
    items = []
    limit = g.settings.max_input_bytes
    for n, (label, audit_label, path) in enumerate(files):
        try:
            if recorded is None:
                data = read_input_bytes(path, max_bytes=limit)
            elif len(recorded[n]) > limit:
                raise InputTooLargeError(f"{len(recorded[n])} bytes is over the {limit} limit")
            else:
                data = recorded[n]
            audio = decode_bytes(data, name=path.name, max_seconds=g.settings.max_audio_seconds)
        except AudioError as e:
            _log_refusal(g, req.challenge_id, [f"{audit_label}: {_error_kind(e)}"])
            raise type(e)(f"{label}: {e.diagnostics()}") from e
        items.append(CheckedInput(label, audit_label, data, audio))
    return items


# --- 3. the challenge -------------------------------------------------------------------------


def _claim(g: Guardian, challenge_id: str, now: dt.datetime) -> tuple[Challenge, ChallengeSecret]:
    """Mark the challenge used (atomically) and return it with its secret."""
    with g.transaction() as s:
        challenge = s.get(Challenge, challenge_id)
        problem = None
        if challenge is None:
            problem = "unknown challenge"
        elif challenge.used_at is not None:
            problem = "the challenge was already used; ask for a new one"
        elif as_utc(challenge.expires_at) <= now:
            problem = "the challenge expired; ask for a new one"
        else:
            claimed = s.connection().execute(
                update(Challenge)
                .where(col(Challenge.id) == challenge_id, col(Challenge.used_at).is_(None))
                .values(used_at=now, outcome="checking")
            )
            if claimed.rowcount != 1:
                problem = "the challenge was already used; ask for a new one"
        if problem is None and challenge is not None:
            blob = g.vault.blobs(s, challenge.subject_id, kind=BlobKind.CHALLENGE)
            secret = ChallengeSecret.from_bytes(g.vault.get(s, blob[-1].id))
            return challenge, secret
    _log_refusal(g, challenge_id, [problem or "unknown challenge"])
    raise ChallengeError(f"challenge {challenge_id}: {problem}")


MAX_LOGGED_REFUSALS = 3
"""Refusals logged per challenge. Enrollment needs no account, so anyone can send
requests: only refusals that name a real challenge are logged, and at most this many each,
so that the permanent log cannot be filled by an unauthenticated caller."""


def _error_kind(error: Exception) -> str:
    """The class of an error, in the log's words (never its message)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(error).__name__.removesuffix("Error")).lower()


def _log_refusal(g: Guardian, challenge_id: str, problems: Sequence[str]) -> None:
    with g.transaction() as s:
        if s.get(Challenge, challenge_id) is None:
            return  # no such challenge: nothing anyone did to a record of ours
        logged = s.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                col(AuditEntry.action) == "consent.enroll.rejected",
                col(AuditEntry.target) == challenge_id,
            )
        ).one()
        if int(logged) >= MAX_LOGGED_REFUSALS:
            return
        g.audit.append(
            s,
            "consent.enroll.rejected",
            target=challenge_id,
            details={"problems": list(problems)},
        )


# --- 5. outcome ------------------------------------------------------------------------------


def _refuse(g: Guardian, challenge: Challenge, found: Findings) -> EnrollmentRejectedError:
    with g.transaction() as s:
        row = s.get(Challenge, challenge.id)
        if row is not None:
            row.outcome = "rejected"
            s.add(row)
        for blob in g.vault.blobs(s, challenge.subject_id, kind=BlobKind.CHALLENGE):
            g.vault.delete(s, blob.id)
        g.audit.append(
            s,
            "consent.enroll.rejected",
            target=challenge.id,
            details={"subject_id": challenge.subject_id, "problems": found.audit_problems},
        )
    return EnrollmentRejectedError(found.problems, found.kinds)


def _record_body(
    *,
    ids: dict[str, str],
    req: EnrollRequest,
    secret: ChallengeSecret,
    challenge: Challenge,
    items: list[CheckedInput],
    found: Findings,
    subject_public: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    speaker, speech, synthetic = found.passed()
    return {
        "type": RECORD_TYPE,
        **ids,
        "challenge_id": challenge.id,
        "subject": {"name": secret.name, "public_key": subject_public},
        "organization": secret.organization,
        "locale": challenge.locale,
        "terms": {
            "purposes": sorted(req.purposes),
            "requesters": sorted(req.requesters),
            "expires_at": _iso(req.expires),
            "max_epsilon": req.max_epsilon,
        },
        "statement": secret.statement,
        "code": " ".join(secret.code),
        "evidence": {
            "consent_audio_sha256": hashlib.sha256(items[0].data).hexdigest(),
            "samples_sha256": [hashlib.sha256(i.data).hexdigest() for i in items[1:]],
            "speaker": {
                "model": "resemblyzer-ge2e",
                "threshold": speaker.threshold,
                "consent_score": round(speaker.consent_score, 4),
                "sample_scores": [round(x, 4) for x in speaker.sample_scores],
            },
            "speech": {
                "recogniser": "pocketsphinx-en-us",
                "statement_score": speech.statement_score,
            },
            "synthetic_speech": _synthetic_evidence(synthetic),
            "quality": [
                {"snr_db": round(i.quality.snr_db, 1), "speech_s": round(i.quality.speech_s, 2)}
                for i in items
                if i.quality is not None
            ],
        },
        "created_at": now.strftime(TIME_FORMAT),
        "software": f"guardian/{__version__}",
    }


def _accept(
    g: Guardian,
    req: EnrollRequest,
    challenge: Challenge,
    secret: ChallengeSecret,
    items: list[CheckedInput],
    found: Findings,
    subject_key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey | None,
) -> EnrollResult:
    now = utcnow()
    ids = {
        "consent_id": new_id("consent"),
        "voice_id": new_id("voice"),
        "subject_id": challenge.subject_id,
    }
    public = (
        subject_key.public_key()
        if isinstance(subject_key, ed25519.Ed25519PrivateKey)
        else subject_key
    )
    body = _record_body(
        ids=ids,
        req=req,
        secret=secret,
        challenge=challenge,
        items=items,
        found=found,
        subject_public=public_key_b64(public) if public else None,
        now=now,
    )
    sub = challenge.subject_id
    token = WITHDRAW_TOKEN_PREFIX + secrets.token_urlsafe(24)
    with g.transaction() as s:
        record = SignedRecord(body, (sign_as_service(body, g.keys.manifest_signer(s)),))
        if isinstance(subject_key, ed25519.Ed25519PrivateKey):
            record = record.with_signature(sign_as_subject(body, subject_key))
        voice_id = ids["voice_id"]
        for item in items:
            kind = BlobKind.CONSENT_AUDIO if item is items[0] else BlobKind.SAMPLE
            g.vault.put(s, sub, kind, item.data, ref=voice_id)
        if req.transcripts:
            texts = json.dumps(list(req.transcripts)).encode()
            g.vault.put(s, sub, BlobKind.TRANSCRIPTS, texts, ref=voice_id)
        stacked = np.stack([embedding_of(i) for i in items]).astype(np.float32)
        g.vault.put(s, sub, BlobKind.EMBEDDING, stacked.tobytes(), ref=voice_id)
        data = record.to_bytes()
        blob = g.vault.put(s, sub, BlobKind.CONSENT_RECORD, data, ref=voice_id)
        for old in g.vault.blobs(s, sub, kind=BlobKind.CHALLENGE):
            g.vault.delete(s, old.id)
        s.add(
            Voice(
                id=voice_id,
                subject_id=sub,
                consent_id=ids["consent_id"],
                status=VoiceStatus.ACTIVE,
                organization=secret.organization,
                purposes_json=_json_list(req.purposes),
                requesters_json=_json_list(req.requesters),
                expires_at=req.expires,
                max_epsilon=req.max_epsilon,
                record_blob_id=blob.id,
                record_sha256=hashlib.sha256(data).hexdigest(),
                subject_signed=record.signature("subject") is not None,
                withdraw_token_mac=g.vault.token_mac(token),
                created_at=now,
            )
        )
        subject = s.get(Subject, sub)
        if subject is not None:
            subject.status = SubjectStatus.ENROLLED
            s.add(subject)
        row = s.get(Challenge, challenge.id)
        if row is not None:
            row.outcome = "enrolled"
            s.add(row)
        g.audit.append(
            s,
            "consent.enroll",
            target=voice_id,
            details={
                "consent_id": ids["consent_id"],
                "subject_id": sub,
                "challenge_id": challenge.id,
                "purposes": sorted(req.purposes),
                "samples": len(items) - 1,
                "record_sha256": hashlib.sha256(data).hexdigest(),
            },
        )
    speaker, speech, synthetic = found.passed()
    speech_s = sum(i.quality.speech_s for i in items[1:] if i.quality is not None)
    return EnrollResult(
        voice_id=voice_id,
        consent_id=ids["consent_id"],
        subject_id=sub,
        purposes=req.purposes,
        requesters=req.requesters,
        expires_at=req.expires,
        max_epsilon=req.max_epsilon,
        speaker=speaker,
        statement_score=speech.statement_score,
        synthetic=synthetic,
        speech_s=speech_s,
        subject_signed=record.signature("subject") is not None,
        withdraw_token=token,
    )


def _synthetic_evidence(check: SyntheticCheck) -> dict[str, Any]:
    """The check's outcome for an accepted enrollment: a reading that sounded synthetic
    was accepted only because ``allow_synthetic_consent`` let it through."""
    return {
        "model": check.model_id,
        "score": round(check.score, 4),
        "threshold": round(check.threshold, 4),
        "allowed_by_setting": check.synthetic,
    }


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(sorted(values))


def enroll(
    g: Guardian, request: EnrollRequest, *, recorded: Sequence[bytes] | None = None
) -> EnrollResult:
    """Enroll a voice; raises :class:`EnrollmentRejectedError` naming every failed check.

    ``recorded`` gives the consent recording and then each sample as bytes (a browser's
    uploads), so they never touch the disk; ``request.consent`` and ``request.samples``
    then only name them.
    """
    now = utcnow()
    req = _check_request(request, now)
    if recorded is not None and len(recorded) != 1 + len(req.samples):
        raise UsageError("give the consent recording and one recording per sample")
    subject_key = load_subject_key(req.subject_key) if req.subject_key else None
    g.ensure_keys()
    items = _read_inputs(g, req, recorded)
    challenge, secret = _claim(g, req.challenge_id, now)
    try:
        found = inspect_inputs(g, items, secret)
    except GuardianError as e:
        found = Findings()
        found.add(None, f"a check could not run: {e.diagnostics()}", kind=_error_kind(e))
    if found.problems:
        raise _refuse(g, challenge, found)
    return _accept(g, req, challenge, secret, items, found, subject_key)
