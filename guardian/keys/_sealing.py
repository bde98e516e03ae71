"""Master key handling and authenticated encryption of secrets at rest.

Secrets (signing keys now, subject data keys later) are sealed with AES-256-GCM
under keys derived from one master key with HKDF-SHA256, one derived key per
purpose, so a ciphertext sealed for one purpose cannot be opened as another.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from guardian.errors import MasterKeyError

_MAGIC = b"GSL1"
_NONCE = 12
MASTER_KEY_BYTES = 32


@dataclass(frozen=True, repr=False)
class MasterKey:
    """The root secret. ``repr`` never shows the key material."""

    material: bytes

    def __post_init__(self) -> None:
        if len(self.material) != MASTER_KEY_BYTES:
            raise MasterKeyError(f"the master key must be {MASTER_KEY_BYTES} bytes")

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"

    def derive(self, purpose: str) -> bytes:
        """A 256-bit key for one purpose, e.g. ``"signing-keys"``."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"guardian/v1", info=purpose.encode()
        )
        return hkdf.derive(self.material)

    def seal(self, plaintext: bytes, *, purpose: str, aad: bytes = b"") -> bytes:
        """Encrypt and authenticate ``plaintext`` for ``purpose``."""
        return seal(self.derive(purpose), plaintext, aad=aad)

    def open(self, sealed: bytes, *, purpose: str, aad: bytes = b"") -> bytes:
        """Decrypt a blob made by :meth:`seal`; raise if it was altered."""
        try:
            return open_sealed(self.derive(purpose), sealed, aad=aad)
        except ValueError as e:
            raise MasterKeyError(
                f"cannot decrypt {purpose}: wrong master key or corrupted data"
            ) from e


def seal(key: bytes, plaintext: bytes, *, aad: bytes = b"") -> bytes:
    """AES-256-GCM with a random 96-bit nonce: ``magic || nonce || ciphertext``."""
    nonce = secrets.token_bytes(_NONCE)
    return _MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, _MAGIC + aad)


def open_sealed(key: bytes, sealed: bytes, *, aad: bytes = b"") -> bytes:
    """Inverse of :func:`seal`. Raises ``ValueError`` on any tampering."""
    if len(sealed) < len(_MAGIC) + _NONCE + 16 or not sealed.startswith(_MAGIC):
        raise ValueError("not a sealed blob")
    nonce = sealed[len(_MAGIC) : len(_MAGIC) + _NONCE]
    try:
        return AESGCM(key).decrypt(nonce, sealed[len(_MAGIC) + _NONCE :], _MAGIC + aad)
    except InvalidTag as e:
        raise ValueError("authentication failed") from e


def parse_master_key(text: str) -> MasterKey:
    """Parse a base64 (standard or url-safe) encoded 32-byte key."""
    cleaned = text.strip()
    try:
        raw = base64.urlsafe_b64decode(cleaned.replace("+", "-").replace("/", "_") + "==")
    except (binascii.Error, ValueError) as e:
        raise MasterKeyError("the master key is not valid base64") from e
    if len(raw) != MASTER_KEY_BYTES:
        raise MasterKeyError(
            f"the master key must decode to {MASTER_KEY_BYTES} bytes, got {len(raw)}"
        )
    return MasterKey(raw)


def load_master_key(*, env_value: str | None, path: Path, create: bool) -> MasterKey:
    """Load the master key from the environment, else from a 0600 key file.

    With ``create``, a missing key file is generated with :mod:`secrets` and
    written with mode 0600 atomically (``O_EXCL``), so two processes racing to
    create it cannot end up with different keys.
    """
    if env_value:
        return parse_master_key(env_value)
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise MasterKeyError(f"{path} is readable by other users; run: chmod 600 {path}")
        return parse_master_key(path.read_text())
    if not create:
        raise MasterKeyError(
            f"no master key: set GUARDIAN_MASTER_KEY or run `guardian keys init` ({path})"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    material = secrets.token_bytes(MASTER_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_master_key(env_value=None, path=path, create=False)
    with os.fdopen(fd, "w") as f:
        f.write(base64.urlsafe_b64encode(material).decode() + "\n")
    return MasterKey(material)
