"""The payload's tone code: its waveform and its reader."""

from __future__ import annotations

import numpy as np
import pytest

from guardian.audio import resample, speechlike
from guardian.watermark._model import EmbedConfig
from guardian.watermark._scoring import slowed
from guardian.watermark._tones import _alignment, code_waveform, read_bits, read_code
from tests.conftest import wrong_bit_confidences

TONES = tuple((700.0 + 100 * i, 750.0 + 100 * i) for i in range(9)) + tuple(
    (1950.0 + 100 * i, 2000.0 + 100 * i) for i in range(7)
)
MSG = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0]


def _marked(seconds: float, level_db: float, *, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    speech = speechlike(seconds, seed=seed).astype(np.float64)
    code = code_waveform(TONES, MSG, len(speech), phase_seed=7)
    code *= np.sqrt(np.mean(speech**2) / np.mean(code**2)) * 10 ** (-level_db / 20)
    return speech, speech + code


def test_code_repeats_every_latent_frame_and_picks_one_tone_per_pair() -> None:
    wave = code_waveform(TONES, MSG, 3200, phase_seed=7)
    assert np.allclose(wave[320:], wave[:-320], atol=1e-3)  # 50 Hz grid: a 320-sample period
    spectrum = np.abs(np.fft.rfft(wave))  # 3200 samples: 5 Hz bins
    for bit, pair in zip(MSG, TONES, strict=True):
        on, off = (int(pair[b] / 5) for b in (bit, 1 - bit))
        assert spectrum[on] > 100 * spectrum[off]


def test_reader_recovers_the_code_under_speech_with_high_confidence() -> None:
    _, marked = _marked(4.0, level_db=20.0)
    bits, confidence = read_bits(marked, np.ones(len(marked) // 160, bool), TONES)
    assert bits == MSG
    assert min(confidence) > 0.95


def test_unmarked_speech_gives_unclear_bits() -> None:
    speech, _ = _marked(4.0, level_db=20.0)
    _, confidence = read_bits(speech, np.ones(len(speech) // 160, bool), TONES)
    assert np.median(confidence) < 0.9


def test_confidence_is_calibrated_on_unmarked_audio() -> None:
    """Chance should bring few bits to the floor of 0.95 and never all 16 of a clip."""
    confident = []
    for seed in range(6):
        speech = speechlike(4.0, seed=20 + seed)
        _, confidence = read_bits(speech, np.ones(len(speech) // 160, bool), TONES)
        confident.append(np.array(confidence) >= 0.95)
    assert np.mean(confident) <= 0.12
    assert not any(c.all() for c in confident)


def test_coherent_reading_finds_a_code_far_under_the_speech() -> None:
    """The code 40 dB under the speech (each tone 52 dB): summed coherently over 6 s,
    every bit is right and clear (frame by frame, a third of them were unclear)."""
    _, marked = _marked(6.0, level_db=40.0)
    bits, confidence = read_bits(marked, np.ones(len(marked) // 160, bool), TONES)
    assert bits == MSG
    assert np.mean(np.array(confidence) >= 0.95) >= 0.9


def test_reader_reads_only_the_frames_it_is_told_to_trust() -> None:
    speech, marked = _marked(4.0, level_db=20.0)
    half = len(speech) // 2
    spliced = np.concatenate([speech[:half], marked[half:]])
    marks = np.arange(len(spliced) // 160) >= half // 160
    bits, confidence = read_bits(spliced, marks, TONES)
    assert bits == MSG and min(confidence) > 0.5


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_reader_follows_a_speed_change(factor: float) -> None:
    _, marked = _marked(5.0, level_db=20.0)
    # played back `factor` times as fast: every frequency moves by the factor
    sped = resample(marked.astype(np.float32), round(16000 * factor), 16000)
    bits, _ = read_bits(sped, np.ones(len(sped) // 160, bool), TONES)
    assert bits == MSG


def test_a_cropped_code_aligns_with_its_own_phases_and_not_with_others() -> None:
    """Wherever the clip was cut, the tones' phases fit the code's starting phases shifted
    by one start; a code made with other phases (or none) does not fit them."""
    speech, marked = _marked(3.0, level_db=25.0)
    ones = np.ones(len(marked) // 160, bool)
    for cut in (0, 517, 1234):
        code = read_code(marked[cut:], ones, TONES)
        assert code.bits == MSG and code.alignment >= 14, (cut, code.alignment)
    foreign = speech + code_waveform(TONES, MSG, len(speech), phase_seed=8) * np.std(
        marked - speech
    )
    assert read_code(foreign, ones, TONES).alignment < 11
    assert read_code(speech, ones, TONES).alignment < 11


def test_alignment_by_chance_is_as_rare_as_documented() -> None:
    """Unit phasors at random (speech, music or another code under the tones): the best of
    the code's starts reaches 11 about once in 6,900 reads, and 10 once in 1,400."""
    rng = np.random.default_rng(1)
    pairs = np.asarray(TONES)
    high = 0
    for _ in range(5_000):
        sums = np.exp(2j * np.pi * rng.uniform(size=pairs.shape))
        high += _alignment(sums, list(rng.integers(0, 2, 16)), pairs) >= 10
    assert high <= 12  # 4 expected; the test fails if chance fits the phases often


def test_a_drift_search_reads_a_code_whose_time_scale_is_slightly_off() -> None:
    """A speed undone from an estimate 1.5e-4 off: every tone slips against its expected
    phase over the clip; the drift search finds the slip back."""
    _, marked = _marked(8.0, level_db=35.0)
    off = slowed(marked.astype(np.float32), 1.00015).astype(np.float64)
    ones = np.ones(len(off) // 160, bool)
    plain = read_code(off, ones, TONES, speeds=(1.0,))
    searched = read_code(off, ones, TONES, speeds=(1.0,), drift=2e-4)
    assert searched.bits == MSG and min(searched.confidence) >= 0.95
    assert searched.alignment >= 14 > plain.alignment
    assert sum(c >= 0.95 for c in plain.confidence) < 16


def test_tiny_input_and_tones_near_nyquist_are_read_without_error() -> None:
    bits, confidence = read_bits(np.zeros(100), np.ones(1, bool), TONES)
    assert len(bits) == 16 and all(0.0 <= c <= 1.0 for c in confidence)
    high = tuple((6400.0 + 100 * i, 6450.0 + 100 * i) for i in range(16))  # x1.1: > 8 kHz
    bits, _ = read_bits(np.random.default_rng(0).standard_normal(8000), np.ones(50, bool), high)
    assert len(bits) == 16


@pytest.mark.parametrize(
    "tones",
    [
        TONES[:15],  # one pair short
        (*TONES[:15], TONES[0]),  # a tone used twice
        (*TONES[:15], (2605.0, 2620.0)),  # off the reader's 10 Hz bins
        (*TONES[:15], (2650.0, 2800.0)),  # outside the band
    ],
)
def test_bad_tone_codes_are_refused(tones: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ValueError, match="payload_tones"):
        EmbedConfig(band_hz=(600.0, 2700.0), payload_tones=tones)


def test_tone_code_survives_the_card_round_trip() -> None:
    embed = EmbedConfig(band_hz=(600.0, 2700.0), payload_tones=TONES)
    assert EmbedConfig(**embed.to_dict()) == embed
    plain = EmbedConfig(band_hz=None, payload_tones=None, code_snr_db=None)  # official models
    assert EmbedConfig(**plain.to_dict()) == plain
    added = EmbedConfig(band_hz=(600.0, 2700.0), payload_tones=OFF_GRID, code_snr_db=27.0)
    assert EmbedConfig(**added.to_dict()) == added


OFF_GRID = tuple((970.0 + 100 * i, 1020.0 + 100 * i) for i in range(16))
"""The shipped code: tones 20 Hz above the generator's 50 Hz grid."""


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"payload_tones": OFF_GRID, "code_snr_db": None}, "needs code_snr_db"),
        ({"payload_tones": None, "code_snr_db": 27.0}, "needs payload_tones"),
        ({"payload_tones": ((975.0, 1020.0), *OFF_GRID[1:]), "code_snr_db": 27.0}, "10 Hz"),
        ({"payload_tones": OFF_GRID, "code_snr_db": 27.0, "code_mask_power": 0.0}, "code_mask"),
    ],
)
def test_bad_added_tone_codes_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EmbedConfig(band_hz=(600.0, 2700.0), **kwargs)  # type: ignore[arg-type]


def test_the_shipped_model_carries_its_payload_through_mp3() -> None:
    """The shipped model reads 16 bits back from speech, also after MP3 64k: at most one
    wrong, and that one flagged as unclear. The detector marks the frames that are read."""
    from pathlib import Path

    from guardian.audio import read_audio
    from guardian.watermark import Payload, detect, embed, load_card
    from guardian.watermark._loader import SHIPPED_CARD
    from guardian.watermark.attacks import by_name

    model = load_card(SHIPPED_CARD)
    assert model.embed.payload_tones is not None
    speech = read_audio(Path(__file__).parents[1] / "data" / "voices" / "kal" / "sample-01.flac")
    marked = embed(model, speech, Payload(0xA5C3))
    for found in (
        detect(model, marked),
        detect(model, by_name("mp3_64k")(marked, np.random.default_rng(0))),
    ):
        assert found.detected
        wrong = wrong_bit_confidences(found, Payload(0xA5C3))
        assert len(wrong) <= 1 and all(c < found.confidence_floor for c in wrong)
