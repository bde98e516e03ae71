"""Audio quality gates for enrollment recordings.

Owned by the speaker work: fill in the bodies, keep the signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guardian.audio import Audio

MIN_SAMPLE_RATE = 16_000
MIN_SNR_DB = 30.0
MIN_TOTAL_SPEECH_S: float = 0.0


@dataclass(frozen=True)
class Quality:
    """Measured quality of one recording and the reasons it fails, if any."""

    sample_rate: int
    snr_db: float
    clipped_fraction: float
    speech_s: float
    problems: tuple[str, ...]

    def __bool__(self) -> bool:
        return not self.problems


def measure(audio: Audio) -> Quality:
    """Measure one recording against the per-recording gates."""
    raise NotImplementedError


def total_speech_problem(qualities: Sequence[Quality]) -> str | None:
    """The problem with the total amount of speech across samples, if any."""
    raise NotImplementedError
