"""Use-case: watermark audio, embed a signed C2PA manifest, register it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from guardian import __version__
from guardian.app._context import Guardian
from guardian.app._policy import require_label
from guardian.app._watermarking import WatermarkStage, watermark_columns
from guardian.audio import Audio, OutputFormat, decode_bytes, encode_bytes, read_audio
from guardian.errors import SigningError, UsageError
from guardian.policy import LabelPolicyRequest
from guardian.provenance import (
    GuardianAssertion,
    ManifestState,
    build_manifest,
    content_hash,
    embed_with_store,
    fingerprint_of,
    read,
)
from guardian.store import Label, ManifestStore, as_utc

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

log = logging.getLogger("guardian")


class AudioStage(Protocol):
    """A signal-level step run before signing (the watermark embedder is one).

    ``apply`` returns the new audio and the fields it adds to the Guardian
    assertion, so that whatever a stage did is covered by the signature.
    """

    name: str

    def apply(self, audio: Audio, *, label_id: str) -> tuple[Audio, Mapping[str, Any]]: ...


@dataclass(frozen=True)
class LabelRequest:
    """A clip to label. It carries no voice or consent: labeling imported audio says only
    that this deployment labeled it (see :class:`VoiceClaim`)."""

    source: Path
    output: Path
    purpose: str | None = None
    requester: str | None = None
    """Who asks; unset for the deployment's organisation (the CLI's operator)."""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VoiceClaim:
    """Whose voice a clip is and under which consent. Only synthesis from an enrolled
    voice, after its policy decision, makes this claim; ``label`` never does."""

    voice_id: str
    consent_id: str


class Origin(str, Enum):
    """What a labeled clip is, as its manifest says."""

    SYNTHESIZED = "synthesized"
    """Made by this deployment's voice engine from an enrolled, consenting voice."""
    IMPORTED = "imported"
    """Audio from elsewhere (another TTS), imported and labeled by this deployment."""


@dataclass(frozen=True)
class LabelResult:
    label_id: str
    manifest_id: str
    output: Path
    format: str
    duration_s: float
    sample_rate: int
    channels: int
    content_sha256: str
    signer_kid: str
    created_at: str
    fingerprinted: bool
    watermark: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Label, *, output: Path, watermark: Mapping[str, Any]) -> LabelResult:
        return cls(
            label_id=row.id,
            manifest_id=row.manifest_id,
            output=output,
            format=row.format,
            duration_s=row.duration_s,
            sample_rate=row.sample_rate,
            channels=row.channels,
            content_sha256=row.content_sha256,
            signer_kid=row.signer_kid,
            created_at=as_utc(row.created_at).strftime(TIME_FORMAT),
            fingerprinted=bool(row.fingerprint),
            watermark=watermark,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "label_id": self.label_id,
            "manifest_id": self.manifest_id,
            "output": str(self.output),
            "format": self.format,
            "duration_s": round(self.duration_s, 3),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "content_sha256": self.content_sha256,
            "signer_kid": self.signer_kid,
            "created_at": self.created_at,
            "fingerprinted": self.fingerprinted,
            "watermark": dict(self.watermark),
        }


def check_output_path(source: Path | None, output: Path) -> OutputFormat:
    """Refuse unusable output paths before any work is done."""
    fmt = OutputFormat.from_path(output)
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{output}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{output}: directory {parent} is not writable")
    if output.is_dir():
        raise UsageError(f"{output}: is a directory")
    if source is not None and output.exists() and source.resolve() == output.resolve():
        raise UsageError(f"{output}: output would overwrite the input")
    return fmt


def new_label_id() -> str:
    return f"lbl_{secrets.token_hex(10)}"


