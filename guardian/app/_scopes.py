"""The scopes of HTTP API keys, apart from the key store so that the CLI can name them
in its help without loading the database layer."""

from __future__ import annotations

from enum import Enum


class Scope(str, Enum):
    """What an API key may do."""

    LABEL = "label"
    ENROLL = "enroll"
    TRAIN = "train"
    SYNTHESIZE = "synthesize"
    RIGHTS = "rights"
    AUDIT = "audit"
    ADMIN = "admin"


__all__ = ["Scope"]
