"""The verify answer as a schema: one model for the CLI's ``--json`` and the HTTP API.

``guardian verify --json`` prints it, ``POST /v1/verify`` returns it (and documents it in
OpenAPI), and ``guardian verify --server`` parses it back, so the three cannot drift.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VerdictName = Literal["verified", "traced", "watermarked", "tampered", "not_found"]
OriginName = Literal["synthesized", "imported"]


class WatermarkReport(BaseModel):
    """What the watermark detector found."""

    model_config = ConfigDict(extra="forbid")

    detected: bool = False
    score: float | None = None
    payload: str | None = Field(default=None, description="16-bit payload, hex")
    payload_confident: bool = False
    # A Python function, not the builtin ``list``: pydantic reads a default factory's
    # signature, and a builtin's costs ``guardian verify`` 40 ms of tokenizer set-up.
    segments: list[list[float]] = Field(
        default_factory=lambda: [], description="Watermarked stretches as [start_s, end_s] pairs"
    )
    model_id: str | None = None
    note: str | None = None
    speed: float = Field(default=1.0, description="Speed change undone to find it (1: none)")


class ManifestReport(BaseModel):
    """What the embedded C2PA manifest store says."""

    model_config = ConfigDict(extra="forbid")

    present: bool = False
    valid: bool = False
    trusted: bool = False
    id: str | None = None


class VerifyReport(BaseModel):
    """Where a clip came from (``guardian verify --json``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "verdict": "verified",
                    "reasons": ["valid C2PA manifest signed by Guardian's signing identity"],
                    "watermark": {
                        "detected": True,
                        "score": 0.97,
                        "payload": "a41c",
                        "payload_confident": True,
                        "segments": [[0.0, 10.0]],
                        "model_id": "guardian-wm-v15",
                        "note": None,
                        "speed": 1.0,
                    },
                    "manifest": {
                        "present": True,
                        "valid": True,
                        "trusted": True,
                        "id": "urn:c2pa:2f1b0c1e-5d3a-4c55-9d0e-1e6f0b1f9a10",
                    },
                    "match": "manifest",
                    "label_id": "lbl_3f9c2a7d1e0b4c5a6d7e",
                    "voice_id": None,
                    "consent_id": None,
                    "purpose": "podcast",
                    "generated_at": "2026-12-06T05:00:00Z",
                    "epsilon": None,
                    "fingerprint_ber": None,
                    "signer_kid": "signer-2026-12-06-1a2b",
                    "voice_status": None,
                    "origin": "imported",
                }
            ]
        },
    )

    verdict: VerdictName
    reasons: list[str]
    watermark: WatermarkReport
    manifest: ManifestReport
    match: str | None = Field(
        default=None, description="manifest, content_hash, fingerprint or watermark"
    )
    label_id: str | None = None
    voice_id: str | None = None
    consent_id: str | None = None
    purpose: str | None = None
    generated_at: str | None = None
    epsilon: float | None = None
    fingerprint_ber: float | None = None
    signer_kid: str | None = None
    voice_status: str | None = Field(
        default=None, description="active, revoked or erased, for a voice this deployment knows"
    )
    origin: OriginName | None = Field(
        default=None,
        description="synthesized: made by this deployment's cloning engine from a consented "
        "voice; imported: outside audio that this deployment labeled",
    )


__all__ = ["ManifestReport", "VerdictName", "VerifyReport", "WatermarkReport"]
