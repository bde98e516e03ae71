"""The detector's speed search: a watermarked clip played faster or slower is found by
where its spectral lines moved, and nothing counts without the tone code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from guardian.audio import Audio, read_audio, resample
from guardian.watermark import SHIPPED_CARD, Payload, _scoring, embed, load_card, load_detector
from guardian.watermark._scoring import slowed, speed_candidates, window_score

SPEECH = Path(__file__).parents[1] / "data" / "voices" / "kal" / "sample-01.flac"


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    audio = read_audio(SPEECH)
    return np.asarray(resample(audio.mono(), audio.sample_rate, 16000), dtype=np.float32)


@pytest.mark.parametrize(("up", "down"), [(20, 19), (20, 21), (25, 22)])
def test_a_clip_played_faster_or_slower_is_found_with_its_payload(
    speech: np.ndarray, up: int, down: int
) -> None:
    """x0.95, x1.05 and x1.136, none a speed the detector was trained on: without the
    search each reads as unwatermarked."""
    model, detector = load_card(SHIPPED_CARD), load_detector()
    marked = embed(model, Audio(speech[:, None], 16000), Payload(0x1234)).mono()
    changed = Audio(resample_poly(marked, up, down).astype(np.float32)[:, None], 16000)
    factor = down / up
    found = detector.detect(changed)
    assert found.detected and found.payload == Payload(0x1234), found
    assert abs(found.speed / factor - 1) < 1e-3
    assert found.segments and found.segments[-1].end_s <= changed.duration + 0.1
    blind = dataclasses.replace(detector.embed, speed_lines_hz=None)
    assert not dataclasses.replace(detector, embed=blind).detect(changed).detected


@pytest.mark.parametrize(("up", "down"), [(20, 19), (20, 21)])
def test_a_short_clip_is_confirmed_by_its_codes_phases(
    monkeypatch: pytest.MonkeyPatch, up: int, down: int
) -> None:
    """2 s of speech at x0.95 or x1.05 reads only 5-9 of its 16 bits with confidence, too
    few to confirm the look; the phases of its tones still fit the code's own."""
    audio = read_audio(SPEECH.with_name("sample-02.flac"))
    speech = np.asarray(resample(audio.mono(), audio.sample_rate, 16000), np.float32)[:32000]
    detector = load_detector()
    marked = embed(load_card(SHIPPED_CARD), Audio(speech[:, None], 16000), Payload(0x1234))
    changed = Audio(resample_poly(marked.mono(), up, down).astype(np.float32)[:, None], 16000)
    found = detector.detect(changed)
    assert found.detected and abs(found.speed / (down / up) - 1) < 1e-3, found
    assert sum(c >= 0.95 for c in found.bit_confidence) < _scoring.SPEED_CONFIRM_BITS
    monkeypatch.setattr(_scoring, "SPEED_CONFIRM_ALIGNMENT", 17.0)  # bits alone: unconfirmed
    assert not detector.detect(changed).detected


def test_a_tone_moved_onto_the_detectors_lines_does_not_count(speech: np.ndarray) -> None:
    """The detector reads narrow lines near 1.6 kHz. Speech with a speech-shaped tone at
    1716 Hz, slowed by the search until the tone sits on a line, makes the detector fire;
    without the tone code it is not a detection."""
    detector = load_detector()
    t = np.arange(len(speech)) / 16000
    envelope = np.convolve(np.abs(speech), np.ones(320) / 320, "same")
    tone = np.sin(2 * np.pi * 1716 * t) * envelope / envelope.max() * 0.05 * np.abs(speech).max()
    bait = Audio((speech + tone).astype(np.float32)[:, None], 16000)
    look = detector.look(bait)
    assert max(window_score(o.prob) for o in look.others if o.prob is not None) >= 0.9
    found = detector.read(look)
    assert not found.detected and found.speed == 1.0


@pytest.mark.parametrize("factor", [0.83, 0.97, 1.21])
def test_speed_candidates_find_lines_moved_by_a_speed_change(factor: float) -> None:
    rng = np.random.default_rng(3)
    t = np.arange(4 * 16000) / 16000
    lines = sum(np.sin(2 * np.pi * hz * factor * t + rng.uniform(0, 6)) for hz in (1600, 1700))
    x = rng.standard_normal(len(t)) + 0.05 * lines
    found = speed_candidates(x.astype(np.float32), (1600.0, 1650.0, 1700.0))
    assert any(abs(f / factor - 1) < 2e-4 for f in found), found
    assert speed_candidates(rng.standard_normal(len(t)), (1600.0, 1650.0, 1700.0)) == []


def test_slowed_lowers_a_tone_and_lengthens_the_clip() -> None:
    t = np.arange(16000) / 16000
    out = slowed(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 1.25)
    assert len(out) == 20000
    peak = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
    assert abs(peak - 800) < 1
