"""Use-cases: consent invitations, a challenge sent to the voice owner as a web link.

The operator names the person, the purposes and the sentences to read; Guardian issues
an ordinary consent challenge and a link ``/consent/<challenge id>.<secret>``. Only a
keyed MAC of the secret is kept, sealed in the subject's vault beside the one-time code,
and it is compared in constant time. The link works until the challenge expires or is
used: enrollment claims the challenge and deletes the sealed secret, success or not.
"""

from __future__ import annotations

import datetime as dt
import hmac
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardian.app._consent import ChallengeResult, ChallengeSecret, _iso, check_id, create_challenge
from guardian.app._context import Guardian
from guardian.app._enroll import (
    _REQUESTER_RE,
    _SLUG_RE,
    DEFAULT_MAX_EPSILON,
    MAX_TEXT_CHARS,
    EnrollRequest,
    EnrollResult,
    enroll,
)
from guardian.consent import written_code
from guardian.errors import NotFoundError, UsageError
from guardian.store import Challenge, as_utc, utcnow
from guardian.vault import BlobKind

INVITATION_TTL = dt.timedelta(days=3)
DEFAULT_SENTENCES = 4
MAX_SENTENCES = 20
LINK_PATH = "/consent/"
_SEP = "."


class InvitationError(NotFoundError):
    """The link is unknown, used or expired (one answer for all three)."""

    def __init__(self) -> None:
        super().__init__("this consent link is not valid: it is unknown, used or expired")


@dataclass(frozen=True)
class InvitationResult:
    challenge: ChallengeResult
    link: str = field(repr=False)
    """The secret link token, shown once; its path is ``/consent/<link>``."""
    purposes: tuple[str, ...]
    sentences: tuple[str, ...]

    @property
    def path(self) -> str:
        return LINK_PATH + self.link

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.challenge.to_dict(),
            "path": self.path,
            "purposes": list(self.purposes),
            "sentences": list(self.sentences),
        }


@dataclass(frozen=True)
class InvitationView:
    """What the consent page shows the person who opens a link."""

    challenge_id: str
    name: str
    organization: str
    purposes: tuple[str, ...]
    requesters: tuple[str, ...]
    consent_expires: dt.datetime | None
    max_epsilon: float
    statement: str
    phrase: tuple[str, ...]
    code: tuple[str, ...]
    sentences: tuple[str, ...]
    expires_at: dt.datetime

    @property
    def written_code(self) -> tuple[str, ...]:
        """The code as the statement shows it, for the page's hint."""
        return written_code(self.code)


