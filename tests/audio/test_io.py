from __future__ import annotations

import contextlib
import io
import math
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.audio import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    Audio,
    Container,
    OutputFormat,
    decode_bytes,
    encode_bytes,
    flip_wav_sample,
    max_samples,
    read_audio,
    sniff,
    speechlike,
    wav_data_span,
)
from guardian.errors import (
    AudioError,
    AudioTooLongError,
    InvalidSamplesError,
    UnreadableAudioError,
    UsageError,
)


def _audio(seconds: float = 1.0, rate: int = 16000) -> Audio:
    return Audio(speechlike(seconds, sample_rate=rate, seed=3)[:, None], rate)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "aac", "opus"])
def test_encode_decode_round_trip_keeps_duration(fmt: str) -> None:
    a = _audio(2.0)
    back = decode_bytes(encode_bytes(a, fmt, bitrate_kbps=64))
    assert abs(back.duration - 2.0) < 0.15  # codec priming and frame padding
    assert back.container is not None


def test_pcm_formats_are_bit_exact() -> None:
    a = decode_bytes(encode_bytes(_audio(), OutputFormat.WAV))
    for fmt in (OutputFormat.WAV, OutputFormat.FLAC):
        again = decode_bytes(encode_bytes(a, fmt))
        assert again.pcm16() == a.pcm16()


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(UnreadableAudioError, match="empty file"):
        read_audio(p)


def test_not_audio(tmp_path: Path) -> None:
    p = tmp_path / "notes.wav"
    p.write_text("these are not samples\n" * 10)
    with pytest.raises(UnreadableAudioError, match="not an audio file"):
        read_audio(p)


def test_truncated_wav(tmp_path: Path) -> None:
    data = encode_bytes(_audio(), OutputFormat.WAV)
    p = tmp_path / "cut.wav"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableAudioError, match="truncated WAV"):
        read_audio(p)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudioError, match="no such file"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(UnreadableAudioError, match="is a directory"):
        read_audio(tmp_path)


def test_too_long(tmp_path: Path) -> None:
    p = tmp_path / "long.wav"
    p.write_bytes(encode_bytes(_audio(3.0), OutputFormat.WAV))
    with pytest.raises(AudioTooLongError, match="limit"):
        read_audio(p, max_seconds=2.0)
    p2 = tmp_path / "long.mp3"
    p2.write_bytes(encode_bytes(_audio(3.0), OutputFormat.MP3))
    with pytest.raises(AudioTooLongError):
        read_audio(p2, max_seconds=2.0)


def test_nan_samples_rejected() -> None:
    buf = io.BytesIO()
    x = np.zeros((1600, 1), dtype=np.float32)
    x[100] = np.nan
    sf.write(buf, x, 16000, format="WAV", subtype="FLOAT")
    with pytest.raises(InvalidSamplesError, match="NaN"):
        decode_bytes(buf.getvalue())


def test_corrupt_mp3_payload() -> None:
    with pytest.raises(UnreadableAudioError):
        decode_bytes(b"ID3" + b"\x00" * 7 + b"\x13" * 500, name="x.mp3")


def test_unsupported_output_suffix() -> None:
    with pytest.raises(UsageError, match="unsupported output format"):
        OutputFormat.from_path(Path("clip.ogg"))


def test_sniff_signatures() -> None:
    assert sniff(encode_bytes(_audio(), "wav")[:16]) is Container.WAV
    assert sniff(encode_bytes(_audio(), "flac")[:16]) is Container.FLAC
    assert sniff(encode_bytes(_audio(), "aac")[:16]) is Container.AAC
    assert sniff(b"hello world12345") is None


def test_webm_opus_from_a_browser_recorder_decodes() -> None:
    """MediaRecorder in browsers gives WebM/Opus; the consent page uploads that."""
    import subprocess

    import imageio_ffmpeg

    wav = encode_bytes(Audio(speechlike(3.0, sample_rate=48000, seed=2)[:, None], 48000), "wav")
    webm = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "wav", "-i", "pipe:0"),
            *("-c:a", "libopus", "-f", "webm", "pipe:1"),
        ],
        input=wav,
        capture_output=True,
        check=True,
    ).stdout
    assert sniff(webm[:16]) is Container.WEBM
    audio = decode_bytes(webm, name="recording.webm")
    assert audio.container is Container.WEBM
    assert abs(audio.duration - 3.0) < 0.1
    with pytest.raises(UnreadableAudioError, match=r"recording\.webm"):
        decode_bytes(webm[:40], name="recording.webm")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_decoding_garbage_only_raises_audio_errors(data: bytes) -> None:
    with contextlib.suppress(AudioError):
        decode_bytes(b"RIFF" + struct.pack("<I", len(data)) + b"WAVE" + data)


