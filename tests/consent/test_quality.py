"""Quality gates on the shipped voices and on variants derived from them in memory."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.audio import Audio, read_audio, resample
from guardian.consent._quality import (
    MAX_CLIPPED_FRACTION,
    MIN_SAMPLE_RATE,
    MIN_SNR_DB,
    MIN_SPEECH_S,
    MIN_TOTAL_SPEECH_S,
    clipped_fraction,
    estimate_snr_db,
    measure,
    total_speech_problem,
)

ROOT = Path(__file__).resolve().parents[2]
VOICES = (ROOT / "guardian/app/assets/consent/slt", ROOT / "tests/data/voices/kal")
SAMPLES = [folder / f"sample-{i:02d}.flac" for folder in VOICES for i in range(1, 7)]
SHIPPED = [*SAMPLES, *(folder / "statement.flac" for folder in VOICES)]


@functools.cache
def _clip(index: int) -> Audio:
    return read_audio(SHIPPED[index])


def _mono(index: int) -> tuple[np.ndarray, int]:
    audio = _clip(index)
    return audio.mono().astype(np.float64), audio.sample_rate


def _with_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """White noise at ``snr_db`` below the clip's mean power (pauses included)."""
    noise = np.random.default_rng(seed).standard_normal(len(x))
    return np.asarray(x + noise * np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10)))


def _audio(x: np.ndarray, rate: int) -> Audio:
    return Audio(np.asarray(x, dtype=np.float32)[:, None], rate)


def _peak_at(x: np.ndarray, dbfs: float) -> np.ndarray:
    return np.asarray(x / np.max(np.abs(x)) * 10 ** (dbfs / 20))


# --- the gates on shipped and derived recordings -------------------------------------


@pytest.mark.parametrize("index", range(len(SHIPPED)))
def test_shipped_recordings_pass(index: int) -> None:
    q = measure(_clip(index))
    assert q, q.problems
    assert q.sample_rate >= MIN_SAMPLE_RATE
    assert q.snr_db >= MIN_SNR_DB
    assert q.clipped_fraction == 0.0
    assert MIN_SPEECH_S <= q.speech_s <= _clip(index).duration


def test_shipped_samples_hold_enough_speech_together() -> None:
    for voice in (range(6), range(6, 12)):
        assert total_speech_problem([measure(_clip(i)) for i in voice]) is None


@pytest.mark.parametrize("index", [0, 7])
def test_white_noise_at_20_db_fails_the_snr_gate(index: int) -> None:
    x, rate = _mono(index)
    q = measure(_audio(_with_noise(_peak_at(x, -6), 20.0, seed=index), rate))
    assert not q
    assert q.snr_db < MIN_SNR_DB
    assert len(q.problems) == 1
    assert q.problems[0].startswith("estimated SNR ")
    assert q.problems[0].endswith(" dB is below 30 dB")


@pytest.mark.parametrize("index", [0, 7])
def test_normalised_to_minus_1_dbfs_passes_and_6_db_hotter_clips(index: int) -> None:
    x, rate = _mono(index)
    loud = _peak_at(x, -1.0)
    assert measure(_audio(loud, rate))
    driven = np.clip(loud * 2.0, -1.0, 1.0)
    q = measure(_audio(driven, rate))
    assert q.clipped_fraction > MAX_CLIPPED_FRACTION
    assert q.problems == (f"clipped ({100 * q.clipped_fraction:.2g}% of samples at full scale)",)
    assert 0.05 <= 100 * q.clipped_fraction <= 5.0


def test_clipping_survives_a_later_gain_change() -> None:
    x, _ = _mono(0)
    driven_then_lowered = np.clip(_peak_at(x, -1.0) * 2.0, -1.0, 1.0) * 0.5
    assert clipped_fraction(driven_then_lowered) > MAX_CLIPPED_FRACTION


def test_8_khz_fails_the_rate_gate() -> None:
    x, rate = _mono(1)
    q = measure(_audio(resample(x.astype(np.float32), rate, 8000), 8000))
    assert "sample rate 8000 Hz is below 16000 Hz" in q.problems


