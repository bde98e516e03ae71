"""Use-case: say where a clip came from."""

from __future__ import annotations

import hmac
import json
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, cast

from sqlmodel import Session

from guardian.app._context import Guardian
from guardian.app._label import TIME_FORMAT
from guardian.app._look_ahead import Seen, read_clip
from guardian.app._verify_report import (
    ManifestReport,
    OriginName,
    VerifyReport,
    WatermarkReport,
)
from guardian.app._watermarking import AssistedMatch, assisted_lookup, open_payload
from guardian.audio import Audio, Container, decode_bytes
from guardian.errors import ExitCode
from guardian.keys import KeyInfo
from guardian.provenance import (
    ManifestReading,
    ManifestState,
    RegistryMatch,
    content_hash,
    fingerprint_of,
    read,
)
from guardian.store import Label, Subject, Voice, VoiceStatus, as_utc
from guardian.watermark import Detection

# Containers into which Guardian (and c2pa-python) embed manifests.
_C2PA_CONTAINERS = {Container.WAV, Container.FLAC, Container.MP3, Container.MP4}


class Verdict(str, Enum):
    """The verdicts of ``guardian verify`` (``docs/cli.md``)."""

    VERIFIED = "verified"  # valid, trusted manifest from Guardian
    TRACED = "traced"  # no usable manifest, found in the registry
    WATERMARKED = "watermarked"  # a watermark, no registry match: weak evidence (exit 7)
    TAMPERED = "tampered"  # manifest broken, forged, or signed by a revoked key
    NOT_FOUND = "not_found"  # no evidence of Guardian provenance

    @property
    def exit_code(self) -> ExitCode:
        return {
            Verdict.VERIFIED: ExitCode.OK,
            Verdict.TRACED: ExitCode.OK,
            Verdict.WATERMARKED: ExitCode.WATERMARKED,
            Verdict.TAMPERED: ExitCode.TAMPERED,
            Verdict.NOT_FOUND: ExitCode.NOT_FOUND,
        }[self]


@dataclass(frozen=True)
class WatermarkInfo:
    detected: bool = False
    score: float | None = None
    payload: str | None = None
    payload_confident: bool = False
    segments: list[list[float]] = field(default_factory=list)
    """Watermarked stretches as ``[start_s, end_s]`` pairs (localization)."""
    model_id: str | None = None
    note: str | None = None
    speed: float = 1.0
    """The playback speed change undone to find the watermark (1.0: none)."""

    @classmethod
    def from_detection(cls, d: Detection, model_id: str) -> WatermarkInfo:
        return cls(
            detected=d.detected,
            score=round(d.score, 4),
            payload=d.payload.hex() if d.payload is not None else None,
            payload_confident=d.payload_confident,
            segments=[[round(s.start_s, 2), round(s.end_s, 2)] for s in d.segments],
            model_id=model_id,
            note=d.note,
            speed=round(d.speed, 3),
        )


@dataclass(frozen=True)
class ManifestInfo:
    present: bool = False
    valid: bool = False
    trusted: bool = False
    id: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """Everything ``guardian verify`` reports; ``to_dict`` is the JSON contract."""

    verdict: Verdict
    reasons: list[str]
    manifest: ManifestInfo
    watermark: WatermarkInfo = field(default_factory=WatermarkInfo)
    match: str | None = None
    label_id: str | None = None
    voice_id: str | None = None
    consent_id: str | None = None
    purpose: str | None = None
    generated_at: str | None = None
    epsilon: float | None = None
    fingerprint_ber: float | None = None
    signer_kid: str | None = None
    voice_status: str | None = None
    """``active``, ``revoked`` or ``erased`` for a voice this deployment knows."""
    origin: str | None = None
    """``synthesized`` (this deployment's engine, from a consenting voice) or ``imported``
    (audio from elsewhere that this deployment only labeled); None for older clips."""

    @property
    def exit_code(self) -> ExitCode:
        return self.verdict.exit_code

    def __bool__(self) -> bool:
        return self.exit_code is ExitCode.OK

    def report(self) -> VerifyReport:
        """The JSON contract shared by ``guardian verify --json`` and ``POST /v1/verify``."""
        return VerifyReport(
            verdict=self.verdict.value,
            reasons=list(self.reasons),
            watermark=WatermarkReport(**vars(self.watermark)),
            manifest=ManifestReport(**vars(self.manifest)),
            match=self.match,
            label_id=self.label_id,
            voice_id=self.voice_id,
            consent_id=self.consent_id,
            purpose=self.purpose,
            generated_at=self.generated_at,
            epsilon=self.epsilon,
            fingerprint_ber=self.fingerprint_ber,
            signer_kid=self.signer_kid,
            voice_status=self.voice_status,
            origin=cast(OriginName | None, self.origin),
        )

    def to_dict(self) -> dict[str, Any]:
        return self.report().model_dump(mode="json")


