"""Use-cases: consent challenges, consent records (show, verify, co-sign), revocation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlmodel import Session, select

from guardian.app._context import Guardian
from guardian.app._label import TIME_FORMAT
from guardian.consent import (
    RecordCheck,
    SignedRecord,
    check_record,
    new_code,
    new_phrase,
    public_key_b64,
    render_statement,
    sign_as_subject,
)
from guardian.errors import ConsentRecordError, NotFoundError, UsageError
from guardian.store import Challenge, Voice, VoiceStatus, as_utc, utcnow
from guardian.vault import BlobKind, new_id

CHALLENGE_TTL = dt.timedelta(minutes=15)
SUPPORTED_LOCALES = ("en-US",)
"""The recogniser checking the spoken statement has an English model only."""

_NAME_RE = re.compile(r"^[^\W\d_][^\W_]*(?:[ .'\-]+[^\W_]+)*\.?$")
_ID_RE = re.compile(r"^[a-z]+_[a-z2-7]{26}$")


def _iso(value: dt.datetime | None) -> str | None:
    return as_utc(value).strftime(TIME_FORMAT) if value else None


def check_name(value: str, *, what: str) -> str:
    """A person's or organisation's name as it is read aloud: letters, spaces, . ' -."""
    value = " ".join(value.split())
    if not 1 <= len(value) <= 100 or not _NAME_RE.match(value):
        raise UsageError(
            f"{what} must be 1-100 characters of letters, spaces, apostrophes, hyphens "
            "and full stops"
        )
    return value


def check_id(value: str, prefix: str) -> str:
    """Refuse a malformed id before it reaches the database."""
    if not _ID_RE.match(value) or not value.startswith(prefix + "_"):
        raise UsageError(f"{value!r} is not a valid {prefix} id")
    return value


# --- challenge ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengeResult:
    challenge_id: str
    subject_id: str
    statement: str
    code: tuple[str, ...]
    phrase: tuple[str, ...]
    expires_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "challenge_id": self.challenge_id,
            "subject_id": self.subject_id,
            "statement": self.statement,
            "code": " ".join(self.code),
            "phrase": " ".join(self.phrase),
            "expires_at": _iso(self.expires_at),
        }


@dataclass(frozen=True)
class ChallengeSecret:
    """What the vault keeps for a pending challenge (personal data)."""

    name: str
    organization: str
    code: tuple[str, ...]
    statement: str
    invitation: dict[str, Any] | None = None
    """For a challenge sent as a web link: the MAC of the link's secret and the terms
    the operator asks for (``guardian.app._invite``)."""
    phrase: tuple[str, ...] = ()
    """The challenge's words read before the code; empty in challenges issued before
    statements had them."""

    def to_bytes(self) -> bytes:
        obj: dict[str, Any] = {
            "name": self.name,
            "organization": self.organization,
            "code": list(self.code),
            "phrase": list(self.phrase),
            "statement": self.statement,
        }
        if self.invitation is not None:
            obj["invitation"] = self.invitation
        return json.dumps(obj).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ChallengeSecret:
        obj = json.loads(data)
        return cls(
            obj["name"],
            obj["organization"],
            tuple(obj["code"]),
            obj["statement"],
            obj.get("invitation"),
            tuple(obj.get("phrase", ())),
        )


def create_challenge(
    g: Guardian,
    *,
    name: str,
    organization: str | None = None,
    locale: str = "en-US",
    ttl: dt.timedelta = CHALLENGE_TTL,
    invitation: dict[str, Any] | None = None,
) -> ChallengeResult:
    """Issue a one-time consent challenge for a new subject.

    ``invitation`` (kept sealed with the code) makes it a web invitation; see
    :func:`guardian.app.create_invitation`.
    """
    name = check_name(name, what="the name")
    org = check_name(organization or g.settings.organization, what="the organisation")
    if locale not in SUPPORTED_LOCALES:
        raise UsageError(f"locale {locale!r} is not supported (supported: en-US)")
    if ttl <= dt.timedelta(0):
        raise UsageError("the challenge lifetime must be positive")
    g.ensure_keys()
    code, phrase = new_code(), new_phrase()
    statement = render_statement(name=name, org=org, code=code, phrase=phrase)
    secret = ChallengeSecret(name, org, code, statement, invitation, phrase)
    now = utcnow()
    with g.transaction() as s:
        subject = g.vault.new_subject(s)
        challenge = Challenge(
            id=new_id("chl"),
            subject_id=subject.id,
            organization=org,
            locale=locale,
            created_at=now,
            expires_at=now + ttl,
        )
        s.add(challenge)
        s.flush()
        g.vault.put(s, subject.id, BlobKind.CHALLENGE, secret.to_bytes(), ref=challenge.id)
        g.audit.append(
            s,
            "consent.challenge",
            target=challenge.id,
            details={"subject_id": subject.id, "expires_at": _iso(challenge.expires_at)},
        )
    return ChallengeResult(
        challenge.id, subject.id, secret.statement, code, phrase, challenge.expires_at
    )


