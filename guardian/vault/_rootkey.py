"""The vault root key: the ratchet that makes erasure reach backups.

Subjects' data keys are wrapped under a key derived from *both* the master key and the
vault root key of the current epoch. Erasing a subject (``guardian forget``) moves the
vault to a new epoch: a fresh root key is generated, every *other* subject's data key is
re-wrapped under it, and the old root key is destroyed. A backup made before the
erasure holds the erased subject's data key wrapped under the old epoch's root key,
which no longer exists anywhere the live system can reach, so the backup cannot be
decrypted with the live keys.

The guarantee needs the root key file to be kept out of the data backups (set
``GUARDIAN_VAULT_KEY_PATH`` outside ``GUARDIAN_HOME``, or exclude it), exactly as a KMS
key is. A backup that contains its own copy of the root key file *and* the master key
can decrypt itself; ``docs/privacy.md`` says so plainly.

File format, one line: ``guardian-vault-key/v1 <epoch> <base64 of the sealed key>``,
sealed under the master key with the epoch as associated data, mode 0600. A rotation
writes ``<path>.next`` first; :meth:`RootKeyFile.load` finishes or discards an
interrupted rotation by comparing epochs with the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from guardian.errors import VaultError
from guardian.keys import MasterKey

_MAGIC = "guardian-vault-key/v1"
_PURPOSE = "vault.root-key"
ROOT_KEY_BYTES = 32


@dataclass(frozen=True, repr=False)
class RootKey:
    epoch: int
    material: bytes

    def __repr__(self) -> str:
        return f"RootKey(epoch={self.epoch}, <redacted>)"

    @property
    def check(self) -> str:
        """A value the database keeps to tell which key file belongs to it."""
        return hmac.new(self.material, b"guardian-vault-check", hashlib.sha256).hexdigest()

    def wrapping_key(self, master: MasterKey) -> bytes:
        """The key that wraps subjects' data keys in this epoch (master AND root key)."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=self.material,
            info=f"guardian/vault/subject-key/epoch-{self.epoch}".encode(),
        )
        return hkdf.derive(master.derive("vault.subject-key"))


def new_root_key(epoch: int) -> RootKey:
    return RootKey(epoch, secrets.token_bytes(ROOT_KEY_BYTES))


class RootKeyFile:
    """Reads, writes and ratchets the root key file."""

    def __init__(self, path: Path, master: MasterKey) -> None:
        self.path = path
        self.next_path = path.with_name(path.name + ".next")
        self._master = master

    def read(self, path: Path | None = None) -> RootKey | None:
        path = path or self.path
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise VaultError(f"cannot read the vault key {path}: {e.strerror or e}") from e
        parts = text.split()
        if len(parts) != 3 or parts[0] != _MAGIC or not parts[1].isdigit():
            raise VaultError(f"{path} is not a Guardian vault key file")
        epoch = int(parts[1])
        sealed = base64.b64decode(parts[2])
        material = self._master.open(sealed, purpose=_PURPOSE, aad=f"epoch:{epoch}".encode())
        return RootKey(epoch, material)

    def write_next(self, key: RootKey) -> None:
        """Write the next epoch's key beside the current one (not yet in force)."""
        self._write(self.next_path, key, exclusive=False)

    def create(self, key: RootKey) -> bool:
        """Create the first key file; False if another process made one first."""
        try:
            self._write(self.path, key, exclusive=True)
        except FileExistsError:
            return False
        return True

    def promote_next(self) -> None:
        """Put the next key in force and destroy the previous one."""
        os.replace(self.next_path, self.path)
        _fsync_dir(self.path.parent)

    def discard_next(self) -> None:
        self.next_path.unlink(missing_ok=True)

    def _write(self, path: Path, key: RootKey, *, exclusive: bool) -> None:
        sealed = self._master.seal(
            key.material, purpose=_PURPOSE, aad=f"epoch:{key.epoch}".encode()
        )
        line = f"{_MAGIC} {key.epoch} {base64.b64encode(sealed).decode()}\n"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
