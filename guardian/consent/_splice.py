"""Continuity of a consent recording: one take, or pieces joined together?

A recording made in one take has one background: the room's noise, the microphone's
hiss and the channel's bandwidth stay the same from the first pause to the last. A
statement assembled from pieces (a reading of an older challenge, word clips cut from
other recordings) carries each piece's own background, so wherever two pieces meet the
background changes from one instant to the next; a piece padded with digital silence
drops to exact zeros, which no microphone produces mid-take.

The check looks at the background only: frames of 20 ms in four bands (0.1-1, 1-2.5,
2.5-4 and 4-8 kHz at 16 kHz), and at every instant the 80 ms before and after it. Where
both sides are steady (band levels deviate by less than ``STEADY_DB``) and quiet (well
below the speech), they are background, and bands that differ by more than ``STEP_DB``
on average between them make a splice point. Speech onsets and decays are not steady, so
they never count.

What it cannot see: a background within ``BACKGROUND_MARGIN_DB`` of ``FLOOR_DBFS``
(clean synthetic speech, studio recordings, heavy noise suppression) leaves nothing to
follow, so such a recording is not checked at all; pieces cut inside speech, or from
recordings with matching backgrounds, join without a step; a piece band-limited to
4 kHz (recorded at 8 kHz) in the same room moves one band of four and was caught once
in ten tries. The measurements are in ``docs/benchmarks/consent_splice.md``. Numpy
only, 10 to 40 ms for a 12 s recording.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guardian.audio import Audio, resample

FLOOR_DBFS = -70.0
"""Band levels are clamped here: below it there is no background to compare."""
STEP_DB = 5.0
"""Largest change of the background, averaged over the bands, between adjacent steady
stretches (a louder room shifts every band; one speech sound shifts one or two)."""
STEADY_DB = 3.0
"""Largest standard deviation of a band level over one stretch for it to count as steady."""
BELOW_SPEECH_DB = 30.0
"""A stretch is background when it is this far below the recording's loud frames."""
BACKGROUND_MARGIN_DB = 6.0
"""A recording has a background to follow when its median background run is this far
above FLOOR_DBFS; clean synthetic speech has stray quiet runs just above it."""
DIGITAL_SILENCE_S = 0.02
"""A run of exact zeros this long inside a recording with a background is a gap."""

_RATE = 16_000
_FRAME = 320  # 20 ms
_HOP = 160  # 10 ms
_SIDE = 8  # frames each side of an instant: 80 ms (plus one frame)
_BANDS_HZ = ((100, 1000), (1000, 2500), (2500, 4000), (4000, 8000))
_ZERO = 0.5 / 32768  # below half a 16-bit step: digital zero


def _band_levels(frames: np.ndarray) -> np.ndarray:
    """Per-frame band power in dBFS, shape (frames, bands), clamped at FLOOR_DBFS."""
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(_FRAME), axis=1)) ** 2
    freqs = np.fft.rfftfreq(_FRAME, 1 / _RATE)
    # Scaled so a full-scale sine reads about 0 dBFS in its band.
    scale = 4.0 / np.sum(np.hanning(_FRAME)) ** 2
    bands = [spectrum[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) * scale for lo, hi in _BANDS_HZ]
    levels: np.ndarray = np.maximum(10 * np.log10(np.stack(bands, axis=1) + 1e-30), FLOOR_DBFS)
    return levels


@dataclass(frozen=True)
class _Runs:
    """Every run of ``_SIDE`` consecutive frames: its band powers (dB) and whether it
    is steady background."""

    power: np.ndarray  # (runs, bands)
    background: np.ndarray  # (runs,) bool

    @classmethod
    def of(cls, levels: np.ndarray, live: np.ndarray) -> _Runs:
        runs = np.lib.stride_tricks.sliding_window_view(levels, _SIDE, axis=0)
        power = 10 * np.log10(np.mean(10 ** (runs / 10), axis=2))
        loud = float(np.percentile(levels.max(axis=1), 95))
        steady = np.std(runs, axis=2).max(axis=1) < STEADY_DB
        quiet = power.max(axis=1) < loud - BELOW_SPEECH_DB
        all_live = np.lib.stride_tricks.sliding_window_view(live, _SIDE).all(axis=1)
        return cls(power, steady & quiet & all_live)

    def level(self) -> float:
        """The median over background runs of each one's loudest band; FLOOR_DBFS
        when there is no background run."""
        if not self.background.any():
            return FLOOR_DBFS
        return float(np.median(self.power[self.background].max(axis=1)))

    def step(self) -> tuple[int, float] | None:
        """The first frame where background on both sides differs by more than STEP_DB
        on average over the bands, with that difference; None when there is none."""
        if len(self.power) <= _SIDE:
            return None
        # Run i covers frames i..i+_SIDE-1; the run after it starts at i + _SIDE.
        n = len(self.power) - _SIDE
        both = self.background[:n] & self.background[_SIDE:]
        step = np.abs(self.power[:n] - self.power[_SIDE:]).mean(axis=1)
        hits = np.flatnonzero(both & (step > STEP_DB))
        if hits.size == 0:
            return None
        i = int(hits[0])
        return i + _SIDE, float(step[i])


def _digital_gap(x: np.ndarray) -> int | None:
    """Where the longest run of exact zeros between sounds starts, when it lasts
    DIGITAL_SILENCE_S or more; None otherwise. Leading and trailing zeros are a
    recorder's, not a gap."""
    sound = np.flatnonzero(np.abs(x) >= _ZERO)
    if sound.size < 2:
        return None
    gaps = np.diff(sound) - 1
    longest = int(np.argmax(gaps))
    if gaps[longest] < DIGITAL_SILENCE_S * _RATE:
        return None
    return int(sound[longest]) + 1


def splice_problem(audio: Audio) -> str | None:
    """Why ``audio`` looks assembled from pieces rather than one take, or None."""
    x = resample(audio.mono(), audio.sample_rate, _RATE).astype(np.float64)
    if len(x) < _FRAME * (_SIDE + 1):
        return None
    frames = np.lib.stride_tricks.sliding_window_view(x, _FRAME)[::_HOP]
    runs = _Runs.of(_band_levels(frames), np.abs(frames).max(axis=1) >= _ZERO)
    if runs.level() <= FLOOR_DBFS + BACKGROUND_MARGIN_DB:
        return None  # no background to follow (clean synthetic speech, a studio)
    gap = _digital_gap(x)
    if gap is not None:
        return (
            f"the recording drops to digital silence at {gap / _RATE:.2f} s, which a "
            "microphone does not do mid-take: record the statement in one take"
        )
    step = runs.step()
    if step is not None:
        frame, db = step
        return (
            f"the background changes abruptly at {frame * _HOP / _RATE:.2f} s "
            f"({db:.0f} dB): it looks joined from separate recordings; record the "
            "statement in one take"
        )
    return None
