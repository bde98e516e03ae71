"""Consent statement, one-time code and the spoken-statement check (pocketsphinx).

Owned by the speech work: fill in the bodies, keep the signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guardian.audio import Audio

CODE_WORDS: tuple[str, ...] = ()
"""The vocabulary one-time codes are drawn from (recognisable, distinct words)."""

CODE_LENGTH: int = 0
"""Words per code."""


def new_code() -> tuple[str, ...]:
    """A fresh one-time code drawn with ``secrets``."""
    raise NotImplementedError


def render_statement(*, name: str, org: str, code: Sequence[str]) -> str:
    """The statement the subject reads aloud, ending with the code."""
    raise NotImplementedError


@dataclass(frozen=True)
class SpeechCheck:
    """Outcome of checking a consent recording against its statement and code."""

    ok: bool
    heard_code: tuple[str, ...]
    statement_score: float
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def check_consent_speech(audio: Audio, *, name: str, org: str, code: Sequence[str]) -> SpeechCheck:
    """Check that ``audio`` says the statement for ``name``/``org`` ending in ``code``."""
    raise NotImplementedError