def _manifest_info(reading: ManifestReading) -> ManifestInfo:
    return ManifestInfo(
        present=reading.present,
        valid=reading.state
        in (ManifestState.TRUSTED, ManifestState.UNTRUSTED, ManifestState.EXPIRED),
        trusted=reading.state is ManifestState.TRUSTED,
        id=reading.manifest_id,
    )


def _from_label(label: Label) -> dict[str, Any]:
    assertion = json.loads(label.assertion_json)
    eps = assertion.get("epsilon")
    return {
        "label_id": label.id,
        "voice_id": label.voice_id,
        "consent_id": label.consent_id,
        "purpose": label.purpose,
        "generated_at": as_utc(label.created_at).strftime(TIME_FORMAT),
        "epsilon": float(eps) if eps is not None else None,
        "signer_kid": label.signer_kid,
        "origin": _origin(assertion),
    }


def _from_assertion(data: dict[str, Any]) -> dict[str, Any]:
    eps = data.get("epsilon")
    return {
        "label_id": data.get("label_id"),
        "voice_id": data.get("voice_id"),
        "consent_id": data.get("consent_id"),
        "purpose": data.get("purpose"),
        "generated_at": data.get("created_at"),
        "epsilon": float(eps) if isinstance(eps, int | float) else None,
        "origin": _origin(data),
    }


def _origin(assertion: dict[str, Any]) -> str | None:
    origin = assertion.get("origin")
    return origin if origin in ("synthesized", "imported") else None


def verify_bytes(
    g: Guardian, data: bytes, *, name: str = "clip", seen: Seen | None = None
) -> VerifyResult:
    """Check the manifest, then the registry by content hash, then by fingerprint.

    ``seen``: ``data`` already decoded and looked at by the detector (``look_ahead``).
    """
    result = _verify(g, data, name=name, seen=seen)
    if result.origin == "imported" and result.verdict in (Verdict.VERIFIED, Verdict.TRACED):
        note = (
            "imported audio labeled by this deployment: it did not generate the audio and "
            "asserts no voice or consent"
        )
        result = replace(result, reasons=[*result.reasons, note])
    if result.voice_id is None:
        return result
    with g.reading() as s:
        voice = s.get(Voice, result.voice_id)
        subject = s.get(Subject, voice.subject_id) if voice else None
    if voice is None:
        return result
    reasons = list(result.reasons)
    if voice.status is VoiceStatus.ERASED and subject and subject.erased_at:
        when = as_utc(subject.erased_at).strftime(TIME_FORMAT)
        reasons.append(f"the voice was erased at {when}; who it belonged to is no longer known")
    elif voice.status is VoiceStatus.REVOKED and voice.revoked_at is not None:
        when = as_utc(voice.revoked_at).strftime(TIME_FORMAT)
        reasons.append(f"consent for the voice was revoked at {when}")
    return replace(result, reasons=reasons, voice_status=voice.status.value)


