"""Embedding and reading C2PA manifests through c2pa-python."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import c2pa

from guardian.errors import SigningError
from guardian.keys import ManifestSigner
from guardian.provenance._manifest import ASSERTION_LABEL


class ManifestState(str, Enum):
    """Outcome of reading a file's manifest."""

    ABSENT = "absent"
    TRUSTED = "trusted"  # valid, and chains to a Guardian trust anchor
    UNTRUSTED = "untrusted"  # valid signature, unknown signer
    INVALID = "invalid"  # hash mismatch, bad signature, malformed store
    EXPIRED = "expired"
    """Integrity holds and the signature verifies, but the signing certificate has
    expired (manifests carry no trusted timestamp): only the registry can say whether it
    was signed while the certificate was valid."""


@dataclass(frozen=True)
class ManifestReading:
    """What the manifest store of a file says, reduced to what verify needs."""

    state: ManifestState
    manifest_id: str | None = None
    failures: list[str] = field(default_factory=list)
    guardian: dict[str, Any] | None = None
    signer_serial_hex: str | None = None
    digital_source_type: str | None = None

    @property
    def present(self) -> bool:
        return self.state is not ManifestState.ABSENT


_TRUST_FAILURES = {"signingCredential.untrusted"}
# An expired leaf also fails the chain check, so C2PA reports both codes.
_EXPIRY_FAILURES = {"signingCredential.expired", "signingCredential.untrusted"}


def embed(data: bytes, *, mime: str, manifest: dict[str, Any], signer: ManifestSigner) -> bytes:
    """Sign ``manifest`` and return ``data`` with the manifest store embedded."""
    return embed_with_store(data, mime=mime, manifest=manifest, signer=signer)[0]


def embed_with_store(
    data: bytes, *, mime: str, manifest: dict[str, Any], signer: ManifestSigner
) -> tuple[bytes, bytes]:
    """Like :func:`embed`, also returning the manifest store on its own (``application/c2pa``),
    which the soft-binding API serves when a clip has lost its embedded copy."""
    try:
        c2pa_signer = c2pa.Signer.from_callback(
            signer.sign, c2pa.C2paSigningAlg.ES256, signer.chain_pem, None
        )
        with c2pa_signer, c2pa.Builder(manifest) as builder:
            out = io.BytesIO()
            store = builder.sign(c2pa_signer, mime, io.BytesIO(data), out)
            return out.getvalue(), bytes(store)
    except c2pa.C2paError as e:
        raise SigningError(f"cannot embed a C2PA manifest into {mime}: {e}") from e


def read(data: bytes, *, mime: str, trust_anchors_pem: str) -> ManifestReading:
    """Validate the embedded manifest against Guardian's trust anchors."""
    settings: dict[str, Any] = {"verify": {"verify_trust": bool(trust_anchors_pem)}}
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    try:
        with (
            c2pa.Context.from_dict(settings) as ctx,
            c2pa.Reader(mime, io.BytesIO(data), context=ctx) as reader,
        ):
            state = reader.get_validation_state()
            store = json.loads(reader.json())
    except c2pa.C2paError as e:
        if "ManifestNotFound" in type(e).__name__ or "not found" in str(e).lower():
            return ManifestReading(ManifestState.ABSENT)
        return ManifestReading(ManifestState.INVALID, failures=[f"unreadable manifest: {e}"])
    return _reduce(state, store)


def _reduce(state: str | None, store: dict[str, Any]) -> ManifestReading:
    active = store.get("active_manifest")
    manifest = store.get("manifests", {}).get(active, {}) if active else {}
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = [f.get("code", "?") for f in results.get("failure", [])]
    guardian = None
    source_type = None
    for a in manifest.get("assertions", []):
        if a.get("label") == ASSERTION_LABEL:
            guardian = a.get("data")
        if str(a.get("label", "")).startswith("c2pa.actions"):
            for act in a.get("data", {}).get("actions", []):
                source_type = source_type or act.get("digitalSourceType")
    serial = manifest.get("signature_info", {}).get("cert_serial_number")
    serial_hex = format(int(serial), "x") if serial and str(serial).isdigit() else None
    trust_only = bool(failures) and all(code in _TRUST_FAILURES for code in failures)
    expiry_only = "signingCredential.expired" in failures and set(failures) <= _EXPIRY_FAILURES
    if state == "Trusted" and not failures:
        kind = ManifestState.TRUSTED
    elif expiry_only:
        kind = ManifestState.EXPIRED
    elif (state == "Valid" and not failures) or trust_only:
        # Integrity holds; only the signer is unknown to Guardian's anchors.
        kind = ManifestState.UNTRUSTED
    else:
        kind = ManifestState.INVALID
    return ManifestReading(
        state=kind,
        manifest_id=active,
        failures=failures,
        guardian=guardian,
        signer_serial_hex=serial_hex,
        digital_source_type=source_type,
    )
