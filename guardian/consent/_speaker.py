"""Speaker verification with Resemblyzer's GE2E encoder (weights ship in its wheel).

Owned by the speaker work: fill in the bodies, keep the signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from guardian.audio import Audio

THRESHOLD: float = 0.0
"""Cosine threshold calibrated on generated voices (docs/benchmarks/consent.md)."""


def embed(audio: Audio) -> np.ndarray:
    """L2-normalised 256-d utterance embedding (float32)."""
    raise NotImplementedError


@dataclass(frozen=True)
class SpeakerCheck:
    """Outcome of the same-speaker check over a consent recording and samples."""

    ok: bool
    threshold: float
    consent_score: float
    sample_scores: tuple[float, ...]
    rejected: tuple[int, ...]
    """Indices of samples that do not match the others."""
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def check_same_speaker(
    consent: np.ndarray, samples: Sequence[np.ndarray], *, threshold: float = THRESHOLD
) -> SpeakerCheck:
    """Check that the consent embedding and every sample embedding share one speaker."""
    raise NotImplementedError
