"""Codec round-trips through the ffmpeg binary shipped by ``imageio-ffmpeg``.

Audio travels through stdin/stdout pipes only. pydub's ``export`` spools the
plaintext signal through ``NamedTemporaryFile``; Guardian keeps voice audio out of
temp files, so it drives ffmpeg directly here.
"""

from __future__ import annotations

import struct
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

from guardian.errors import AudioTooLongError, ConfigError, UnreadableAudioError

_TIMEOUT_S = 300


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - a hard dependency
        raise ConfigError("imageio-ffmpeg is not installed; reinstall guardian") from e
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _run(args: list[str], stdin: bytes | None) -> bytes:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    try:
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, timeout=_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise UnreadableAudioError("ffmpeg timed out while processing the audio") from e
    if proc.returncode != 0 or not proc.stdout:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        last = detail[-1] if detail else f"exit status {proc.returncode}"
        raise UnreadableAudioError(f"cannot decode audio ({last})")
    return proc.stdout


def decode(
    *,
    data: bytes | None = None,
    path: Path | None = None,
    max_seconds: float,
    max_samples: int | None = None,
) -> tuple[np.ndarray, int]:
    """Decode any ffmpeg-readable audio to float32 ``(frames, channels)``.

    Decoding stops one second past ``max_seconds``, and ffmpeg's output is capped at
    ``max_samples`` float32 samples (``-fs``), so that neither an hour-long upload nor a
    many-channel, high-rate stream can exhaust memory; the caller compares the length,
    rate and channels to its limits. Output that reaches the sample cap is refused.
    """
    source = ["-i", "pipe:0"] if path is None else ["-i", str(path)]
    args = [*source, "-vn", "-t", f"{max_seconds + 1.0:.3f}", "-f", "wav", "-c:a", "pcm_f32le"]
    limit = None if max_samples is None else 4 * max_samples + _HEADER_ALLOWANCE
    if limit is not None:
        args += ["-fs", str(limit)]
    wav = _run([*args, "pipe:1"], data if path is None else None)
    if limit is not None and len(wav) >= limit - _HEADER_ALLOWANCE:
        raise AudioTooLongError(
            f"the decoded audio is over the {max_samples}-sample limit (rate x channels x length)"
        )
    channels, rate = _wav_format(wav)
    start = _wav_data(wav)
    usable = (len(wav) - start) // (4 * channels) * channels
    # One copy: the pipe's bytes are freed when this returns.
    samples = np.frombuffer(wav, dtype="<f4", count=usable, offset=start).reshape(-1, channels)
    return samples.copy(), rate


_HEADER_ALLOWANCE = 4096
"""Bytes of WAV header (and metadata chunks) allowed beyond the samples."""


def _wav_format(wav: bytes) -> tuple[int, int]:
    pos = wav.find(b"fmt ")
    if pos < 0:
        raise UnreadableAudioError("ffmpeg produced no audio stream")
    channels, rate = struct.unpack_from("<HI", wav, pos + 10)
    if channels < 1:
        raise UnreadableAudioError("the audio stream has no channels")
    return int(channels), int(rate)


def _wav_data(wav: bytes) -> int:
    """Offset of the samples: ffmpeg writes a streaming header with unknown sizes, and
    the data chunk runs to EOF."""
    pos = wav.find(b"data")
    if pos < 0:
        raise UnreadableAudioError("ffmpeg produced no audio data")
    return pos + 8


_ENCODERS: dict[str, list[str]] = {
    "mp3": ["-c:a", "libmp3lame", "-f", "mp3"],
    "aac": ["-c:a", "aac", "-f", "adts"],
    "opus": ["-c:a", "libopus", "-f", "ogg"],
}


def encode(samples: np.ndarray, sample_rate: int, *, codec: str, bitrate_kbps: int) -> bytes:
    """Encode float32 ``(frames, channels)`` samples with a lossy codec."""
    if codec not in _ENCODERS:
        raise ValueError(f"unsupported codec {codec!r}")
    channels = samples.shape[1]
    raw = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    args = [
        "-f",
        "f32le",
        "-ar",
        str(sample_rate),
        "-ac",
        str(channels),
        "-i",
        "pipe:0",
        *_ENCODERS[codec],
        "-b:a",
        f"{bitrate_kbps}k",
        "pipe:1",
    ]
    return _run(args, raw)