def _terms(
    purposes: Sequence[str],
    requesters: Sequence[str],
    consent_expires: dt.datetime | None,
    sentences: Sequence[str],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    ps = tuple(dict.fromkeys(p.strip().lower() for p in purposes if p.strip()))
    if not ps:
        raise UsageError("give at least one purpose")
    for p in ps:
        if not _SLUG_RE.match(p):
            raise UsageError(f"purpose {p!r} must be a slug such as 'audiobook' or 'ivr.support'")
    rs = tuple(dict.fromkeys(" ".join(r.split()) for r in requesters if r.strip()))
    for r in rs:
        if not _REQUESTER_RE.match(r):
            raise UsageError(f"requester {r!r} has characters outside letters, digits, ' ._@-'")
    if consent_expires is not None and as_utc(consent_expires) <= utcnow():
        raise UsageError("the consent expiry must be in the future")
    ss = tuple(" ".join(s.split()) for s in sentences)
    if not 1 <= len(ss) <= MAX_SENTENCES:
        raise UsageError(f"give 1-{MAX_SENTENCES} sentences to read")
    if any(not 0 < len(s) <= MAX_TEXT_CHARS for s in ss):
        raise UsageError(f"each sentence must be 1-{MAX_TEXT_CHARS} characters")
    return ps, rs, ss


def _random_sentences(count: int) -> tuple[str, ...]:
    from guardian.corpus import sentence  # the word lists, loaded only when needed

    # Not security-relevant: varied sentences to read, seeded so each invitation differs.
    rng = random.Random(secrets.randbits(64))  # noqa: S311
    return tuple(sentence(rng, 2) for _ in range(count))


def create_invitation(
    g: Guardian,
    *,
    name: str,
    purposes: Sequence[str],
    organization: str | None = None,
    requesters: Sequence[str] = (),
    consent_expires: dt.datetime | None = None,
    sentences: Sequence[str] = (),
    ttl: dt.timedelta = INVITATION_TTL,
) -> InvitationResult:
    """Issue a consent challenge reachable through a single-use, expiring web link."""
    to_read = sentences or _random_sentences(DEFAULT_SENTENCES)
    ps, rs, ss = _terms(purposes, requesters, consent_expires, to_read)
    secret = secrets.token_urlsafe(32)
    terms = {
        "link_mac": g.vault.token_mac(_mac_input(secret)),
        "purposes": list(ps),
        "requesters": list(rs),
        "consent_expires": _iso(consent_expires),
        "sentences": list(ss),
    }
    challenge = create_challenge(g, name=name, organization=organization, ttl=ttl, invitation=terms)
    return InvitationResult(challenge, f"{challenge.challenge_id}{_SEP}{secret}", ps, ss)


def _mac_input(secret: str) -> str:
    return "consent-link:" + secret  # domain-separated from withdrawal tokens


def _split(link: str) -> tuple[str, str]:
    challenge_id, sep, secret = link.strip().partition(_SEP)
    if not sep or not secret or len(link) > 120:
        raise InvitationError()
    try:
        check_id(challenge_id, "chl")
    except UsageError as e:
        raise InvitationError() from e
    return challenge_id, secret


def _load(g: Guardian, link: str) -> tuple[Challenge, ChallengeSecret]:
    challenge_id, secret = _split(link)
    offered = g.vault.token_mac(_mac_input(secret))
    with g.reading() as s:
        challenge = s.get(Challenge, challenge_id)
        blobs = g.vault.blobs(s, challenge.subject_id, kind=BlobKind.CHALLENGE) if challenge else []
        sealed = ChallengeSecret.from_bytes(g.vault.get(s, blobs[-1].id)) if blobs else None
    stored = (sealed.invitation or {}).get("link_mac", "") if sealed else ""
    # Compare even when nothing was found, so the answer takes as long either way.
    same = hmac.compare_digest(offered, stored or "0" * len(offered))
    if challenge is None or sealed is None or not stored or not same:
        raise InvitationError()
    if challenge.used_at is not None or as_utc(challenge.expires_at) <= utcnow():
        raise InvitationError()
    return challenge, sealed


def open_invitation(g: Guardian, link: str) -> InvitationView:
    """The invitation behind a link; :class:`InvitationError` when unknown, used or expired."""
    challenge, sealed = _load(g, link)
    terms = sealed.invitation or {}
    expires = terms.get("consent_expires")
    return InvitationView(
        challenge_id=challenge.id,
        name=sealed.name,
        organization=sealed.organization,
        purposes=tuple(terms["purposes"]),
        requesters=tuple(terms.get("requesters", ())),
        consent_expires=dt.datetime.fromisoformat(expires) if expires else None,
        max_epsilon=DEFAULT_MAX_EPSILON,
        statement=sealed.statement,
        phrase=sealed.phrase,
        code=sealed.code,
        sentences=tuple(terms["sentences"]),
        expires_at=as_utc(challenge.expires_at),
    )


def enroll_invitation(
    g: Guardian, link: str, *, consent: bytes, samples: Sequence[bytes]
) -> EnrollResult:
    """Enroll from the recordings made on the consent page, on the invitation's terms.

    The purposes, requesters and expiry come from the invitation, never from the
    browser; the sentences shown become the samples' transcripts.
    """
    view = open_invitation(g, link)
    if len(samples) != len(view.sentences):
        raise UsageError(
            f"{len(samples)} recordings for {len(view.sentences)} sentences: record each one"
        )
    request = EnrollRequest(
        challenge_id=view.challenge_id,
        consent=Path("consent recording"),
        samples=tuple(Path(f"sentence {i}") for i in range(1, len(samples) + 1)),
        purposes=view.purposes,
        requesters=view.requesters,
        expires=view.consent_expires,
        transcripts=view.sentences,
    )
    return enroll(g, request, recorded=[consent, *samples])


__all__ = [
    "InvitationError",
    "InvitationResult",
    "InvitationView",
    "create_invitation",
    "enroll_invitation",
    "open_invitation",
]
