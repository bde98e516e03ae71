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

from guardian.errors import ConfigError, UnreadableAudioError

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
    *, data: bytes | None = None, path: Path | None = None, max_seconds: float
) -> tuple[np.ndarray, int]:
    """Decode any ffmpeg-readable audio to float32 ``(frames, channels)``.

    Decoding stops one second past ``max_seconds`` so that a hostile hour-long
    upload cannot exhaust memory; the caller compares the length to the limit.
    """
    source = ["-i", "pipe:0"] if path is None else ["-i", str(path)]
    args = [*source, "-vn", "-t", f"{max_seconds + 1.0:.3f}", "-f", "wav", "-c:a", "pcm_f32le"]
    wav = bytearray(_run([*args, "pipe:1"], data if path is None else None))
    channels, rate = _wav_format(wav)
    body = _wav_data(wav)
    usable = len(body) - len(body) % (4 * channels)
    samples = np.frombuffer(bytes(body[:usable]), dtype="<f4").reshape(-1, channels)
    return samples.astype(np.float32, copy=True), rate


def _wav_format(wav: bytearray) -> tuple[int, int]:
    pos = wav.find(b"fmt ")
    if pos < 0:
        raise UnreadableAudioError("ffmpeg produced no audio stream")
    channels, rate = struct.unpack_from("<HI", wav, pos + 10)
    if channels < 1:
        raise UnreadableAudioError("the audio stream has no channels")
    return int(channels), int(rate)


def _wav_data(wav: bytearray) -> memoryview:
    # ffmpeg writes a streaming header with unknown sizes; the data chunk runs to EOF.
    pos = wav.find(b"data")
    if pos < 0:
        raise UnreadableAudioError("ffmpeg produced no audio data")
    return memoryview(wav)[pos + 8 :]


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
