"""Audio quality gates for enrollment recordings.

Three measurements, each pure numpy except the VAD:

* **SNR** from the distribution of 20 ms frame powers: the quietest tenth of the
  frames is the noise floor, the louder half is speech (see :func:`estimate_snr_db`).
  No reference signal is needed.
* **Clipping** as flat runs at the recording's own extreme values (see
  :func:`clipped_fraction`), so clipping survives a later gain change.
* **Speech duration** from WebRTC's VAD at 16 kHz (see :func:`speech_seconds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from guardian._thirdparty import quiet_import
from guardian.audio import Audio, resample

MIN_SAMPLE_RATE = 16_000
MIN_SNR_DB = 30.0
MIN_TOTAL_SPEECH_S: float = 15.0
"""Speech needed across all enrollment samples (the seed's figure)."""
MIN_SPEECH_S = 2.0
"""Speech needed in one recording: the speaker encoder works on 1.6 s windows."""
MAX_CLIPPED_FRACTION = 1e-4
"""Flat-topped samples tolerated (0.01 %): clean speech has none, 6 dB of overdrive ~1 %."""

FRAME_S = 0.02
NOISE_PERCENTILE = 10.0
"""The quietest 10 % of frames stand for the noise floor. Takes have that much pause;
one without reads the troughs of speech as noise, and so errs on the strict side."""
SPEECH_PERCENTILE = 50.0
"""The louder half of the frames gives the speech level. It reads about 3 dB above an
SNR taken over the whole take's mean power, pauses included; a take that is mostly
pause reads lower, which errs on the side of asking for another recording."""
SNR_CEILING_DB = 99.0
"""Reported for recordings whose floor is digital silence (the SNR is unbounded)."""
_QUANT_POWER = (1.0 / 32768.0) ** 2 / 12.0
"""16-bit quantisation noise: the floor below which no stored recording can go."""

CLIP_MIN_RUN = 3
"""Samples in a row at the extreme: a waveform peak touches it once or twice at most."""
CLIP_TOLERANCE = 2.0 / 32768.0
"""Two 16-bit steps: decoders and dither move a clipped plateau by about that much."""
CLIP_RELATIVE_TOLERANCE = 1e-4
"""Caps the tolerance for quiet recordings, where two 16-bit steps span a waveform's peak."""

VAD_RATE = 16_000
VAD_FRAME_S = 0.03
VAD_MODE = 3
"""WebRTC's strictest mode, so steady noise is not counted as speech."""


@dataclass(frozen=True)
class Quality:
    """Measured quality of one recording and the reasons it fails, if any."""

    sample_rate: int
    snr_db: float
    clipped_fraction: float
    speech_s: float
    problems: tuple[str, ...]

    def __bool__(self) -> bool:
        return not self.problems


# --- SNR -----------------------------------------------------------------------------


def frame_powers(x: np.ndarray, rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """Mean power of consecutive non-overlapping frames of a 1-D signal."""
    n = max(1, int(rate * frame_s))
    count = max(1, len(x) // n)
    padded = np.zeros(count * n, dtype=np.float64)
    m = min(len(x), count * n)
    padded[:m] = x[:m]
    return np.asarray(np.mean(padded.reshape(count, n) ** 2, axis=1))


def estimate_snr_db(x: np.ndarray, rate: int) -> float:
    """Blind SNR estimate of a speech recording, in dB.

    The noise power is the mean power of the quietest ``NOISE_PERCENTILE`` of 20 ms
    frames, the speech power that of the loudest frames (above ``SPEECH_PERCENTILE``)
    less the noise they carry. Both are percentile sets, not thresholds relative to the
    floor, so more noise lifts both means alike and can only lower the estimate, and a
    few clicks or dropouts move it little. Adding 16-bit quantisation noise to every
    frame keeps digital silence finite; steady noise alone scores about 0 dB.
    """
    p = frame_powers(np.asarray(x, dtype=np.float64), rate) + _QUANT_POWER
    noise = float(np.mean(p[p <= np.percentile(p, NOISE_PERCENTILE)]))
    loud = float(np.mean(p[p >= np.percentile(p, SPEECH_PERCENTILE)]))
    snr = 10 * np.log10(max(loud - noise, 1e-30) / noise)
    return float(np.clip(snr, 0.0, SNR_CEILING_DB))


# --- clipping ------------------------------------------------------------------------


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each sample, the length of the run of True it belongs to (0 where False)."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[::2], edges[1::2]
    out = np.zeros(len(mask), dtype=np.int64)
    for s, e in zip(starts, ends, strict=True):
        out[s:e] = e - s
    return out


def _plateau_samples(x: np.ndarray) -> int:
    """Samples in flat runs at the positive or the negative extreme of one channel."""
    total = 0
    for rail in (x, -x):
        top = float(rail.max())
        if top <= CLIP_TOLERANCE:
            continue
        tolerance = min(CLIP_TOLERANCE, top * CLIP_RELATIVE_TOLERANCE)
        runs = _run_lengths(rail >= top - tolerance)
        total += int(np.count_nonzero(runs >= CLIP_MIN_RUN))
    return total


def clipped_fraction(samples: np.ndarray) -> float:
    """Fraction of samples in flat runs at a channel's extreme value.

    Clipping flattens the waveform at the converter's rail; a later gain change moves
    the rail but keeps the plateau, so the rail is each channel's own extreme, per
    polarity (converters clip asymmetrically, and DC offsets shift one rail).
    """
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    flat = sum(_plateau_samples(s[:, c]) for c in range(s.shape[1]))
    return flat / s.size


# --- speech --------------------------------------------------------------------------


def speech_seconds(x: np.ndarray, rate: int) -> float:
    """Seconds of speech that WebRTC's VAD finds in a 1-D signal."""
    webrtcvad = quiet_import("webrtcvad")
    pcm = resample(np.asarray(x, dtype=np.float32), rate, VAD_RATE)
    pcm16 = np.clip(np.round(pcm * 32767.0), -32768, 32767).astype("<i2")
    n = int(VAD_RATE * VAD_FRAME_S)
    vad = webrtcvad.Vad(VAD_MODE)
    starts = range(0, len(pcm16) - n + 1, n)
    voiced = sum(bool(vad.is_speech(pcm16[i : i + n].tobytes(), VAD_RATE)) for i in starts)
    return voiced * VAD_FRAME_S


# --- gates ---------------------------------------------------------------------------


def _problems(q: Quality) -> tuple[str, ...]:
    problems = []
    if q.sample_rate < MIN_SAMPLE_RATE:
        problems.append(f"sample rate {q.sample_rate} Hz is below {MIN_SAMPLE_RATE} Hz")
    if q.snr_db < MIN_SNR_DB:
        problems.append(f"estimated SNR {q.snr_db:.1f} dB is below {MIN_SNR_DB:g} dB")
    if q.clipped_fraction > MAX_CLIPPED_FRACTION:
        # Two significant digits, so that 0.012 % does not print as 0.0 %.
        percent = f"{100 * q.clipped_fraction:.2g}"
        problems.append(f"clipped ({percent}% of samples at full scale)")
    if q.speech_s < MIN_SPEECH_S:
        problems.append(f"only {q.speech_s:.1f} s of speech, {MIN_SPEECH_S:g} s needed")
    return tuple(problems)


def measure(audio: Audio) -> Quality:
    """Measure one recording against the per-recording gates."""
    mono = audio.mono()
    q = Quality(
        sample_rate=audio.sample_rate,
        snr_db=estimate_snr_db(mono, audio.sample_rate),
        clipped_fraction=clipped_fraction(audio.samples),
        speech_s=speech_seconds(mono, audio.sample_rate),
        problems=(),
    )
    return replace(q, problems=_problems(q))


def total_speech_problem(qualities: Sequence[Quality]) -> str | None:
    """The problem with the total amount of speech across samples, if any."""
    total = sum(q.speech_s for q in qualities)
    if total >= MIN_TOTAL_SPEECH_S:
        return None
    return f"{total:.1f} s of speech across all samples is below {MIN_TOTAL_SPEECH_S:g} s"


__all__ = [
    "MAX_CLIPPED_FRACTION",
    "MIN_SAMPLE_RATE",
    "MIN_SNR_DB",
    "MIN_SPEECH_S",
    "MIN_TOTAL_SPEECH_S",
    "Quality",
    "clipped_fraction",
    "estimate_snr_db",
    "measure",
    "speech_seconds",
    "total_speech_problem",
]


MIN_CHANNEL_CORRELATION = 0.9
"""Lowest correlation of each channel with the channel mean in a consent recording.

One microphone recorded in stereo gives channels that are copies, scaled or slightly
delayed (correlation above 0.99 for the shipped voices resampled to stereo). Two
different takes, one per channel, hide a second reading from a check that hears their
mix."""


def channel_problem(audio: Audio) -> str | None:
    """Why the channels do not hold one take, or None when they do (or it is mono)."""
    if audio.channels == 1:
        return None
    mean = audio.samples.mean(axis=1)
    mean_norm = float(np.linalg.norm(mean))
    norms = np.linalg.norm(audio.samples, axis=0)
    for c in range(audio.channels):
        x = audio.samples[:, c]
        if norms[c] < 0.1 * float(norms.max()):
            continue  # a dead or far microphone adds no second take
        denom = float(np.linalg.norm(x)) * mean_norm
        corr = float(np.dot(x, mean)) / denom if denom > 0 else 0.0
        if corr < MIN_CHANNEL_CORRELATION:
            return (
                f"channel {c + 1} holds a different recording from the others "
                f"(correlation {corr:.2f}): record one take, in mono"
            )
    return None