def test_flip_changes_exactly_one_sample() -> None:
    data = encode_bytes(_audio(), OutputFormat.WAV)
    flipped = flip_wav_sample(data, position=0.5)
    start, length = wav_data_span(data)
    a = np.frombuffer(data[start : start + length], "<i2")
    b = np.frombuffer(flipped[start : start + length], "<i2")
    assert int((a != b).sum()) == 1


# --- decompression bombs: caps checked before decoding, peak memory bounded -------------------


def _silent_flac(rate: int, channels: int, seconds: int) -> bytes:
    """Silence compresses to almost nothing: a small file, a huge decode."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros((rate, channels), dtype="<i2")
        for _ in range(seconds):
            f.write(block)
    return buf.getvalue()


def _peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(AudioError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_flac_bomb_at_655_khz_and_8_channels_is_refused_before_decoding() -> None:
    bomb = _silent_flac(655_350, 8, 2)
    assert len(bomb) < 20_000  # 20 KB that decodes to 40 MiB (30 s: 600 MiB from 170 KB)
    with pytest.raises(AudioTooLongError, match="sample rate"):
        decode_bytes(bomb, name="bomb.flac")
    assert _peak_bytes(lambda: decode_bytes(bomb, name="bomb.flac")) < 1 << 20


def test_many_channel_bomb_within_the_duration_limit_is_refused() -> None:
    # 3 s at 192 kHz x 8 channels: inside a 3 s duration limit, 4.6 M samples.
    bomb = _silent_flac(MAX_SAMPLE_RATE, MAX_CHANNELS, 3)
    with pytest.raises(AudioTooLongError, match="sample limit"):
        decode_bytes(bomb, name="bomb.flac", max_seconds=3.0)
    assert _peak_bytes(lambda: decode_bytes(bomb, max_seconds=3.0)) < 1 << 20


def test_many_channel_opus_bomb_is_capped_inside_ffmpeg() -> None:
    loud = np.zeros((48_000 * 3, MAX_CHANNELS), dtype=np.float32)
    bomb = encode_bytes(Audio(loud, 48_000), "opus", bitrate_kbps=64)
    with pytest.raises(AudioTooLongError, match="sample limit"):
        decode_bytes(bomb, name="bomb.ogg", max_seconds=3.0)
    # ffmpeg's output itself is capped (-fs): at most the sample budget crosses the pipe.
    assert _peak_bytes(lambda: decode_bytes(bomb, max_seconds=3.0)) < 3 * 4 * max_samples(3.0)


@pytest.mark.parametrize("fmt", ["flac", "wav", "mp3"])
def test_peak_memory_of_the_largest_accepted_input_is_bounded(fmt: str) -> None:
    """The documented bound: peak <= 2 x the float32 sample budget (docs/threat-model.md)."""
    seconds = 5.0
    rng = np.random.default_rng(0)
    noise = rng.uniform(-0.5, 0.5, (int(48_000 * 4.9), 2)).astype(np.float32)
    data = encode_bytes(Audio(noise, 48_000), fmt)
    budget = 4 * max_samples(seconds)
    peak = _peak_bytes(lambda: decode_bytes(data, max_seconds=seconds))
    assert decode_bytes(data, max_seconds=seconds).frames >= 48_000 * 4.9 - 2048
    print(f"{fmt}: peak {peak / 2**20:.1f} MiB, budget {budget / 2**20:.1f} MiB")
    assert peak <= 2 * budget, f"{fmt}: peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(
    ("rate_in", "rate_out"),
    [(24000, 16000), (44100, 16000), (16000, 48000), (8000, 16000), (22050, 16000)],
)
@pytest.mark.parametrize("shape", [(1,), (7,), (30011,), (9001, 2)])
def test_resampling_is_scipys_without_importing_it(
    rate_in: int, rate_out: int, shape: tuple[int, ...]
) -> None:
    """``resample`` gives ``scipy.signal.resample_poly``'s result."""
    from scipy.signal import resample_poly

    from guardian.audio import resample

    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    g = math.gcd(rate_in, rate_out)
    expected = resample_poly(x.astype(np.float64), rate_out // g, rate_in // g, axis=0)
    got = resample(x, rate_in, rate_out)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.allclose(got, expected, atol=1e-6)
