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


def in_room(audio: Audio, rng: np.random.Generator, *, level_dbfs: float) -> Audio:
    """``audio`` as if recorded in one take in a room: one steady background of coloured
    noise at ``level_dbfs`` (RMS) throughout, the same from the first sample to the last."""
    x = audio.mono()
    white = rng.standard_normal(len(x) + _ROOM_WARMUP)
    pole = rng.uniform(0.0, 0.95)  # 0 is white; near 1 is a low rumble
    coloured = np.empty_like(white)
    state = 0.0
    for i, w in enumerate(white):  # one-pole low-pass; numpy has no recursive filter
        state = w + pole * state
        coloured[i] = state
    noise = coloured[_ROOM_WARMUP:]
    noise *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(noise**2))
    return Audio((x + noise).astype(np.float32)[:, None], audio.sample_rate)


_ROOM_WARMUP = 1_000
"""Noise samples discarded while the filter settles."""
_CUT_MARGIN_S = 0.12
"""Background kept either side of a word cut from a recording (a cut falls in a pause)."""


def spliced_consent(
    voice_dir: Path,
    earlier: Sequence[str],
    code: Sequence[str],
    rng: np.random.Generator,
    *,
    gap_s: float = 0.0,
) -> Audio:
    """The splicing attack on a challenge for ``code``: the statement cut from a reading
    of an earlier challenge (code ``earlier``), then each code word cut, with a little
    of its pause, from a recording of its own. Every recording has its own room, at a
    background level of -65 to -45 dBFS. ``gap_s`` > 0 joins the pieces with digital
    silence instead of butting them together.
    """
    reading = in_room(spoken_consent(voice_dir, earlier), rng, level_dbfs=rng.uniform(-65, -45))
    rate = reading.sample_rate
    statement = read_audio(voice_dir / "statement.flac")
    cut = len(resample(statement.mono(), statement.sample_rate, rate))
    gap = np.zeros(int(gap_s * rate), np.float32)
    margin = np.zeros(int(_CUT_MARGIN_S * rate), np.float32)
    parts = [reading.mono()[:cut]]
    for word in code:
        said = Audio(
            np.concatenate([margin, _mono_at(_clip(voice_dir, word), rate), margin])[:, None], rate
        )
        parts += [gap, in_room(said, rng, level_dbfs=rng.uniform(-65, -45)).mono()]
    return Audio(np.concatenate(parts)[:, None], rate)


def enrollment_samples(voice_dir: Path) -> list[Path]:
    """The voice's enrollment recordings ``sample-NN.flac``, in order."""
    return sorted(voice_dir.glob("sample-*.flac"))


def held_out_recordings(voice_dir: Path) -> list[Path]:
    """The voice's recordings ``heldout-*.flac``, never enrolled: a reference to measure
    a clone of the voice against."""
    return sorted(voice_dir.glob("heldout-*.flac"))


__all__ = [
    "enrollment_samples",
    "held_out_recordings",
    "in_room",
    "spliced_consent",
    "spoken_consent",
]
