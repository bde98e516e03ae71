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


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
_MIN_DISTINCT_BYTES = 16
"""32 random bytes hold about 31 distinct values; fewer than 16 happens with probability
below 1e-12, so a key under this bound was typed or patterned, not generated."""


def _check_entropy(raw: bytes) -> None:
    if len(set(raw)) < _MIN_DISTINCT_BYTES:
        raise MasterKeyError(
            "the master key has too little entropy (repeated bytes); "
            "generate one with `guardian keys init` or `openssl rand -base64 32`"
        )
    if all(0x20 <= b < 0x7F for b in raw):
        # 32 random bytes are all printable ASCII with probability (95/256)^32 < 1e-13:
        # this is a password or passphrase encoded as base64, not a key.
        raise MasterKeyError(
            "the master key decodes to printable text: it looks like a password, not a "
            "random key; generate one with `openssl rand -base64 32`"
        )


def parse_master_key(text: str) -> MasterKey:
    """Parse a base64 (standard or url-safe) encoded 32-byte random key.

    Parsing is strict: any character outside the base64 alphabet is an error (it is
    never dropped), and a key with visibly low entropy (repeated bytes, printable text)
    is refused.
    """
    cleaned = text.strip().rstrip("=")
    if not cleaned or not set(cleaned) <= _B64_ALPHABET:
        raise MasterKeyError("the master key is not valid base64 (unexpected characters)")
    standard = cleaned.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise MasterKeyError("the master key is not valid base64") from e
    if len(raw) != MASTER_KEY_BYTES:
        raise MasterKeyError(
            f"the master key must decode to {MASTER_KEY_BYTES} bytes, got {len(raw)}"
        )
    _check_entropy(raw)
    return MasterKey(raw)


def load_master_key(
    *, env_value: str | None, path: Path, create: bool, expected: bool = False
) -> MasterKey:
    """Load the master key from the environment, else from a 0600 key file.

    With ``create``, a missing key file is generated with :mod:`secrets` and
    written with mode 0600 atomically (``O_EXCL``), so two processes racing to
    create it cannot end up with different keys. ``expected`` says that data sealed
    under a master key already exists: then a missing key is an error, never a new key
    (which would silently orphan every sealed key and vault blob).
    """
    if env_value:
        return parse_master_key(env_value)
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise MasterKeyError(f"{path} is readable by other users; run: chmod 600 {path}")
        return parse_master_key(path.read_text())
    if expected:
        raise MasterKeyError(
            "GUARDIAN_MASTER_KEY is not set and there is no key file at "
            f"{path}, but this home holds data sealed under a master key; set "
            "GUARDIAN_MASTER_KEY (or GUARDIAN_MASTER_KEY_FILE) to that key"
        )
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
