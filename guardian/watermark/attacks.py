"""The attack suite that the watermark benchmark and tests run on marked audio.

Settings follow the AudioSeal paper's evaluation and AudioMarkBench: real codec
round-trips through ffmpeg (``guardian.audio``), filters, noise, time-scale and level
changes, echo, cropping, splicing and mixing.

Every attack maps ``(audio, rng)`` to a new :class:`~guardian.audio.Audio` at the same
sample rate and channel count, and never changes its input. Attacks that need other
speech (``splice``, ``mix_speech_10db``) take it as the keyword argument ``other``
and raise ``ValueError`` without it, so a benchmark cannot silently splice into
silence.

Example::

    attack = by_name("mp3_64k")
    attacked = attack(marked, np.random.default_rng(0))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from guardian.audio import Audio, decode_bytes, encode_bytes, resample
from guardian.errors import UsageError

AttackFn = Callable[[Audio, np.random.Generator, "Audio | None"], Audio]
_EPS = 1e-12


@dataclass(frozen=True)
class Attack:
    """A named transformation of audio, as an adversary or a platform might apply it.

    Attributes:
        name: Short identifier used in reports (``mp3_64k``).
        description: One line saying what the attack does, with its parameters.
        fn: The transformation ``(audio, rng, other) -> audio``.
    """

    name: str
    description: str
    fn: AttackFn

    def __call__(
        self, audio: Audio, rng: np.random.Generator, *, other: Audio | None = None
    ) -> Audio:
        """Apply the attack.

        Args:
            audio: The (watermarked) clip; it is not modified.
            rng: Source of randomness for noise, crop positions and splice points.
            other: Unwatermarked speech, needed by ``splice`` and ``mix_speech_10db``
                and ignored by the others.

        Returns:
            A new clip at the input's sample rate and channel count.
        """
        return self.fn(audio, rng, other)


def _new(audio: Audio, samples: np.ndarray) -> Audio:
    return Audio(np.array(samples, dtype=np.float32, copy=True), audio.sample_rate)


def _fit(samples: np.ndarray, frames: int) -> np.ndarray:
    """Cut or zero-pad along time to exactly ``frames``."""
    if len(samples) >= frames:
        return samples[:frames]
    return np.concatenate([samples, np.zeros((frames - len(samples), samples.shape[1]))])


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _match(other: Audio | None, audio: Audio, attack: str) -> np.ndarray:
    """``other`` at the rate and channel count of ``audio``."""
    if other is None:
        raise ValueError(f"attack {attack!r} needs other speech: pass other=Audio(...)")
    x = resample(other.samples, other.sample_rate, audio.sample_rate)
    mono = x.mean(axis=1, keepdims=True)
    return np.repeat(mono, audio.channels, axis=1) if x.shape[1] != audio.channels else x


# --- the attacks --------------------------------------------------------------------


def _identity(audio: Audio, _rng: np.random.Generator, _other: Audio | None) -> Audio:
    return _new(audio, audio.samples)


def _codec(codec: str, kbps: int) -> AttackFn:
    def run(audio: Audio, _rng: np.random.Generator, _other: Audio | None) -> Audio:
        decoded = decode_bytes(encode_bytes(audio, codec, bitrate_kbps=kbps))
        back = resample(decoded.samples, decoded.sample_rate, audio.sample_rate)
        # The codec's start delay is kept, as a real re-encode keeps it.
        return _new(audio, _fit(back, audio.frames))

    return run


def _resample_through(rate: int) -> AttackFn:
    def run(audio: Audio, _rng: np.random.Generator, _other: Audio | None) -> Audio:
        down = resample(audio.samples, audio.sample_rate, rate)
        return _new(audio, _fit(resample(down, rate, audio.sample_rate), audio.frames))

    return run


def _white_noise(snr_db: float) -> AttackFn:
    def run(audio: Audio, rng: np.random.Generator, _other: Audio | None) -> Audio:
        sigma = np.sqrt(_power(audio.samples) / 10 ** (snr_db / 10))
        return _new(audio, audio.samples + sigma * rng.standard_normal(audio.samples.shape))

    return run


def _pink_noise(sigma: float) -> AttackFn:
    """Pink noise of std ``sigma`` for a 0.1-RMS signal, scaled to the signal's RMS."""

    def run(audio: Audio, rng: np.random.Generator, _other: Audio | None) -> Audio:
        n = audio.frames
        spec = np.fft.rfft(rng.standard_normal(audio.samples.shape), axis=0)
        f = np.maximum(np.fft.rfftfreq(n, d=1 / audio.sample_rate), 20.0)
        pink = np.fft.irfft(spec / np.sqrt(f)[:, None], n=n, axis=0)
        pink /= np.sqrt(_power(pink) + _EPS)
        rms = np.sqrt(_power(audio.samples))
        return _new(audio, audio.samples + sigma * pink * (rms / 0.1))

    return run


