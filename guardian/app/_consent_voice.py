"""Consent recordings in a shipped synthetic voice, for the demo and the tests.

A voice folder (see ``benchmarks/make_consent_assets.py``) holds ``statement.flac``
(the statement's first sentence), the joining words of ``JOINS``, one
``phrase-<word>.flac`` per phrase word, one ``code-<word>.flac`` per code word and the
enrollment samples ``sample-NN.flac``. Joining them for a fresh phrase and code gives a
consent recording for any challenge, without a synthesiser at run time.
Those clips are clean, with no background; the joined recording gets a recorder's noise
floor (``NOISE_FLOOR_DBFS``) throughout, so that its pauses are not exact digital zeros,
which the splice check (``guardian/consent/_splice.py``) refuses once a recording has a
background to follow: without it, a few of the phrase words' quiet tails gave 3 % (slt)
and 5 % (kal) of joined recordings such a background. The floor is far below what the
check follows, so it cannot see the joins; ``spliced_consent`` performs the splicing
attack with recordings that each keep their own room, as real ones do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from guardian.audio import Audio, read_audio, resample
from guardian.errors import UsageError

PAUSE_AFTER_STATEMENT_S = 0.3
"""Silence after the statement's first sentence."""
PAUSE_BETWEEN_WORDS_S = 0.2
"""Silence between words: a reader's short break, not a sentence boundary."""
NOISE_FLOOR_DBFS = -90.0
"""RMS level of the white noise under the whole joined recording: a 16-bit recorder's."""
JOINS = {"words": "My words are", "and": "and", "code": "and my code is"}
"""The clips, by file stem, that join the statement, the phrase and the code."""


def _mono_at(audio: Audio, rate: int) -> np.ndarray:
    return resample(audio.mono(), audio.sample_rate, rate)


def _clip(voice_dir: Path, stem: str) -> Audio:
    path = voice_dir / f"{stem}.flac"
    if not path.is_file():
        raise UsageError(f"{voice_dir.name}: no recording {path.name}")
    return read_audio(path)


def _closing(phrase: Sequence[str], code: Sequence[str]) -> list[str]:
    """The clips of "My words are A1 N1 and A2 N2, and my code is W1 ... W5", in order."""
    said = ["words"]
    for i in range(0, len(phrase), 2):
        said += [*(["and"] if i else []), f"phrase-{phrase[i]}", f"phrase-{phrase[i + 1]}"]
    return [*said, "code", *(f"code-{w}" for w in code)]


def spoken_consent(voice_dir: Path, phrase: Sequence[str], code: Sequence[str]) -> Audio:
    """The voice reading the consent statement with ``phrase`` and ``code``, in memory.

    Every clip is brought to the statement's sample rate and joined with short
    pauses, over one noise floor, so the result is one recording of the whole statement.

    Raises:
        UsageError: the folder has no clip for one of the words.
        UnreadableAudioError: a clip cannot be decoded.
    """
    statement = _clip(voice_dir, "statement")
    rate = statement.sample_rate
    parts = [statement.mono(), np.zeros(int(PAUSE_AFTER_STATEMENT_S * rate), np.float32)]
    gap = np.zeros(int(PAUSE_BETWEEN_WORDS_S * rate), np.float32)
    for i, stem in enumerate(_closing(phrase, code)):
        if i:
            parts.append(gap)
        parts.append(_mono_at(_clip(voice_dir, stem), rate))
    take = np.concatenate(parts)
    floor = np.random.default_rng(0).standard_normal(len(take)) * 10 ** (NOISE_FLOOR_DBFS / 20)
    return Audio((take + floor).astype(np.float32)[:, None], rate)


_CUT_MARGIN_S = 0.12
"""Background kept either side of a word cut from a recording (a cut falls in a pause)."""
ROOM_DBFS = (-65.0, -45.0)
"""Background levels of the rooms the splicing attack's recordings were made in."""


def in_room(audio: Audio, rng: np.random.Generator, *, level_dbfs: float) -> Audio:
    """``audio`` as if recorded in one take in a room: one steady background of coloured
    noise at ``level_dbfs`` (RMS) throughout, the same from the first sample to the last."""
    from scipy.signal import lfilter  # slow to import: on first use

    pole = rng.uniform(0.0, 0.95)  # 0 is white; near 1 is a low rumble
    white = rng.standard_normal(audio.frames)
    noise = np.asarray(lfilter([1.0], [1.0, -pole], white))
    noise *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(noise**2))
    return Audio((audio.mono() + noise).astype(np.float32)[:, None], audio.sample_rate)


def spliced_consent(
    voice_dir: Path,
    earlier: tuple[Sequence[str], Sequence[str]],
    phrase: Sequence[str],
    code: Sequence[str],
    rng: np.random.Generator,
    *,
    gap_s: float = 0.0,
) -> Audio:
    """The splicing attack on a challenge for ``phrase`` and ``code``: the statement up
    to "My words are" cut from a reading of an earlier challenge (``earlier`` is its
    phrase and code), then each later word cut, with a little of its pause, from a
    recording of its own. Every recording has its own room (``in_room`` at a level
    drawn from ``ROOM_DBFS``). ``gap_s`` > 0 joins the pieces with digital silence
    instead of butting them together.
    """
    reading = in_room(spoken_consent(voice_dir, *earlier), rng, level_dbfs=rng.uniform(*ROOM_DBFS))
    rate = reading.sample_rate
    kept = [_mono_at(_clip(voice_dir, stem), rate) for stem in ("statement", "words")]
    cut = len(kept[0]) + int(PAUSE_AFTER_STATEMENT_S * rate) + len(kept[1])
    gap = np.zeros(int(gap_s * rate), np.float32)
    margin = np.zeros(int(_CUT_MARGIN_S * rate), np.float32)
    parts = [reading.mono()[:cut]]
    for stem in _closing(phrase, code)[1:]:
        said = Audio(
            np.concatenate([margin, _mono_at(_clip(voice_dir, stem), rate), margin])[:, None], rate
        )
        parts += [gap, in_room(said, rng, level_dbfs=rng.uniform(*ROOM_DBFS)).mono()]
    return Audio(np.concatenate(parts)[:, None], rate)


def enrollment_samples(voice_dir: Path) -> list[Path]:
    """The voice's enrollment recordings ``sample-NN.flac``, in order."""
    return sorted(voice_dir.glob("sample-*.flac"))


def held_out_recordings(voice_dir: Path) -> list[Path]:
    """The voice's recordings ``heldout-*.flac``, never enrolled: a reference to measure
    a clone of the voice against."""
    return sorted(voice_dir.glob("heldout-*.flac"))


__all__ = [
    "ROOM_DBFS",
    "enrollment_samples",
    "held_out_recordings",
    "in_room",
    "spliced_consent",
    "spoken_consent",
]
