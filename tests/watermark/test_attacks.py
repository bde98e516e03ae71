"""The benchmark's attack suite: shapes, purity, and that each parameter does what it says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.audio import Audio, speechlike
from guardian.errors import UsageError
from guardian.watermark.attacks import ATTACKS, Attack, by_name

RATE = 24000


def _speech(seconds: float = 3.0, *, rate: int = RATE, seed: int = 5, channels: int = 1) -> Audio:
    mono = speechlike(seconds, sample_rate=rate, seed=seed)
    return Audio(np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1), rate)


def _tones(*freqs: float, seconds: float = 2.0, rate: int = RATE) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs)
    return Audio(np.asarray(x, dtype=np.float32)[:, None], rate)


def _level_db(audio: Audio, freq: float) -> float:
    """Level of the spectral peak near ``freq`` (Hann window), in dB."""
    x = audio.mono()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / audio.sample_rate)
    band = np.abs(f - freq) < 20
    return float(20 * np.log10(spec[band].max() + 1e-12))


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


OTHER = _speech(4.0, seed=11)


def _expected_frames(name: str, audio: Audio) -> tuple[int, int]:
    """Bounds on the output length of ``name`` applied to ``audio``."""
    n, sr = audio.frames, audio.sample_rate
    if name.startswith("speed_"):
        target = n / float(name.removeprefix("speed_"))
        return int(target) - 1, int(target) + 1
    if name == "crop_2s":
        return 2 * sr, 2 * sr
    if name == "splice":
        return OTHER.frames + 2 * sr, OTHER.frames + 3 * sr
    return n, n


def test_suite_names_are_unique_and_described() -> None:
    names = [a.name for a in ATTACKS]
    assert len(names) == len(set(names)) == 23
    assert names[0] == "none"
    assert all(a.description for a in ATTACKS)
    assert by_name("mp3_64k") is ATTACKS[names.index("mp3_64k")]


def test_unknown_attack_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="mp3_64k"):
        by_name("mp3_65k")


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
@pytest.mark.parametrize("channels", [1, 2])
def test_attack_keeps_rate_channels_and_length_and_leaves_input(
    attack: Attack, channels: int
) -> None:
    audio = _speech(3.0, channels=channels)
    before = audio.samples.copy()
    out = attack(audio, np.random.default_rng(0), other=OTHER)
    assert out is not audio and out.samples is not audio.samples
    np.testing.assert_array_equal(audio.samples, before)
    assert out.sample_rate == RATE and out.channels == channels
    lo, hi = _expected_frames(attack.name, audio)
    assert lo <= out.frames <= hi
    assert np.isfinite(out.samples).all()
    if attack.name == "none":
        np.testing.assert_array_equal(out.samples, before)
    else:
        assert not np.array_equal(out.samples, before)


@pytest.mark.parametrize("name", ["splice", "mix_speech_10db"])
def test_attacks_that_need_other_speech_refuse_to_run_without_it(name: str) -> None:
    with pytest.raises(ValueError, match="other speech"):
        by_name(name)(_speech(), np.random.default_rng(0))


def test_random_attacks_are_reproducible_from_the_rng() -> None:
    audio = _speech()
    for name in ("white_noise_20db", "pink_noise", "crop_2s", "splice"):
        a = by_name(name)(audio, np.random.default_rng(7), other=OTHER)
        b = by_name(name)(audio, np.random.default_rng(7), other=OTHER)
        np.testing.assert_array_equal(a.samples, b.samples)


def test_white_noise_is_at_20_db_snr() -> None:
    audio = _speech(4.0)
    out = by_name("white_noise_20db")(audio, np.random.default_rng(1))
    assert _snr_db(audio.samples, out.samples) == pytest.approx(20.0, abs=0.3)


def test_pink_noise_scales_to_the_signal_and_is_pink() -> None:
    for gain in (1.0, 0.1):
        audio = Audio(_speech(4.0).samples * gain, RATE)
        out = by_name("pink_noise")(audio, np.random.default_rng(2))
        assert _snr_db(audio.samples, out.samples) == pytest.approx(0.0, abs=0.3)
    noise = (out.samples - audio.samples)[:, 0]
    spec = np.abs(np.fft.rfft(noise)) ** 2
    f = np.fft.rfftfreq(len(noise), 1 / RATE)
    low = spec[(f > 100) & (f < 200)].mean()
    high = spec[(f > 6400) & (f < 12800)].mean()
    assert 10 * np.log10(low / high) == pytest.approx(10 * np.log10(64), abs=3)


@pytest.mark.parametrize(
    ("name", "kept", "killed"),
    [
        ("lowpass_3k", 1000.0, 4000.0),
        ("lowpass_5k", 4000.0, 7000.0),
        ("highpass_500", 2000.0, 150.0),
        ("bandpass_500_5000", 1500.0, 150.0),
        ("bandpass_500_5000", 1500.0, 7000.0),
        ("resample_8k", 1000.0, 5000.0),
    ],
)
def test_filters_keep_the_passband_and_kill_the_stopband(
    name: str, kept: float, killed: float
) -> None:
    audio = _tones(kept, killed)
    out = by_name(name)(audio, np.random.default_rng(0))
    assert _level_db(out, kept) == pytest.approx(_level_db(audio, kept), abs=1.0)
    assert _level_db(audio, killed) - _level_db(out, killed) > 30


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_duration_and_pitch_by_the_factor(factor: float) -> None:
    audio = _tones(1000.0, seconds=2.2)
    out = by_name(f"speed_{factor}")(audio, np.random.default_rng(0))
    assert out.duration == pytest.approx(audio.duration / factor, abs=1e-3)
    assert _level_db(out, 1000.0 * factor) > _level_db(out, 1000.0) + 20


def test_boost_and_duck_scale_exactly_without_clipping() -> None:
    audio = _speech()
    boosted = by_name("boost")(audio, np.random.default_rng(0))
    ducked = by_name("duck")(audio, np.random.default_rng(0))
    np.testing.assert_allclose(boosted.samples, audio.samples * 10, rtol=1e-6)
    np.testing.assert_allclose(ducked.samples, audio.samples * 0.1, rtol=1e-6)
    assert np.abs(boosted.samples).max() > 1.0


def test_echo_adds_a_half_volume_copy_half_a_second_later() -> None:
    x = np.zeros((RATE, 1), dtype=np.float32)
    x[1000] = 0.5
    out = by_name("echo")(Audio(x, RATE), np.random.default_rng(0)).samples[:, 0]
    assert out[1000] == pytest.approx(0.5)
    assert out[1000 + RATE // 2] == pytest.approx(0.25)
    assert np.count_nonzero(np.abs(out) > 1e-6) == 2


def test_crop_and_splice_carry_an_exact_excerpt() -> None:
    audio = _speech(5.0)
    rng = np.random.default_rng(3)
    crop = by_name("crop_2s")(audio, rng).samples[:, 0]
    starts = np.flatnonzero(audio.samples[:, 0] == crop[0])
    assert any(np.array_equal(audio.samples[s : s + len(crop), 0], crop) for s in starts)
    spliced = by_name("splice")(audio, rng, other=OTHER).samples[:, 0]
    inserted = spliced.size - OTHER.frames
    other = OTHER.samples[:, 0]
    at = int(np.flatnonzero(spliced[: OTHER.frames] != other)[0])
    np.testing.assert_array_equal(spliced[:at], other[:at])
    np.testing.assert_array_equal(spliced[at + inserted :], other[at:])


def test_mix_adds_other_speech_10_db_below_the_clip() -> None:
    audio = _speech(3.0)
    other = Audio(_speech(1.0, rate=16000, seed=9).samples * 0.3, 16000)  # looped, resampled
    out = by_name("mix_speech_10db")(audio, np.random.default_rng(0), other=other)
    assert _snr_db(audio.samples, out.samples) == pytest.approx(10.0, abs=0.2)


def test_mp3_64k_keeps_speech_recognisable() -> None:
    audio = _speech(3.0)
    out = by_name("mp3_64k")(audio, np.random.default_rng(0))
    a, b = audio.samples[:, 0], out.samples[:, 0]
    lags = np.arange(-2000, 2001)
    corr = np.correlate(b, a, mode="full")[len(a) - 1 + lags]
    best = int(lags[np.argmax(corr)])
    shifted = np.roll(b, -best)
    assert np.corrcoef(a[3000:-3000], shifted[3000:-3000])[0, 1] > 0.95


CHEAP = [a for a in ATTACKS if not a.name.startswith(("mp3", "aac", "opus"))]


@settings(max_examples=15, deadline=None)
@given(
    index=st.integers(0, len(CHEAP) - 1),
    rate=st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    seconds=st.floats(0.6, 3.0),
    gain=st.floats(1e-3, 1.0),
)
def test_cheap_attacks_are_pure_and_finite_at_any_rate(
    index: int, rate: int, seconds: float, gain: float
) -> None:
    audio = Audio(_speech(seconds, rate=rate).samples * gain, rate)
    before = audio.samples.copy()
    out = CHEAP[index](audio, np.random.default_rng(0), other=OTHER)
    np.testing.assert_array_equal(audio.samples, before)
    assert out.sample_rate == rate and np.isfinite(out.samples).all()
