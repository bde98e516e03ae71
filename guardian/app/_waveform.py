"""A clip's outline for display: peak levels over equal stretches of time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guardian.app._context import Guardian
from guardian.audio import decode_bytes


@dataclass(frozen=True)
class Waveform:
    peaks: tuple[float, ...]
    """Peak absolute level of each stretch, 0-1, scaled to the loudest stretch."""
    duration_s: float


def waveform(g: Guardian, data: bytes, *, bins: int = 200, name: str = "upload") -> Waveform:
    """The outline of an audio file, decoded within the deployment's limits."""
    audio = decode_bytes(data, name=name, max_seconds=g.settings.max_audio_seconds)
    mono = np.abs(audio.mono())
    if mono.size == 0:
        return Waveform((), 0.0)
    edges = np.linspace(0, mono.size, num=min(bins, mono.size) + 1).astype(int)
    peaks = np.maximum.reduceat(mono, edges[:-1])
    top = float(peaks.max()) or 1.0
    return Waveform(tuple(round(float(p) / top, 3) for p in peaks), round(audio.duration, 3))


__all__ = ["Waveform", "waveform"]