def _verify(g: Guardian, data: bytes, *, name: str, seen: Seen | None) -> VerifyResult:
    if seen is None:
        audio = decode_bytes(data, name=name, max_seconds=g.settings.max_audio_seconds)
        detection = g.detector.detect(audio)
    else:
        if seen.data != data or seen.model_id != g.detector.model_id:
            raise ValueError("the look ahead was taken of other data or by another model")
        audio, detection = seen.audio, g.detector.read(seen.look)
    detection = open_payload(detection, g.payload_key)
    wm = WatermarkInfo.from_detection(detection, g.detector.model_id)
    with g.reading() as s:
        reading = ManifestReading(ManifestState.ABSENT)
        if audio.container in _C2PA_CONTAINERS and audio.container is not None:
            reading = read(
                data, mime=audio.container.mime, trust_anchors_pem=g.keys.trust_anchors_pem(s)
            )
        info = _manifest_info(reading)
        if reading.state is ManifestState.TRUSTED:
            return _trusted(g, s, audio, reading, info, wm)
        if reading.state is ManifestState.EXPIRED:
            if g.keys.find_signer_by_serial(s, reading.signer_serial_hex or "") is not None:
                return _expired(g, s, audio, reading, info, wm)
            # Someone else's expired certificate: a foreign manifest like any other.
            reading = replace(reading, state=ManifestState.UNTRUSTED)
        if reading.state is ManifestState.INVALID:
            fields = _from_assertion(reading.guardian) if reading.guardian else {}
            reasons = [
                "the manifest does not match the audio or its signature is broken: "
                + ", ".join(reading.failures or ["invalid manifest"])
            ]
            return VerifyResult(Verdict.TAMPERED, reasons, info, wm, match="manifest", **fields)
        if reading.state is ManifestState.UNTRUSTED and reading.guardian is not None:
            reasons = [
                "forged manifest: a Guardian assertion signed by a certificate that "
                "does not chain to Guardian's trust anchors"
            ]
            return VerifyResult(Verdict.TAMPERED, reasons, info, wm)
        return _lookup(g, s, audio, info, reading, detection, wm)


def verify_file(g: Guardian, path: Path, *, seen: Future[Seen] | None = None) -> VerifyResult:
    """``guardian verify CLIP``; ``seen``: the clip's look ahead (:func:`look_ahead`),
    started for ``path`` with ``g``'s settings."""
    if seen is None:
        data, _audio = read_clip(path, g.settings)
        return verify_bytes(g, data, name=path.name)
    early = seen.result()
    return verify_bytes(g, early.data, name=path.name, seen=early)


def _row_and_signer(
    g: Guardian, s: Session, reading: ManifestReading
) -> tuple[Label | None, KeyInfo | None]:
    """The registry row the manifest names (if any) and the key that signed it."""
    row = g.registry.by_manifest_id(s, reading.manifest_id) if reading.manifest_id else None
    return row, g.keys.find_signer_by_serial(s, reading.signer_serial_hex or "")


def _trusted(
    g: Guardian,
    s: Session,
    audio: Audio,
    reading: ManifestReading,
    info: ManifestInfo,
    wm: WatermarkInfo,
) -> VerifyResult:
    row, key = _row_and_signer(g, s, reading)
    # Manifest ids are public and chosen by the signer: a registry row vouches for a
    # manifest only when it recorded this very audio signed by this very key.
    label = row if row is not None and _row_matches(row, audio, key) else None
    fields = _from_label(label) if label else _from_assertion(reading.guardian or {})
    if key is not None:
        fields["signer_kid"] = key.kid
    if row is not None and label is None:
        why = (
            f"the manifest reuses the id of registered clip {row.id}, but its audio or "
            "signer differs from what the registry recorded"
        )
        return VerifyResult(Verdict.TAMPERED, [why], info, wm, match="manifest", **fields)
    reasons = ["valid C2PA manifest signed by Guardian's signing identity"]
    if key is not None and key.revoked_at is not None:
        signed_before = label is not None and as_utc(label.created_at) < key.revoked_at
        if not signed_before:
            why = (
                f"signed with key {key.kid}, revoked at "
                f"{key.revoked_at.strftime(TIME_FORMAT)}, and the registry has "
                "no record of this audio being signed with it before that"
            )
            return VerifyResult(Verdict.TAMPERED, [why], info, wm, match="manifest", **fields)
        reasons.append(f"signed before key {key.kid} was revoked")
    return VerifyResult(Verdict.VERIFIED, reasons, info, wm, match="manifest", **fields)