# --- records -----------------------------------------------------------------------------


def find_voice(s: Session, ref: str) -> Voice:
    """A voice by voice id or consent id."""
    if ref.startswith("consent_"):
        voice = s.exec(select(Voice).where(Voice.consent_id == check_id(ref, "consent"))).first()
    else:
        voice = s.get(Voice, check_id(ref, "voice"))
    if voice is None:
        raise NotFoundError(f"no voice or consent {ref}")
    return voice


def stored_record(g: Guardian, s: Session, voice: Voice) -> SignedRecord:
    data = g.vault.get(s, voice.record_blob_id)
    if not _same_digest(data, voice.record_sha256):
        raise ConsentRecordError(f"the stored consent record of {voice.id} was altered")
    return SignedRecord.from_bytes(data)


def _same_digest(data: bytes, expected_hex: str) -> bool:
    return hmac.compare_digest(hashlib.sha256(data).hexdigest(), expected_hex)


@dataclass(frozen=True)
class ConsentView:
    """A stored consent record with the voice's live status."""

    voice_id: str
    status: VoiceStatus
    revoked_at: dt.datetime | None
    epsilon_spent: float
    record: SignedRecord

    def to_dict(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "status": self.status.value,
            "revoked_at": _iso(self.revoked_at),
            "epsilon_spent": self.epsilon_spent,
            **self.record.to_dict(),
        }


def show_consent(g: Guardian, ref: str) -> ConsentView:
    """The signed consent record of a voice (decrypted from the vault)."""
    with g.reading() as s:
        voice = find_voice(s, ref)
        record = stored_record(g, s, voice)
    return ConsentView(
        voice.id,
        voice.status,
        as_utc(voice.revoked_at) if voice.revoked_at else None,
        voice.epsilon_spent,
        record,
    )


def document_anchors(g: Guardian | None, trust_anchor: Path | None) -> str | None:
    """The roots a signed document is checked against: an explicit PEM file first, else
    the deployment's own anchors, else none (the signer is then reported untrusted)."""
    if trust_anchor is not None:
        try:
            pem = trust_anchor.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read trust anchor {trust_anchor}: {e}") from e
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise UsageError(f"{trust_anchor} holds no PEM certificate")
        return pem
    if g is None:
        return None
    with g.reading() as s:
        return g.keys.trust_anchors_pem(s)


def verify_consent_file(
    path: Path, g: Guardian | None = None, *, trust_anchor: Path | None = None
) -> RecordCheck:
    """Check a consent record file against ``trust_anchor`` or this deployment's anchors
    (see :func:`document_anchors`)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    anchors = document_anchors(g, trust_anchor)
    return check_record(SignedRecord.from_bytes(data), trust_anchors_pem=anchors)


def verify_stored_consent(g: Guardian, ref: str) -> RecordCheck:
    """Check a stored record, including that its root is this deployment's anchor."""
    with g.reading() as s:
        record = stored_record(g, s, find_voice(s, ref))
        anchors = g.keys.trust_anchors_pem(s)
    return check_record(record, trust_anchors_pem=anchors)