def _filter(low_hz: float | None, high_hz: float | None, order: int = 10) -> AttackFn:
    """Zero-phase Butterworth filter; a band edge at or above Nyquist is dropped."""

    def run(audio: Audio, _rng: np.random.Generator, _other: Audio | None) -> Audio:
        nyq = audio.sample_rate / 2
        lo = low_hz if low_hz is not None and low_hz < nyq else None
        hi = high_hz if high_hz is not None and high_hz < nyq else None
        if lo is None and hi is None:
            return _new(audio, audio.samples)
        if lo is not None and hi is not None:
            sos = butter(order // 2, [lo, hi], "bandpass", fs=audio.sample_rate, output="sos")
        elif hi is not None:
            sos = butter(order, hi, "lowpass", fs=audio.sample_rate, output="sos")
        else:
            sos = butter(order, lo, "highpass", fs=audio.sample_rate, output="sos")
        return _new(audio, sosfiltfilt(sos, audio.samples.astype(np.float64), axis=0))

    return run


def _speed(factor: float) -> AttackFn:
    """Play ``factor`` times faster by resampling: duration / factor, pitch x factor."""
    ratio = Fraction(factor).limit_denominator(100)

    def run(audio: Audio, _rng: np.random.Generator, _other: Audio | None) -> Audio:
        out = resample_poly(audio.samples, ratio.denominator, ratio.numerator, axis=0)
        return _new(audio, out)

    return run


def _echo(delay_s: float, volume: float) -> AttackFn:
    """Add a delayed copy, then restore the original peak (the AudioSeal recipe)."""

    def run(audio: Audio, _rng: np.random.Generator, _other: Audio | None) -> Audio:
        d = round(delay_s * audio.sample_rate)
        x = audio.samples.astype(np.float64)
        out = x.copy()
        if d < len(x):
            out[d:] += volume * x[: len(x) - d]
        peak = float(np.abs(out).max())
        return _new(audio, out * (float(np.abs(x).max()) / peak) if peak > 0 else out)

    return run


def _gain(factor: float) -> AttackFn:
    """Scale the samples; values above 1.0 are kept (float audio, no clipping)."""

    def run(audio: Audio, _rng: np.random.Generator, _other: Audio | None) -> Audio:
        return _new(audio, audio.samples * np.float32(factor))

    return run


def _excerpt(audio: Audio, rng: np.random.Generator, seconds: float) -> np.ndarray:
    n = round(seconds * audio.sample_rate)
    if audio.frames <= n:
        return audio.samples
    start = int(rng.integers(0, audio.frames - n + 1))
    return audio.samples[start : start + n]


def _crop(seconds: float) -> AttackFn:
    """Keep a random excerpt of ``seconds`` (the whole clip when shorter)."""

    def run(audio: Audio, rng: np.random.Generator, _other: Audio | None) -> Audio:
        return _new(audio, _excerpt(audio, rng, seconds))

    return run


def _splice(audio: Audio, rng: np.random.Generator, other: Audio | None) -> Audio:
    """Insert a random 2-3 s part of the clip at a random point of ``other``."""
    host = _match(other, audio, "splice")
    part = _excerpt(audio, rng, float(rng.uniform(2.0, 3.0)))
    at = int(rng.integers(0, len(host) + 1))
    return _new(audio, np.concatenate([host[:at], part, host[at:]]))


def _mix(snr_db: float) -> AttackFn:
    """Add ``other`` (looped or cut to length) ``snr_db`` below the clip's power."""

    def run(audio: Audio, _rng: np.random.Generator, other: Audio | None) -> Audio:
        host = _match(other, audio, "mix_speech_10db")
        host = np.tile(host, (-(-audio.frames // len(host)), 1))[: audio.frames]
        scale = np.sqrt(_power(audio.samples) / ((_power(host) + _EPS) * 10 ** (snr_db / 10)))
        return _new(audio, audio.samples + scale * host)

    return run


ATTACKS: tuple[Attack, ...] = (
    Attack("none", "no change", _identity),
    Attack("mp3_32k", "MP3 (LAME) at 32 kbps and back", _codec("mp3", 32)),
    Attack("mp3_64k", "MP3 (LAME) at 64 kbps and back", _codec("mp3", 64)),
    Attack("mp3_128k", "MP3 (LAME) at 128 kbps and back", _codec("mp3", 128)),
    Attack("aac_64k", "AAC (ffmpeg, ADTS) at 64 kbps and back", _codec("aac", 64)),
    Attack("opus_16k", "Opus at 16 kbps and back", _codec("opus", 16)),
    Attack("resample_8k", "resample to 8 kHz and back", _resample_through(8000)),
    Attack("resample_22k05", "resample to 22.05 kHz and back", _resample_through(22050)),
    Attack("resample_44k1", "resample to 44.1 kHz and back", _resample_through(44100)),
    Attack("white_noise_20db", "white Gaussian noise at 20 dB SNR", _white_noise(20.0)),
    Attack("pink_noise", "pink noise, sigma 0.1 for a 0.1-RMS signal (0 dB SNR)", _pink_noise(0.1)),
    Attack("lowpass_3k", "Butterworth low-pass at 3 kHz (zero phase)", _filter(None, 3000.0)),
    Attack("lowpass_5k", "Butterworth low-pass at 5 kHz (zero phase)", _filter(None, 5000.0)),
    Attack("highpass_500", "Butterworth high-pass at 500 Hz (zero phase)", _filter(500.0, None)),
    Attack("bandpass_500_5000", "Butterworth band-pass 500-5000 Hz", _filter(500.0, 5000.0)),
    Attack("speed_0.9", "0.9x speed by resampling (longer, lower pitch)", _speed(0.9)),
    Attack("speed_1.1", "1.1x speed by resampling (shorter, higher pitch)", _speed(1.1)),
    Attack("echo", "echo with 0.5 s delay at volume 0.5, original peak kept", _echo(0.5, 0.5)),
    Attack("boost", "gain x10, no clipping (float samples above 1.0 kept)", _gain(10.0)),
    Attack("duck", "gain x0.1", _gain(0.1)),
    Attack("crop_2s", "a random 2 s excerpt", _crop(2.0)),
    Attack("splice", "a random 2-3 s part inserted into other speech", _splice),
    Attack("mix_speech_10db", "other speech mixed in 10 dB below the clip", _mix(10.0)),
)


def by_name(name: str) -> Attack:
    """The attack called ``name``.

    Raises:
        UsageError: No attack has that name.
    """
    for attack in ATTACKS:
        if attack.name == name:
            return attack
    raise UsageError(f"unknown attack {name!r}; known: {', '.join(a.name for a in ATTACKS)}")
