"""Use-cases for the voice owner's self-service page: what was done with my voice.

The page proves who it is talking to with the withdrawal token, once; after that it
holds only the token's keyed MAC (the value the database keeps), in a signed session
that expires. Nothing here returns or stores the token itself.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from guardian.app._consent import _iso, revoke_consent, voice_for_token
from guardian.app._context import Guardian
from guardian.app._rights import ForgetResult, forget
from guardian.errors import NotFoundError
from guardian.store import AuditEntry, Label, Voice, VoiceStatus, as_utc

_SESSION_DOMAIN = "web-session:"


@dataclass(frozen=True)
class Use:
    """One use of the voice: a training run or a clip made with it."""

    kind: str
    """``training`` or ``clip``."""
    at: str
    purpose: str | None = None
    requester: str | None = None
    epsilon: float | None = None


@dataclass(frozen=True)
class SelfServiceView:
    voice_id: str
    consent_id: str
    status: VoiceStatus
    organization: str
    purposes: tuple[str, ...]
    requesters: tuple[str, ...]
    expires_at: str | None
    created_at: str
    revoked_at: str | None
    epsilon_spent: float
    delta_spent: float
    max_epsilon: float
    uses: tuple[Use, ...]

    @property
    def budget_fraction(self) -> float:
        return min(1.0, self.epsilon_spent / self.max_epsilon) if self.max_epsilon else 1.0


def session_key(g: Guardian, token: str) -> str:
    """Check a withdrawal token; return the keyed MAC that stands for it in a session.

    Raises:
        UsageError: not shaped like a withdrawal token.
        NotFoundError: no voice has this token (the same answer whether or not it exists).
    """
    voice_for_token(g, token)
    return g.vault.token_mac(token.strip())


def _voice(g: Guardian, key: str) -> Voice:
    with g.reading() as s:
        voice = s.exec(select(Voice).where(Voice.withdraw_token_mac == key)).first()
    if voice is None or not hmac.compare_digest(voice.withdraw_token_mac, key):
        raise NotFoundError("unknown withdrawal token")
    return voice


def sign_session(g: Guardian, payload: str) -> str:
    """A keyed MAC over a web session's payload (the key never leaves the deployment)."""
    return g.vault.token_mac(_SESSION_DOMAIN + payload)


def session_valid(g: Guardian, payload: str, signature: str) -> bool:
    return hmac.compare_digest(sign_session(g, payload), signature)


def _uses(g: Guardian, voice: Voice) -> tuple[Use, ...]:
    with g.reading() as s:
        trainings = s.exec(
            select(AuditEntry)
            .where(col(AuditEntry.action) == "voice.train", col(AuditEntry.target) == voice.id)
            .order_by(col(AuditEntry.seq))
        ).all()
        labels = s.exec(
            select(Label).where(col(Label.voice_id) == voice.id).order_by(col(Label.created_at))
        ).all()
    uses = [
        Use("training", e.at, epsilon=json.loads(e.details_json).get("epsilon")) for e in trainings
    ]
    for label in labels:
        assertion: dict[str, Any] = json.loads(label.assertion_json)
        uses.append(
            Use(
                "clip",
                _iso(as_utc(label.created_at)) or "",
                purpose=label.purpose,
                requester=assertion.get("requester"),
            )
        )
    return tuple(sorted(uses, key=lambda u: u.at))


def self_service_view(g: Guardian, key: str) -> SelfServiceView:
    """Consent terms, every use and the privacy budget of the voice behind ``key``."""
    voice = _voice(g, key)
    return SelfServiceView(
        voice_id=voice.id,
        consent_id=voice.consent_id,
        status=voice.status,
        organization=voice.organization,
        purposes=tuple(json.loads(voice.purposes_json)),
        requesters=tuple(json.loads(voice.requesters_json)),
        expires_at=_iso(voice.expires_at),
        created_at=_iso(voice.created_at) or "",
        revoked_at=_iso(voice.revoked_at),
        epsilon_spent=voice.epsilon_spent,
        delta_spent=voice.delta_spent,
        max_epsilon=voice.max_epsilon,
        uses=_uses(g, voice),
    )


def withdraw_by_key(g: Guardian, key: str) -> None:
    revoke_consent(g, _voice(g, key).id, reason="withdrawn by the subject (self-service page)")


def voice_for_key(g: Guardian, key: str) -> str:
    return _voice(g, key).id


def forget_by_key(g: Guardian, key: str) -> ForgetResult:
    """Erase the subject behind ``key``; a second call gives the first receipt."""
    return forget(g, _voice(g, key).id, reason="erasure requested by the subject (self-service)")


__all__ = [
    "SelfServiceView",
    "Use",
    "forget_by_key",
    "self_service_view",
    "session_key",
    "session_valid",
    "sign_session",
    "voice_for_key",
    "withdraw_by_key",
]
