from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.audio import (
    Audio,
    Container,
    OutputFormat,
    decode_bytes,
    encode_bytes,
    flip_wav_sample,
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
