"""Measuring a clip against its speaker: speech timing, the bars, and real recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from guardian.app._consent_voice import held_out_recordings
from guardian.app._voice_match import (
    MIN_SECS,
    RATE_TOLERANCE,
    VoiceMatch,
    match_voice,
    speech_seconds,
)
from guardian.audio import Audio, read_audio
from tests.app.conftest import SLT

KAL = Path(__file__).resolve().parents[1] / "data" / "voices" / "kal"


def _tone(before_s: float, tone_s: float, after_s: float, rate: int = 16_000) -> Audio:
    t = np.arange(int(tone_s * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    x = np.concatenate([np.zeros(int(before_s * rate)), tone, np.zeros(int(after_s * rate))])
    return Audio(x.astype(np.float32)[:, None], rate)


def test_speech_time_leaves_out_silence_at_either_end() -> None:
    assert speech_seconds(_tone(0.7, 2.0, 1.3)) == pytest.approx(2.0, abs=0.02)
    assert speech_seconds(Audio(np.zeros((16_000, 1), np.float32), 16_000)) == 0.0


def _match(clip_s: float, secs: float) -> VoiceMatch:
    return VoiceMatch(clip_s=clip_s, speaker_s=8.0, secs=secs, base_secs=0.5, references=4)


def test_bars_are_the_rate_tolerance_and_the_similarity() -> None:
    assert _match(8.0 * (1 + RATE_TOLERANCE) - 0.01, MIN_SECS)
    assert not _match(8.0 * (1 + RATE_TOLERANCE) + 0.01, 0.9)
    assert not _match(8.0 * (1 - RATE_TOLERANCE) - 0.01, 0.9)
    assert not _match(8.0, MIN_SECS - 0.01)
    doc = _match(14.0, 0.5).to_dict()
    assert doc["rate_ratio"] == pytest.approx(1.75) and not doc["rate_ok"]
    assert doc["secs"] == 0.5 and not doc["secs_ok"]


def test_the_speaker_matches_its_held_out_recordings_and_another_voice_does_not() -> None:
    refs = [read_audio(p) for p in held_out_recordings(SLT)]
    assert len(refs) >= 3 and (SLT / "heldout-demo.flac").exists()
    reading = read_audio(SLT / "heldout-demo.flac")
    own = match_voice(
        read_audio(SLT / "sample-01.flac"),
        reading=reading,
        references=refs,
        base=read_audio(KAL / "sample-01.flac"),
    )
    assert own.secs > 0.85 > own.base_secs
    assert own.speaker_s == pytest.approx(speech_seconds(reading))
