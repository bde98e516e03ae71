"""Provenance: C2PA manifests, the registry and the robust fingerprint."""

from guardian.provenance._c2pa import (
    ManifestReading,
    ManifestState,
    embed,
    embed_with_store,
    read,
)
from guardian.provenance._manifest import (
    ASSERTION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    GuardianAssertion,
    build_manifest,
)
from guardian.provenance._registry import Registry, RegistryMatch, content_hash, fingerprint_of

__all__ = [
    "ASSERTION_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "GuardianAssertion",
    "ManifestReading",
    "ManifestState",
    "Registry",
    "RegistryMatch",
    "build_manifest",
    "content_hash",
    "embed",
    "embed_with_store",
    "fingerprint_of",
    "read",
]
