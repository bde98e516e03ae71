"""Reading, validating and writing audio."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from enum import Enum
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from guardian.audio import _ffmpeg
from guardian.audio._formats import Container, sniff
from guardian.audio._polyphase import resample_poly
from guardian.errors import (
    AudioTooLongError,
    InvalidSamplesError,
    NotAudioError,
    UnreadableAudioError,
    UsageError,
)

DEFAULT_MAX_SECONDS = 600.0

MAX_SAMPLE_RATE = 192_000
"""Highest sample rate accepted (FLAC headers allow 655 kHz: a decompression bomb)."""
MAX_CHANNELS = 8
"""Most channels accepted (7.1); Opus allows 255."""
SAMPLE_BUDGET_PER_SECOND = 96_000
"""Samples (frames x channels) per second of the duration limit: 48 kHz stereo.

Together with the duration limit this bounds every decode: at most
``(max_seconds + 1) * SAMPLE_BUDGET_PER_SECOND`` float32 samples, 230 MB at the default
600 s, whatever the header says (``docs/threat-model.md`` gives the measured peak)."""


def max_samples(max_seconds: float) -> int:
    """The most samples (frames x channels) a decode may produce."""
    return int((max_seconds + 1.0) * SAMPLE_BUDGET_PER_SECOND)


def check_stream_shape(
    *, rate: int, channels: int, frames: int | None, max_seconds: float, name: str
) -> None:
    """Refuse a stream whose header promises more than the caps, before decoding it."""
    if not 0 < rate <= MAX_SAMPLE_RATE:
        raise AudioTooLongError(
            f"{name}: sample rate {rate} Hz is outside the accepted range (1..{MAX_SAMPLE_RATE})"
        )
    if not 0 < channels <= MAX_CHANNELS:
        raise AudioTooLongError(f"{name}: {channels} channels; at most {MAX_CHANNELS} accepted")
    if frames is not None and frames * channels > max_samples(max_seconds):
        raise AudioTooLongError(
            f"{name}: {frames} frames x {channels} channels is over the "
            f"{max_samples(max_seconds)}-sample limit"
        )


@dataclass(frozen=True, eq=False)
class Audio:
    """Decoded audio: float32 samples shaped ``(frames, channels)``.

    The constructor enforces the invariants, so an ``Audio`` with NaN samples, no
    channels or a non-positive rate cannot exist.
    """

    samples: np.ndarray
    sample_rate: int
    container: Container | None = field(default=None)

    def __post_init__(self) -> None:
        s = self.samples
        if s.ndim != 2 or s.shape[1] < 1:
            raise InvalidSamplesError("audio must be shaped (frames, channels)")
        if s.dtype != np.float32:
            object.__setattr__(self, "samples", s.astype(np.float32))
        if self.sample_rate <= 0:
            raise InvalidSamplesError(f"invalid sample rate {self.sample_rate}")
        if s.shape[0] == 0:
            raise InvalidSamplesError("the audio has no samples")
        if not np.isfinite(self.samples).all():
            raise InvalidSamplesError("the audio contains NaN or infinite samples")

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def mono(self) -> np.ndarray:
        """The channel average as a 1-D float32 array."""
        return np.asarray(self.samples.mean(axis=1, dtype=np.float32))

    def pcm16(self) -> bytes:
        """Samples quantised to little-endian int16, the form WAV and FLAC store."""
        return _to_int16(self.samples).tobytes()


class OutputFormat(str, Enum):
    """Formats Guardian writes (and can embed a C2PA manifest into)."""

    WAV = "wav"
    FLAC = "flac"
    MP3 = "mp3"

    @property
    def container(self) -> Container:
        return Container(self.value)

    @classmethod
    def from_path(cls, path: Path) -> OutputFormat:
        suffix = path.suffix.lower().lstrip(".")
        try:
            return cls(suffix)
        except ValueError:
            allowed = ", ".join(f".{f.value}" for f in cls)
            raise UsageError(
                f"{path.name}: unsupported output format {path.suffix or '(none)'}; "
                f"use one of {allowed}"
            ) from None


def _to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")


def read_input_bytes(path: Path, *, max_bytes: int | None = None) -> bytes:
    """Read an input file, naming the problem in one line when it cannot.

    Raises:
        UnreadableAudioError: missing, unreadable or a directory.
        AudioTooLongError: larger than ``max_bytes``.
    """
    name = path.name or str(path)
    try:
        if path.is_dir():
            raise UnreadableAudioError(f"{name}: is a directory, not an audio file")
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise AudioTooLongError(f"{name}: file is {size} bytes, over the {max_bytes} limit")
        return path.read_bytes()
    except FileNotFoundError as e:
        raise UnreadableAudioError(f"{name}: no such file") from e
    except PermissionError as e:
        raise UnreadableAudioError(f"{name}: permission denied") from e
    except OSError as e:
        raise UnreadableAudioError(f"{name}: cannot read ({e.strerror or e})") from e


def read_audio(
    path: Path, *, max_seconds: float = DEFAULT_MAX_SECONDS, max_bytes: int | None = None
) -> Audio:
    """Read and decode an audio file (see :func:`read_input_bytes`, :func:`decode_bytes`).

    Raises:
        UnreadableAudioError: missing, unreadable, empty, truncated or non-audio input.
        AudioTooLongError: longer than ``max_seconds`` or larger than ``max_bytes``.
        InvalidSamplesError: NaN or infinite samples.
    """
    data = read_input_bytes(path, max_bytes=max_bytes)
    return decode_bytes(data, name=path.name or str(path), max_seconds=max_seconds)


def decode_bytes(
    data: bytes, *, name: str = "input", max_seconds: float = DEFAULT_MAX_SECONDS
) -> Audio:
    """Decode an in-memory audio file (WAV, FLAC, MP3, Ogg/Opus, WebM/Opus, MP4/AAC, ADTS)."""
    if not data:
        raise UnreadableAudioError(f"{name}: empty file (0 bytes)")
    container = sniff(data[:16])
    if container is None:
        raise NotAudioError(f"{name}: not an audio file (unrecognised format)")
    try:
        if container is Container.WAV:
            _check_wav_complete(data, name)
        if container in (Container.WAV, Container.FLAC):
            samples, rate = _read_soundfile(data, name, max_seconds)
        else:
            samples, rate = _ffmpeg.decode(
                data=data, max_seconds=max_seconds, max_samples=max_samples(max_seconds)
            )
            check_stream_shape(
                rate=rate,
                channels=samples.shape[1],
                frames=samples.shape[0],
                max_seconds=max_seconds,
                name=name,
            )
    except UnreadableAudioError as e:
        msg = str(e)
        raise UnreadableAudioError(msg if msg.startswith(name) else f"{name}: {msg}") from e
    audio = _make(samples, rate, container, name)
    if audio.duration > max_seconds:
        raise AudioTooLongError(f"{name}: audio is longer than the {max_seconds:g} s limit")
    return audio


def _make(samples: np.ndarray, rate: int, container: Container, name: str) -> Audio:
    try:
        return Audio(samples, rate, container)
    except InvalidSamplesError as e:
        raise type(e)(f"{name}: {e}") from e


def _read_soundfile(data: bytes, name: str, max_seconds: float) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            # The header is checked before a single sample is decoded; the read is then
            # capped as well, in case the header understates the length.
            check_stream_shape(
                rate=int(f.samplerate), channels=f.channels, frames=None, max_seconds=0, name=name
            )
            if f.frames > (max_seconds + 1.0) * f.samplerate:
                raise AudioTooLongError(f"{name}: audio is longer than the {max_seconds:g} s limit")
            check_stream_shape(
                rate=int(f.samplerate),
                channels=f.channels,
                frames=f.frames,
                max_seconds=max_seconds,
                name=name,
            )
            cap = max_samples(max_seconds) // f.channels + 1
            samples = f.read(frames=cap, dtype="float32", always_2d=True)
            if samples.shape[0] >= cap:
                raise AudioTooLongError(f"{name}: more samples than its header declares")
            return samples, int(f.samplerate)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UnreadableAudioError(f"{name}: corrupt or unsupported audio ({e})") from e


def _check_wav_complete(data: bytes, name: str) -> None:
    """Reject a WAV whose data chunk is shorter than its header declares."""
    if data[:4] != b"RIFF" or len(data) < 12:
        return
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        if chunk_id == b"data":
            available = len(data) - pos - 8
            if size != 0xFFFFFFFF and size > available:
                raise UnreadableAudioError(
                    f"{name}: truncated WAV (header declares {size} bytes of audio, "
                    f"file holds {available})"
                )
            return
        pos += 8 + size + (size & 1)
    raise UnreadableAudioError(f"{name}: truncated WAV (no audio data chunk)")


def encode_bytes(audio: Audio, fmt: OutputFormat | str, *, bitrate_kbps: int = 192) -> bytes:
    """Encode audio as WAV (PCM 16), FLAC (16 bit), MP3, AAC (ADTS) or Ogg/Opus."""
    name = fmt.value if isinstance(fmt, OutputFormat) else fmt
    if name in ("wav", "flac"):
        buf = io.BytesIO()
        sf.write(
            buf, _to_int16(audio.samples), audio.sample_rate, format=name.upper(), subtype="PCM_16"
        )
        return buf.getvalue()
    return _ffmpeg.encode(audio.samples, audio.sample_rate, codec=name, bitrate_kbps=bitrate_kbps)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling along axis 0, float32 in and out."""
    if rate_in == rate_out:
        return samples.astype(np.float32, copy=False)
    g = gcd(rate_in, rate_out)
    out = resample_poly(samples, rate_out // g, rate_in // g)
    return np.asarray(out, dtype=np.float32)
