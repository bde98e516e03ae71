"""Configuration: one settings object, read once from ``GUARDIAN_*`` variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_PREFIX = "GUARDIAN_"


class Settings(BaseModel):
    """Guardian's settings.

    Every field can be set through an environment variable with the ``GUARDIAN_``
    prefix, for example ``GUARDIAN_HOME`` or ``GUARDIAN_MAX_AUDIO_SECONDS`` (the name in
    any case). A value passed to the constructor wins over the environment, and every
    value, from either, is validated.
    """

    model_config = ConfigDict(extra="ignore", validate_default=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".guardian")
    """Directory holding the database, keys, vault and audit head."""

    database_url: str | None = None
    """SQLAlchemy URL; defaults to SQLite inside ``home``."""

    master_key: str | None = Field(default=None, repr=False)
    """Base64 (url-safe) 32-byte master key; else the key file is used."""

    master_key_file: Path | None = None
    """The master key file; unset for ``home/master.key``. Keep it (and the vault root
    key) outside ``home`` so that a backup of the home cannot outlive erasure."""

    max_audio_seconds: float = 600.0
    """Inputs longer than this are refused."""

    max_input_bytes: int = 512 * 1024 * 1024
    """Files larger than this are refused before decoding."""

    mp3_bitrate_kbps: int = 192
    """Bitrate used when ``label`` writes MP3."""

    watermark_model: str | None = None
    """Watermark model: unset for the shipped model, a model card path, or an official
    AudioSeal card name (see ``guardian.watermark.load_model``)."""

    allow_synthetic_consent: bool = False
    """Enroll a consent reading that sounds like a speech synthesiser. For demos and
    tests, whose subjects are synthetic voices; never in production. The signed record
    and ``/readyz`` say when it is on."""

    organization: str = "Guardian"
    """Organisation name written into certificates and manifests."""

    vault_key_path: Path | None = None
    """The vault root key file; unset for ``home/vault.key``. Erasure reaches backups
    only when this file is kept out of them (``docs/privacy.md``)."""

    policy_dir: Path | None = None
    """Directory of Cedar policies, their schema and the retention rules; unset for the
    defaults shipped in the package (a deployment's own rules go in the ``local/``
    folder of its copy of ``policies/``)."""

    api_max_upload_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Uploads to the HTTP API larger than this are refused with 413, unread."""

    api_require_key_for_verify: bool = False
    """Make the public verifier (``/v1/verify`` and the soft-binding API) need a key."""

    api_rate_per_minute: int = Field(default=600, gt=0)
    """Requests per minute allowed to one API key or, without a key, one client address
    (per server process)."""

    api_rate_burst: int = Field(default=60, gt=0)
    """Requests one key or client may send at once before the per-minute rate applies."""

    api_cpu_slots: int | None = Field(default=None, gt=0)
    """Verifications (and other CPU-bound requests) one server process runs at once;
    unset: one per core. ``guardian serve --workers N`` sets cores / N for its workers,
    so that the processes together do not oversubscribe the cores."""

    ray_address: str | None = None
    """Ray cluster for ``verify-batch`` and training jobs (``ray://host:10001``, ``auto``,
    or ``local`` for a fresh single-machine cluster); unset: everything runs here."""

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """Fill each field not passed in from its ``GUARDIAN_*`` variable."""
        if not isinstance(data, dict):
            return data
        env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith(_ENV_PREFIX)}
        found = {
            name: env[key]
            for name in cls.model_fields
            if name not in data and (key := _ENV_PREFIX + name.upper()) in env
        }
        return {**found, **data}

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        """The database URL, with the embedded SQLite default filled in."""
        return self.database_url or f"sqlite:///{self.home / 'guardian.db'}"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.home / "master.key"

    @property
    def resolved_vault_key_path(self) -> Path:
        return self.vault_key_path or self.home / "vault.key"

    @property
    def audit_head_path(self) -> Path:
        return self.home / "audit.head"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()


__all__ = ["Settings", "get_settings"]
