"""Consent recordings in a shipped synthetic voice, for the demo and the tests.

A voice folder (see ``benchmarks/make_consent_assets.py``) holds ``statement.flac``
(the statement up to "My code is"), one ``code-<word>.flac`` per code word and the
enrollment samples ``sample-NN.flac``. Joining the statement with the clips of a fresh
code gives a consent recording for any challenge, without a synthesiser at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from guardian.audio import Audio, read_audio, resample
from guardian.errors import UsageError

PAUSE_AFTER_STATEMENT_S = 0.3
"""Silence between "My code is" and the first code word."""
PAUSE_BETWEEN_WORDS_S = 0.2
"""Silence between code words: a reader's short break, not a sentence boundary."""


def _mono_at(audio: Audio, rate: int) -> np.ndarray:
    return resample(audio.mono(), audio.sample_rate, rate)


def _clip(voice_dir: Path, word: str) -> Audio:
    path = voice_dir / f"code-{word}.flac"
    if not path.is_file():
        raise UsageError(f"{voice_dir.name}: no recording of the code word {word!r}")
    return read_audio(path)


def spoken_consent(voice_dir: Path, code: Sequence[str]) -> Audio:
    """The voice reading the consent statement followed by ``code``, in memory.

    Every clip is brought to the statement's sample rate and joined with short
    silences, so the result is one recording of the whole statement.

    Raises:
        UsageError: the folder has no clip for one of the code's words.
        UnreadableAudioError: a clip is missing or cannot be decoded.
    """
    statement = read_audio(voice_dir / "statement.flac")
    rate = statement.sample_rate
    parts = [statement.mono(), np.zeros(int(PAUSE_AFTER_STATEMENT_S * rate), np.float32)]
    gap = np.zeros(int(PAUSE_BETWEEN_WORDS_S * rate), np.float32)
    for i, word in enumerate(code):
        if i:
            parts.append(gap)
        parts.append(_mono_at(_clip(voice_dir, word), rate))
    return Audio(np.concatenate(parts)[:, None], rate)


def enrollment_samples(voice_dir: Path) -> list[Path]:
    """The voice's enrollment recordings ``sample-NN.flac``, in order."""
    return sorted(voice_dir.glob("sample-*.flac"))


def held_out_recordings(voice_dir: Path) -> list[Path]:
    """The voice's recordings ``heldout-*.flac``, never enrolled: a reference to measure
    a clone of the voice against."""
    return sorted(voice_dir.glob("heldout-*.flac"))


__all__ = ["enrollment_samples", "held_out_recordings", "spoken_consent"]
