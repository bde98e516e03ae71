"""The splice check: a consent recording assembled from pieces of other recordings is
refused, a reading in one take is not.

The attack pieces are the shipped clips of festival slt and kal, each given the room of
the recording it was cut from (``spliced_consent``); the genuine readings are whole
statements synthesised in one utterance by festival slt and espeak-ng, recorded clean
and in one room. Those need the synthesisers and skip without them.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from guardian.app._consent_voice import in_room, spliced_consent, spoken_consent
from guardian.audio import Audio, read_audio
from guardian.consent import (
    CODE_LENGTH,
    CODE_WORDS,
    new_phrase,
    render_statement,
    splice_problem,
)
from tests.app.conftest import KAL, NAME, ORG, SLT

CODES = (
    ("alpha", "bravo", "charlie", "delta", "echo"),
    ("zulu", "xray", "mike", "golf", "papa"),
    ("kilo", "oscar", "tango", "romeo", "india"),
)
PHRASES = (
    ("quiet", "lantern", "golden", "river"),
    ("purple", "kettle", "windy", "market"),
    ("copper", "wagon", "sleepy", "violin"),
)
EARLIER = (
    ("sandy", "museum", "bitter", "compass"),
    ("hotel", "lima", "sierra", "uniform", "victor"),
)


@pytest.mark.parametrize("voice", [SLT, KAL], ids=["slt", "kal"])
def test_statements_spliced_from_other_recordings_are_refused(voice: Path) -> None:
    """The finding's attack: an earlier challenge's reading, cut after "My words are",
    followed by the new phrase's and code's words cut from other recordings. Where two
    adjacent recordings have nearly the same background the join does not show, so this
    asks for the rate that ``docs/benchmarks/consent_splice.md`` measures, not for
    every attack."""
    refused = 0
    for seed in range(10):
        i = seed % 3
        attack = spliced_consent(voice, EARLIER, PHRASES[i], CODES[i], np.random.default_rng(seed))
        problem = splice_problem(attack)
        refused += problem is not None and "one take" in problem
    assert refused >= 9


@pytest.mark.parametrize("voice", [SLT, KAL], ids=["slt", "kal"])
def test_the_shipped_voices_joined_readings_are_never_refused(voice: Path) -> None:
    """The demo's and the tests' consent recordings: with digital silence in their pauses,
    3 % (slt) and 5 % (kal) of them were refused, and the demo with them, whenever the
    phrase's words gave the recording a background to follow."""
    rng = random.Random(0)
    for _ in range(100):
        phrase = new_phrase(rng.choice)
        code = [rng.choice(CODE_WORDS) for _ in range(CODE_LENGTH)]
        assert splice_problem(spoken_consent(voice, phrase, code)) is None, (phrase, code)


@pytest.mark.parametrize("voice", [SLT, KAL], ids=["slt", "kal"])
def test_pieces_joined_with_digital_silence_are_refused(voice: Path) -> None:
    rng = np.random.default_rng(7)
    attack = spliced_consent(voice, EARLIER, PHRASES[0], CODES[0], rng, gap_s=0.2)
    problem = splice_problem(attack)
    assert problem is not None and "digital silence" in problem


def test_a_piece_from_a_louder_room_is_refused() -> None:
    """One piece from a room 14 dB louder is enough: the background steps where it
    begins. Misses come from rooms whose noise is a strong low rumble, too uneven in
    20 ms frames to count as steady background (19 of 20 seeds caught)."""
    reading = spoken_consent(SLT, PHRASES[0], CODES[0])
    rate, x = reading.sample_rate, reading.mono()
    statement = read_audio(SLT / "statement.flac")
    pause = statement.frames + int(0.15 * rate)  # in the pause after the first sentence
    assert np.max(np.abs(x[pause - rate // 20 : pause + rate // 20])) < 10 ** (-75 / 20)
    refused = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        quiet = in_room(Audio(x[:pause, None], rate), rng, level_dbfs=-62.0).mono()
        loud = in_room(Audio(x[pause:, None], rate), rng, level_dbfs=-48.0).mono()
        refused += splice_problem(Audio(np.concatenate([quiet, loud])[:, None], rate)) is not None
    assert refused >= 9


def test_a_mid_take_drop_to_digital_silence_is_refused() -> None:
    rng = np.random.default_rng(4)
    take = in_room(spoken_consent(SLT, PHRASES[1], CODES[1]), rng, level_dbfs=-55.0).mono()
    rate = 16_000
    take[5 * rate : 5 * rate + rate // 10] = 0.0
    assert "digital silence" in (splice_problem(Audio(take[:, None], rate)) or "")


def _festival_slt(text: str) -> tuple[np.ndarray, int]:
    from guardian.corpus import festival

    return festival(text, "cmu_us_slt_arctic_hts")


def _espeak(text: str) -> tuple[np.ndarray, int]:
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return samples, int(rate)


VOICES: dict[str, tuple[str, Callable[[str], tuple[np.ndarray, int]]]] = {
    "festival-slt": ("text2wave", _festival_slt),
    "espeak-ng": ("espeak-ng", _espeak),
}


@pytest.mark.parametrize("voice", sorted(VOICES))
@pytest.mark.parametrize("i", range(len(CODES)), ids=["code1", "code2", "code3"])
def test_a_genuine_reading_in_one_take_is_accepted(voice: str, i: int) -> None:
    program, speak = VOICES[voice]
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")
    code = CODES[i]
    samples, rate = speak(render_statement(name=NAME, org=ORG, code=code, phrase=PHRASES[i]))
    reading = Audio((0.5 * samples / np.abs(samples).max()).astype(np.float32)[:, None], rate)
    assert splice_problem(reading) is None
    rng = np.random.default_rng(sum(map(len, code)))
    for level in (-62.0, -50.0):
        assert splice_problem(in_room(reading, rng, level_dbfs=level)) is None, level