def _expired(
    g: Guardian,
    s: Session,
    audio: Audio,
    reading: ManifestReading,
    info: ManifestInfo,
    wm: WatermarkInfo,
) -> VerifyResult:
    """An expired signing certificate: accepted only for audio that the registry recorded,
    signed with that very key, while the certificate was valid (and before any
    revocation). A thief holding an expired key cannot add a registry row."""
    row, key = _row_and_signer(g, s, reading)
    if row is not None and key is not None and _row_matches(row, audio, key):
        when, not_after = as_utc(row.created_at), key.not_after
        inside = not_after is not None and key.created_at <= when <= not_after
        if not_after is not None and inside and (key.revoked_at is None or when < key.revoked_at):
            reasons = [
                "valid C2PA manifest; its signing certificate "
                f"{key.kid} expired at {not_after.strftime(TIME_FORMAT)}, and the "
                f"registry recorded this audio signed with it at {when.strftime(TIME_FORMAT)}, "
                "inside its validity",
            ]
            return VerifyResult(
                Verdict.VERIFIED, reasons, info, wm, match="manifest", **_from_label(row)
            )
    why = (
        "signed by an expired certificate, and the registry has no record of this audio "
        "being signed with it while it was valid"
    )
    fields = _from_assertion(reading.guardian or {})
    return VerifyResult(Verdict.TAMPERED, [why], info, wm, match="manifest", **fields)


def _traced(
    reasons: list[str],
    info: ManifestInfo,
    wm: WatermarkInfo,
    found: RegistryMatch | AssistedMatch,
    match: str,
) -> VerifyResult:
    """``traced``: a registry row found without a usable manifest."""
    fields = _from_label(found.label)
    return VerifyResult(
        Verdict.TRACED, reasons, info, wm, match=match, fingerprint_ber=found.ber, **fields
    )


def _row_matches(row: Label, audio: Audio, key: KeyInfo | None) -> bool:
    """The registry row recorded this audio (content hash) signed with this key."""
    return (
        key is not None
        and row.signer_kid == key.kid
        and hmac.compare_digest(row.content_sha256, content_hash(audio))
    )


def _lookup(
    g: Guardian,
    s: Session,
    audio: Audio,
    info: ManifestInfo,
    reading: ManifestReading,
    detection: Detection,
    wm: WatermarkInfo,
) -> VerifyResult:
    prefix = [] if not reading.present else ["a manifest from an unknown signer was ignored"]
    label = g.registry.by_content_hash(s, content_hash(audio))
    if label is not None:
        reasons = [*prefix, "no Guardian manifest; the audio is identical to a registered clip"]
        return VerifyResult(
            Verdict.TRACED, reasons, info, wm, match="content_hash", **_from_label(label)
        )
    query = fingerprint_of(audio)
    if query is not None:
        found = g.registry.by_fingerprint(s, query)
        if found is not None:
            why = (
                f"the audio fingerprint matches a registered clip (bit error rate {found.ber:.3f})"
            )
            return _traced(
                [*prefix, f"no Guardian manifest; {why}"], info, wm, found, "fingerprint"
            )
    assisted = assisted_lookup(s, g.registry, detection, query)
    if assisted is not None:
        why = (
            f"Guardian watermark (payload {wm.payload}) names a registered clip whose "
            f"fingerprint confirms it (bit error rate {assisted.ber:.3f})"
        )
        return _traced([*prefix, why], info, wm, assisted, "watermark")
    scaled = g.registry.by_scaled_fingerprint(s, audio) if query is not None else None
    if scaled is not None and scaled.change is not None:
        change, factor = scaled.change
        why = (
            "the audio fingerprint matches a registered clip once a "
            f"{change} change of x{factor:.2f} is undone (bit error rate {scaled.ber:.3f})"
        )
        return _traced([*prefix, f"no Guardian manifest; {why}"], info, wm, scaled, "fingerprint")
    if detection.detected:
        if not detection.payload_confident:
            whose = "a Guardian watermark (payload not decodable with confidence)"
        elif detection.payload is not None and detection.payload.deployment == g.deployment_tag():
            whose = f"a watermark whose payload names this deployment ({wm.payload})"
        else:
            whose = f"a watermark whose payload names another deployment ({wm.payload})"
        if detection.speed != 1.0:
            whose += f", found once a speed change of x{detection.speed:.3f} is undone,"
        reasons = [
            *prefix,
            f"{whose} is present (score {detection.score:.2f}), but no registered clip "
            "matches: provenance unknown beyond the watermark",
            "a watermark without a registry match is weak evidence: it is not proof of "
            "origin, and one can be embedded by anyone holding the public model",
        ]
        return VerifyResult(Verdict.WATERMARKED, reasons, info, wm)
    reasons = [*prefix, "no Guardian manifest, no watermark, and no registered clip matches"]
    if query is None:
        reasons.append("the clip is too short to fingerprint")
    if detection.note:
        reasons.append(detection.note)
    return VerifyResult(Verdict.NOT_FOUND, reasons, info, wm)