def load_subject_key(path: Path) -> ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey:
    """A subject's Ed25519 key from a PEM file: private (to co-sign) or public."""
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read subject key {path}: {e.strerror or e}") from e
    loaders = (
        lambda: serialization.load_pem_private_key(pem, password=None),
        lambda: serialization.load_pem_public_key(pem),
    )
    for load in loaders:
        try:
            key = load()
        except (ValueError, TypeError):
            continue
        if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
            return key
        break
    raise UsageError(f"{path} is not an unencrypted Ed25519 PEM key")


def make_subject_key(path: Path) -> str:
    """Create a subject's Ed25519 key file (mode 0600); returns the public key."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise UsageError(f"{path} already exists; not overwriting a key") from e
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return public_key_b64(key.public_key())


def cosign_consent(g: Guardian, ref: str, key_path: Path) -> RecordCheck:
    """Add the subject's co-signature to a stored consent record."""
    key = load_subject_key(key_path)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise UsageError("co-signing needs the subject's private key")
    with g.transaction() as s:
        voice = find_voice(s, ref)
        record = stored_record(g, s, voice)
        signed = record.with_signature(sign_as_subject(record.body, key))
        data = signed.to_bytes()
        old = voice.record_blob_id
        blob = g.vault.put(s, voice.subject_id, BlobKind.CONSENT_RECORD, data, ref=voice.id)
        g.vault.delete(s, old)
        voice.record_blob_id = blob.id
        voice.record_sha256 = hashlib.sha256(data).hexdigest()
        voice.subject_signed = True
        s.add(voice)
        g.audit.append(
            s, "consent.cosign", target=voice.id, details={"consent_id": voice.consent_id}
        )
        anchors = g.keys.trust_anchors_pem(s)
    return check_record(signed, trust_anchors_pem=anchors)


# --- revocation --------------------------------------------------------------------------


@dataclass(frozen=True)
class RevokeResult:
    voice_id: str
    consent_id: str
    revoked_at: dt.datetime
    already: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "consent_id": self.consent_id,
            "status": VoiceStatus.REVOKED.value,
            "revoked_at": _iso(self.revoked_at),
            "already_revoked": self.already,
        }


def revoke_consent(
    g: Guardian, ref: str, *, reason: str = "withdrawn by the subject"
) -> RevokeResult:
    """Revoke a voice's consent: every later use is denied. Idempotent."""
    reason = " ".join(reason.split())[:200] or "unspecified"
    with g.transaction() as s:
        voice = find_voice(s, ref)
        if voice.status is not VoiceStatus.ACTIVE:
            at = as_utc(voice.revoked_at) if voice.revoked_at else utcnow()
            return RevokeResult(voice.id, voice.consent_id, at, already=True)
        voice.status = VoiceStatus.REVOKED
        voice.revoked_at = utcnow()
        voice.revocation_reason = reason
        s.add(voice)
        g.audit.append(
            s,
            "consent.revoke",
            target=voice.id,
            details={"consent_id": voice.consent_id, "reason": reason},
        )
    return RevokeResult(voice.id, voice.consent_id, as_utc(voice.revoked_at), already=False)


def voice_for_token(g: Guardian, token: str) -> str:
    """The voice a subject's withdrawal token belongs to.

    An unknown token gets the same answer whether or not the voice exists, and the
    lookup goes through a keyed MAC, so the database never holds a usable token.
    """
    token = token.strip()
    if not token.startswith("gwt_") or len(token) > 80:
        raise UsageError("not a withdrawal token (they start with 'gwt_')")
    mac = g.vault.token_mac(token)
    with g.reading() as s:
        voice = s.exec(select(Voice).where(Voice.withdraw_token_mac == mac)).first()
    if voice is None or not hmac.compare_digest(voice.withdraw_token_mac, mac):
        raise NotFoundError("unknown withdrawal token")
    return voice.id


def withdraw_consent(g: Guardian, token: str) -> RevokeResult:
    """Self-service withdrawal (GDPR Art. 7(3)) with the token given at enrollment."""
    voice_id = voice_for_token(g, token)
    return revoke_consent(g, voice_id, reason="withdrawn by the subject (self-service token)")


def parse_when(value: str | None) -> dt.datetime | None:
    """``2027-06-30`` (end of that day, UTC) or an ISO 8601 time (UTC if no zone)."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)
        when = dt.datetime.fromisoformat(value)
    except ValueError as e:
        raise UsageError(f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from e
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
