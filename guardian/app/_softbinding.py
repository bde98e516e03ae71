"""Use-cases behind the C2PA soft-binding resolution API and the trust-anchor list.

A clip that lost its embedded manifest can still be resolved: by the watermark payload
or the fingerprint (``byBinding``), or by the audio itself (``byContent``). The manifest
store signed at labeling time is kept, so ``/manifests/{id}`` can return it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sqlmodel import col, select

from guardian.app._context import Guardian
from guardian.app._verify import verify_bytes
from guardian.errors import NotFoundError, UsageError
from guardian.provenance.fingerprint import Fingerprint
from guardian.store import Label, ManifestStore

WATERMARK_ALG = "org.guardian.audio-watermark.1"
"""The 16-bit AudioSeal payload (4-bit deployment tag + 12-bit label tag), big-endian."""
FINGERPRINT_ALG = "org.guardian.audio-fingerprint.1"
"""Guardian's robust audio fingerprint, in its versioned binary form."""
MAX_RESULTS = 100


@dataclass(frozen=True)
class Match:
    manifest_id: str
    similarity: int
    """0..100, the C2PA ``similarityScore``."""


def supported_algorithms() -> dict[str, list[dict[str, str]]]:
    """The ``c2pa.softBindingAlgList`` of this service."""
    return {"watermarks": [{"alg": WATERMARK_ALG}], "fingerprints": [{"alg": FINGERPRINT_ALG}]}


def _decode(value: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise UsageError("value must be base64") from e


def _check_max(max_results: int) -> int:
    if not 1 <= max_results <= MAX_RESULTS:
        raise UsageError(f"maxResults must be between 1 and {MAX_RESULTS}")
    return max_results


def match_by_binding(g: Guardian, *, alg: str, value: str, max_results: int = 10) -> list[Match]:
    """Manifests whose soft binding ``alg`` has ``value`` (base64)."""
    _check_max(max_results)
    raw = _decode(value)
    with g.reading() as s:
        if alg == WATERMARK_ALG:
            if len(raw) != 2:
                raise UsageError(f"a {WATERMARK_ALG} value is 2 bytes (16 bits)")
            payload = int.from_bytes(raw, "big")
            rows = s.exec(
                select(Label.manifest_id)
                .where(Label.wm_payload == payload)
                .order_by(col(Label.created_at).desc())
                .limit(max_results)
            ).all()
            # A 16-bit payload names a label tag, not one clip: several may share it.
            score = 100 if len(rows) == 1 else 50
            return [Match(m, score) for m in rows]
        if alg == FINGERPRINT_ALG:
            try:
                query = Fingerprint.from_bytes(raw)
            except ValueError as e:
                raise UsageError(f"not a {FINGERPRINT_ALG} value: {e}") from e
            found = g.registry.by_fingerprint(s, query)
            if found is None:
                return []
            return [Match(found.label.manifest_id, _score(found.ber))]
    raise UsageError(f"unsupported soft-binding algorithm {alg!r}")


def _score(ber: float | None) -> int:
    return 100 if ber is None else max(0, min(100, round(100 * (1 - 2 * ber))))


def match_by_content(g: Guardian, data: bytes, *, max_results: int = 10) -> list[Match]:
    """Manifests of the registered clip this audio is (manifest, hash, fingerprint or
    watermark-led look-up: the same evidence as ``verify``)."""
    _check_max(max_results)
    result = verify_bytes(g, data, name="upload")
    if result.label_id is None:
        return []
    with g.reading() as s:
        label = s.get(Label, result.label_id)
    if label is None:
        return []
    score = 100 if result.match in ("manifest", "content_hash") else _score(result.fingerprint_ber)
    return [Match(label.manifest_id, score)]


def manifest_store(g: Guardian, manifest_id: str) -> bytes:
    """The signed manifest store (``application/c2pa``) of a labeled clip."""
    if not 1 <= len(manifest_id) <= 120:
        raise NotFoundError("no such manifest")
    with g.reading() as s:
        row = s.get(ManifestStore, manifest_id)
    if row is None:
        raise NotFoundError("no such manifest")
    return row.data


def trust_anchors(g: Guardian) -> str:
    """Every root certificate of this deployment (current and retired), PEM."""
    g.ensure_keys()
    with g.reading() as s:
        return g.keys.trust_anchors_pem(s)


__all__ = [
    "FINGERPRINT_ALG",
    "WATERMARK_ALG",
    "Match",
    "manifest_store",
    "match_by_binding",
    "match_by_content",
    "supported_algorithms",
    "trust_anchors",
]