def test_a_one_second_cut_has_too_little_speech() -> None:
    audio = _clip(2)
    q = measure(Audio(audio.samples[: audio.sample_rate], audio.sample_rate))
    assert q.speech_s < MIN_SPEECH_S
    assert any(p.startswith("only ") and p.endswith(" s of speech, 2 s needed") for p in q.problems)


def test_short_samples_fail_the_total_speech_gate() -> None:
    cuts = []
    for i in range(6):
        audio = _clip(i)
        cuts.append(Audio(audio.samples[: int(2.4 * audio.sample_rate)], audio.sample_rate))
    qualities = [measure(a) for a in cuts]
    total = sum(q.speech_s for q in qualities)
    assert total < MIN_TOTAL_SPEECH_S
    assert total_speech_problem(qualities) == (
        f"{total:.1f} s of speech across all samples is below 15 s"
    )
    assert total_speech_problem([*qualities, *qualities, *qualities]) is None


def test_digital_silence_has_no_speech() -> None:
    q = measure(Audio(np.zeros((16_000 * 3, 1), dtype=np.float32), 16_000))
    assert q.speech_s == 0.0 and not q


# --- properties of the estimators ----------------------------------------------------

clip_index = st.integers(min_value=0, max_value=len(SAMPLES) - 1)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=40)
@given(clip_index, st.floats(-10.0, 70.0), st.floats(0.0, 40.0), seeds)
def test_more_noise_never_raises_the_estimate(
    index: int, snr_db: float, extra_db: float, seed: int
) -> None:
    x, rate = _mono(index)
    cleaner = estimate_snr_db(_with_noise(x, snr_db, seed), rate)
    noisier = estimate_snr_db(_with_noise(x, snr_db - extra_db, seed), rate)
    assert noisier <= cleaner + 0.1


@settings(max_examples=40)
@given(clip_index, st.floats(10.0, 45.0), seeds)
def test_the_estimate_tracks_the_true_snr(index: int, snr_db: float, seed: int) -> None:
    # Noise is set against the mean power over the whole clip, pauses included, while
    # the estimator takes the speech level from the louder half: it reads ~3 dB high.
    x, rate = _mono(index)
    estimate = estimate_snr_db(_with_noise(x, snr_db, seed), rate)
    assert snr_db - 1.0 <= estimate <= snr_db + 5.0


@settings(max_examples=30)
@given(clip_index, st.floats(15.0, 40.0), st.floats(-30.0, -1.0), seeds)
def test_the_estimate_ignores_the_recording_level(
    index: int, snr_db: float, peak_dbfs: float, seed: int
) -> None:
    x, rate = _mono(index)
    noisy = _with_noise(x, snr_db, seed)
    assert estimate_snr_db(_peak_at(noisy, peak_dbfs), rate) == pytest.approx(
        estimate_snr_db(noisy, rate), abs=0.5
    )


@settings(max_examples=20)
@given(st.floats(1e-4, 0.5), st.sampled_from([16_000, 44_100, 48_000]), seeds)
def test_steady_noise_alone_scores_near_0_db(level: float, rate: int, seed: int) -> None:
    noise = level * np.random.default_rng(seed).standard_normal(rate * 3)
    assert estimate_snr_db(noise, rate) < 3.0


@settings(max_examples=30)
@given(clip_index, st.floats(-40.0, -0.5))
def test_unclipped_speech_at_any_level_has_no_flat_tops(index: int, peak_dbfs: float) -> None:
    x, _ = _mono(index)
    assert clipped_fraction(_peak_at(x, peak_dbfs)) == 0.0


@settings(max_examples=30)
@given(clip_index, st.floats(6.0, 20.0))
def test_6_db_or_more_of_overdrive_is_always_caught(index: int, over_db: float) -> None:
    x, _ = _mono(index)
    driven = np.clip(_peak_at(x, -1.0) * 10 ** (over_db / 20), -1.0, 1.0)
    assert clipped_fraction(driven) > MAX_CLIPPED_FRACTION
