"""How close a cloned clip is to its speaker: speaking rate and speaker similarity.

The speaker's held-out recordings (never enrolled, so never trained on) are the
reference. Speaker similarity (SECS) is the cosine between the clip's Resemblyzer
embedding and the unit centroid of the references' embeddings, as the engine's
benchmark measures it. The speaking rate compares the clip's speech with the speaker's
own reading of the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from guardian.audio import Audio
from guardian.consent import embed

RATE_TOLERANCE = 0.15
"""A clone speaks within ±15 % of its speaker's time for the same text."""
MIN_SECS = 0.70
"""Similarity a clone should reach against its speaker's held-out recordings."""
SPEECH_DB = 40.0
"""Frames this far below the loudest 10 ms frame count as silence when timing speech."""


def speech_seconds(audio: Audio) -> float:
    """Seconds from the first to the last frame within ``SPEECH_DB`` of the loudest."""
    x = audio.mono()
    frame = max(1, audio.sample_rate // 100)
    n = len(x) // frame
    if n == 0:
        return 0.0
    power = np.mean(x[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1)
    loud = np.flatnonzero(power > np.max(power) * 10 ** (-SPEECH_DB / 10))
    if loud.size == 0:
        return 0.0
    return float((loud[-1] + 1 - loud[0]) * frame / audio.sample_rate)


@dataclass(frozen=True)
class VoiceMatch:
    """A clip measured against its speaker.

    Attributes:
        clip_s: speech in the clip (seconds, silence at either end left out).
        speaker_s: speech in the speaker's own reading of the same text.
        secs: speaker similarity of the clip against the references' centroid.
        base_secs: the same for the untrained base voice saying the text.
        references: held-out recordings in the centroid.
    """

    clip_s: float
    speaker_s: float
    secs: float
    base_secs: float
    references: int

    @property
    def rate_ratio(self) -> float:
        """The clip's time over the speaker's (1.0: the speaker's own pace)."""
        return self.clip_s / self.speaker_s if self.speaker_s > 0 else float("inf")

    @property
    def rate_ok(self) -> bool:
        return abs(self.rate_ratio - 1.0) <= RATE_TOLERANCE

    @property
    def secs_ok(self) -> bool:
        return self.secs >= MIN_SECS

    def __bool__(self) -> bool:
        return self.rate_ok and self.secs_ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip_s": round(self.clip_s, 3),
            "speaker_s": round(self.speaker_s, 3),
            "rate_ratio": round(self.rate_ratio, 3),
            "rate_tolerance": RATE_TOLERANCE,
            "rate_ok": self.rate_ok,
            "secs": round(self.secs, 4),
            "base_secs": round(self.base_secs, 4),
            "min_secs": MIN_SECS,
            "secs_ok": self.secs_ok,
            "references": self.references,
        }

    def summary(self) -> str:
        return (
            f"speaking rate x{self.rate_ratio:.2f} the speaker's ({self.clip_s:.1f} s against "
            f"{self.speaker_s:.1f} s; within ±{RATE_TOLERANCE:.0%}: "
            f"{'yes' if self.rate_ok else 'no'}); SECS {self.secs:.3f} against "
            f"{self.references} held-out recordings (bar {MIN_SECS:.2f}: "
            f"{'met' if self.secs_ok else 'missed'}; base voice {self.base_secs:.3f})"
        )


def centroid(references: Sequence[Audio]) -> np.ndarray:
    """Unit-length mean embedding of the references."""
    mean = np.mean([embed(a) for a in references], axis=0)
    return np.asarray(mean / np.linalg.norm(mean))


def match_voice(
    clip: Audio, *, reading: Audio, references: Sequence[Audio], base: Audio
) -> VoiceMatch:
    """Measure ``clip`` against its speaker.

    Args:
        clip: the cloned voice saying a text.
        reading: the speaker saying the same text (held out of enrollment).
        references: the speaker's held-out recordings (``reading`` may be one).
        base: the untrained base voice saying the text, for comparison.
    """
    cent = centroid(references)
    return VoiceMatch(
        clip_s=speech_seconds(clip),
        speaker_s=speech_seconds(reading),
        secs=float(embed(clip) @ cent),
        base_secs=float(embed(base) @ cent),
        references=len(references),
    )
