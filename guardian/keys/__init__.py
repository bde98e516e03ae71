"""Signing identity: master key, local root CA, ES256 leaves, audit key."""

from guardian.keys._sealing import MasterKey, load_master_key, parse_master_key
from guardian.keys._store import AuditSigner, KeyInfo, KeyStore, ManifestSigner

__all__ = [
    "AuditSigner",
    "KeyInfo",
    "KeyStore",
    "ManifestSigner",
    "MasterKey",
    "load_master_key",
    "parse_master_key",
]