def label_audio(
    g: Guardian,
    audio: Audio,
    request: LabelRequest,
    *,
    fmt: OutputFormat,
    stages: Sequence[AudioStage] = (),
    voice: VoiceClaim | None = None,
) -> LabelResult:
    """Run the stages, encode, sign, register, audit, then publish the file.

    ``voice`` is for synthesis only, after its policy decision (:mod:`._engine`).
    """
    g.ensure_keys()
    label_id = new_label_id()
    origin = Origin.IMPORTED if voice is None else Origin.SYNTHESIZED
    extra: dict[str, Any] = {**request.extra, "origin": origin.value}
    for stage in stages:
        audio, fields = stage.apply(audio, label_id=label_id)
        extra.update(fields)
    encoded = encode_bytes(audio, fmt, bitrate_kbps=g.settings.mp3_bitrate_kbps)
    # Hash and fingerprint what a verifier will decode, not what we started from.
    published = decode_bytes(encoded, name=request.output.name)
    digest = content_hash(published)
    fingerprint = fingerprint_of(published)
    created = dt.datetime.now(dt.UTC)
    assertion = GuardianAssertion(
        label_id=label_id,
        created_at=created.strftime(TIME_FORMAT),
        software=f"guardian/{__version__}",
        purpose=request.purpose,
        voice_id=voice.voice_id if voice else None,
        consent_id=voice.consent_id if voice else None,
        requester=request.requester,
        extra=extra,
    )
    manifest = build_manifest(assertion, title=request.output.name, mime=fmt.container.mime)
    part = request.output.with_name(f".{request.output.name}.{secrets.token_hex(4)}.part")
    try:
        with g.transaction() as s:
            signer = g.keys.manifest_signer(s)
            signed, store = embed_with_store(
                encoded, mime=fmt.container.mime, manifest=manifest, signer=signer
            )
            anchors = g.keys.trust_anchors_pem(s)
            check = read(signed, mime=fmt.container.mime, trust_anchors_pem=anchors)
            if check.state is not ManifestState.TRUSTED or check.manifest_id is None:
                raise SigningError(f"the signed output does not validate ({check.failures})")
            row = Label(
                id=label_id,
                manifest_id=check.manifest_id,
                content_sha256=digest,
                fingerprint=fingerprint.to_bytes() if fingerprint else b"",
                created_at=created,
                duration_s=published.duration,
                sample_rate=published.sample_rate,
                channels=published.channels,
                format=fmt.value,
                signer_kid=signer.kid,
                purpose=request.purpose,
                voice_id=voice.voice_id if voice else None,
                consent_id=voice.consent_id if voice else None,
                assertion_json=json.dumps(assertion.to_dict(), sort_keys=True),
                **watermark_columns(extra, label_id),
            )
            g.registry.add(s, row, fingerprint)
            s.add(ManifestStore(manifest_id=check.manifest_id, label_id=label_id, data=store))
            g.audit.append(
                s,
                "label.create",
                target=label_id,
                details={
                    "manifest_id": check.manifest_id,
                    "content_sha256": digest,
                    "signer": signer.kid,
                    "purpose": request.purpose,
                    "format": fmt.value,
                },
            )
            _write_new(part, signed)
        # Only a committed label becomes visible under the requested name.
        os.replace(part, request.output)
    except OSError as e:
        raise UsageError(f"{request.output}: cannot write ({e.strerror or e})") from e
    finally:
        part.unlink(missing_ok=True)
    log.info("labeled %s -> %s (%s)", request.source.name, request.output, label_id)
    return LabelResult.from_row(row, output=request.output, watermark=extra.get("watermark", {}))


def default_stages(g: Guardian) -> list[AudioStage]:
    """Every clip Guardian outputs carries its watermark."""
    return [WatermarkStage(g.watermark, deployment=g.deployment_tag(), key=g.payload_key)]


def label_file(
    g: Guardian, request: LabelRequest, *, stages: Sequence[AudioStage] | None = None
) -> LabelResult:
    """``guardian label IN -o OUT``: validate the paths and the audio, ask the policies,
    then label. The manifest says the clip is imported audio labeled by this deployment;
    it names no voice and no consent, whatever the caller claims.

    Raises:
        PolicyDeniedError: the policies refuse the label (the decision is audited).
    """
    fmt = check_output_path(request.source, request.output)
    audio = read_audio(
        request.source,
        max_seconds=g.settings.max_audio_seconds,
        max_bytes=g.settings.max_input_bytes,
    )
    requester = request.requester or g.settings.organization
    g.ensure_keys()  # the decision is audited, and the log needs its key
    require_label(
        g,
        LabelPolicyRequest(
            requester=requester,
            purpose=request.purpose or "",
            format=audio.container.value if audio.container else "unknown",
            duration_s=audio.duration,
        ),
    )
    chosen = default_stages(g) if stages is None else stages
    return label_audio(g, audio, replace(request, requester=requester), fmt=fmt, stages=chosen)


def _write_new(path: Path, data: bytes, *, mode: int = 0o666) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_new_file(path: Path, data: bytes, *, private: bool = False) -> None:
    """Create ``path`` with ``data``; never overwrite (one-line usage errors).

    ``private`` creates it 0600 whatever the umask: for files that hold personal data
    (exports carry voice audio and names in the clear).
    """
    try:
        _write_new(path, data, mode=0o600 if private else 0o666)
    except FileExistsError as e:
        raise UsageError(f"{path} already exists; not overwriting it") from e
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
