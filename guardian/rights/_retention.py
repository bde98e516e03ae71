"""Retention rules (GDPR Art. 5(1)(e)), read from ``policies/retention.yaml``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guardian.errors import PolicyError

_FIELDS = {
    "raw_audio_days_after_training": int,
    "revoke_expired_consents": bool,
    "pending_subject_hours": int,
    "erased_tombstone_years": int,
}


@dataclass(frozen=True)
class RetentionRules:
    raw_audio_days_after_training: int
    revoke_expired_consents: bool
    pending_subject_hours: int
    erased_tombstone_years: int

    def __post_init__(self) -> None:
        for name in (
            "raw_audio_days_after_training",
            "pending_subject_hours",
            "erased_tombstone_years",
        ):
            if getattr(self, name) < 0:
                raise PolicyError(f"retention: {name} must not be negative")

    @property
    def raw_audio_after(self) -> dt.timedelta:
        return dt.timedelta(days=self.raw_audio_days_after_training)

    @property
    def pending_after(self) -> dt.timedelta:
        return dt.timedelta(hours=self.pending_subject_hours)

    @property
    def tombstone_after(self) -> dt.timedelta:
        return dt.timedelta(days=365 * self.erased_tombstone_years)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def load(cls, path: Path) -> RetentionRules:
        """Read and validate the rules; every field is required, unknown ones refused."""
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as e:
            raise PolicyError(f"cannot read retention rules {path}: {e.strerror or e}") from e
        except yaml.YAMLError as e:
            raise PolicyError(f"{path}: not valid YAML ({e})") from e
        if not isinstance(data, dict):
            raise PolicyError(f"{path}: expected a mapping of retention rules")
        unknown = sorted(set(data) - set(_FIELDS))
        missing = sorted(set(_FIELDS) - set(data))
        if unknown or missing:
            raise PolicyError(f"{path}: unknown rules {unknown}, missing rules {missing}")
        for name, kind in _FIELDS.items():
            value = data[name]
            if type(value) is not kind:  # bool is an int subclass: compare exact types
                raise PolicyError(f"{path}: {name} must be a {kind.__name__}")
        return cls(**data)
