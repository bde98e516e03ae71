"""Training-time attacks: differentiable where possible, straight-through for codecs.

Every augmentation maps ``(audio, labels)`` to ``(audio, labels)`` with shapes
(B, 1, T); time-changing ones (speed) resample the labels with the audio so that
localization stays supervised. Codec round-trips run the real ffmpeg encoders on
CPU and pass gradients straight through (``x + (codec(x) - x).detach()``).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from guardian.watermark._model import SAMPLE_RATE
from guardian.watermark._signal import freq_mask

Aug = Callable[[torch.Tensor, torch.Tensor, random.Random], tuple[torch.Tensor, torch.Tensor]]


def lowpass(hz: float) -> Aug:
    return lambda x, y, _r: (freq_mask(x, None, hz), y)


def highpass(hz: float) -> Aug:
    return lambda x, y, _r: (freq_mask(x, hz, None), y)


def bandpass(lo: float, hi: float) -> Aug:
    return lambda x, y, _r: (freq_mask(x, lo, hi), y)


def white_noise(snr_db: float) -> Aug:
    def run(
        x: torch.Tensor, y: torch.Tensor, _r: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        p = x.pow(2).mean(dim=-1, keepdim=True)
        sigma = torch.sqrt(p / 10 ** (snr_db / 10))
        return x + sigma * torch.randn_like(x), y

    return run


def pink_noise(sigma: float) -> Aug:
    def run(
        x: torch.Tensor, y: torch.Tensor, _r: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[-1]
        spec = torch.fft.rfft(torch.randn_like(x), dim=-1)
        f = torch.fft.rfftfreq(n, d=1 / SAMPLE_RATE).to(x.device).clamp_min(20.0)
        pink = torch.fft.irfft(spec / f.sqrt(), n=n, dim=-1)
        pink = pink / pink.pow(2).mean(dim=-1, keepdim=True).add(1e-12).sqrt()
        rms = x.pow(2).mean(dim=-1, keepdim=True).sqrt()
        return x + sigma * pink * (rms / 0.1), y  # sigma is relative to a 0.1-RMS signal

    return run


def gain(factor: float) -> Aug:
    return lambda x, y, _r: (x * factor, y)


def echo(delay_s: float, volume: float) -> Aug:
    def run(
        x: torch.Tensor, y: torch.Tensor, _r: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        d = int(delay_s * SAMPLE_RATE)
        delayed = F.pad(x, (d, 0))[..., : x.shape[-1]]
        return (x + volume * delayed) / (1 + volume), y

    return run


def speed(factor: float) -> Aug:
    """Play faster or slower (pitch changes too), resampling audio and labels alike."""

    def run(
        x: torch.Tensor, y: torch.Tensor, _r: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = max(16, round(x.shape[-1] / factor))
        xs = F.interpolate(x, size=n, mode="linear", align_corners=False)
        ys = F.interpolate(y, size=n, mode="nearest")
        return xs, ys

    return run


def speed_between(lo: float, hi: float) -> Aug:
    """:func:`speed` at a factor drawn uniformly from ``lo``-``hi`` at each call."""
    return lambda x, y, r: speed(r.uniform(lo, hi))(x, y, r)


WSOLA_FRAME = 512
"""Samples per frame of :func:`tempo` (32 ms at 16 kHz), overlapped by half."""
WSOLA_SEARCH = 128
"""How far (samples) a frame may move to continue the previous one's waveform."""


def _wsola_starts(x: np.ndarray, factor: float) -> np.ndarray:
    """Where each output frame of a ``factor`` times faster ``x`` is read from: near its
    nominal place, moved to continue the waveform of the frame before (WSOLA)."""
    n, hop = WSOLA_FRAME, WSOLA_FRAME // 2
    count = max(1, int((len(x) / factor - n) // hop) + 1)
    starts = np.zeros(count, dtype=np.int64)
    for k in range(1, count):
        natural = starts[k - 1] + hop  # what would follow the last frame seamlessly
        nominal = round(k * hop * factor)
        lo = max(0, nominal - WSOLA_SEARCH)
        hi = min(len(x) - n, nominal + WSOLA_SEARCH)
        if hi < lo or natural + n > len(x):
            starts[k] = min(max(0, nominal), max(0, len(x) - n))
            continue
        template = x[natural : natural + n]
        corr = np.correlate(x[lo : hi + n], template, mode="valid")
        starts[k] = lo + int(np.argmax(corr))
    return starts


def tempo(factor: float) -> Aug:
    """Play ``factor`` times faster with the pitch kept (WSOLA: half-overlapping 32 ms
    frames, each moved within +-8 ms to continue the last one's waveform), labels alike.

    Frame positions are chosen on the audio's values; the overlap-add is done in torch,
    so gradients reach the audio.
    """

    def run(
        x: torch.Tensor, y: torch.Tensor, _r: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, n = x.shape
        frame, hop = WSOLA_FRAME, WSOLA_FRAME // 2
        if n < frame + 2 * WSOLA_SEARCH:
            return x, y
        flat = x.detach().reshape(b * c, n).float().cpu().numpy()
        starts = torch.from_numpy(np.stack([_wsola_starts(row, factor) for row in flat]))
        count = starts.shape[1]
        at = (starts[:, :, None] + torch.arange(frame)).to(x.device)  # (BC, K, frame)
        window = torch.hann_window(frame, periodic=True, device=x.device, dtype=x.dtype)
        frames = torch.gather(x.reshape(b * c, 1, n).expand(-1, count, -1), 2, at) * window
        out_n = (count - 1) * hop + frame
        out = F.fold(
            frames.transpose(1, 2), (1, out_n), kernel_size=(1, frame), stride=(1, hop)
        ).reshape(b, c, out_n)
        labels = y.reshape(b * c, 1, n).expand(-1, count, -1)
        centre = torch.gather(labels, 2, (starts + frame // 2)[:, :, None].to(y.device))
        ys = centre.expand(-1, -1, hop).reshape(b * c, 1, count * hop)[..., :out_n]
        ys = F.pad(ys, (0, out_n - ys.shape[-1]), mode="replicate").reshape(b, y.shape[1], out_n)
        return out, ys

    return run


def tempo_between(lo: float, hi: float) -> Aug:
    """:func:`tempo` at a factor drawn uniformly from ``lo``-``hi`` at each call."""
    return lambda x, y, r: tempo(r.uniform(lo, hi))(x, y, r)


def pitch_between(semitones: float) -> Aug:
    """Pitch moved by up to ``semitones`` either way, duration kept: a speed change, then
    the tempo change that undoes its length."""

    def run(
        x: torch.Tensor, y: torch.Tensor, r: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ratio = 2 ** (r.uniform(-semitones, semitones) / 12)
        xs, ys = speed(ratio)(x, y, r)
        return tempo(1 / ratio)(xs, ys, r)

    return run


def resample_through(rate: int) -> Aug:
    """Down to ``rate`` and back: band-limits to ``rate / 2`` and aliases nothing."""
    return lowpass(rate / 2 * 0.95) if rate < SAMPLE_RATE else (lambda x, y, _r: (x, y))


def mix_other(snr_db: float) -> Aug:
    """Add another item of the batch (other speech) at ``snr_db`` below the signal."""

    def run(
        x: torch.Tensor, y: torch.Tensor, _r: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        other = torch.roll(x, 1, dims=0).detach()
        p_x = x.pow(2).mean(dim=-1, keepdim=True)
        p_o = other.pow(2).mean(dim=-1, keepdim=True).add(1e-10)
        return x + other * torch.sqrt(p_x / (p_o * 10 ** (snr_db / 10))), y

    return run


def codec(name: str, kbps: int) -> Aug:
    """Real codec round-trip through ffmpeg, gradient passed straight through."""

    def run(
        x: torch.Tensor, y: torch.Tensor, _r: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from guardian.audio import Audio, decode_bytes, encode_bytes, resample

        def round_trip(item: np.ndarray) -> np.ndarray:
            peak = float(np.abs(item).max()) or 1.0
            scale = min(1.0, 0.99 / peak)
            data = encode_bytes(
                Audio((item * scale)[:, None], SAMPLE_RATE), name, bitrate_kbps=kbps
            )
            dec = decode_bytes(data)
            mono = resample(dec.mono(), dec.sample_rate, SAMPLE_RATE)
            return align(item * scale, mono) / scale

        items = list(x.detach().cpu().numpy()[:, 0, :])
        # Each item is its own ffmpeg process: run them side by side, one per core.
        with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
            outs = list(pool.map(round_trip, items))
        coded = torch.from_numpy(np.stack(outs)[:, None, :]).to(x)
        return x + (coded - x).detach(), y

    return run


def align(reference: np.ndarray, processed: np.ndarray, *, max_lag: int = 4096) -> np.ndarray:
    """Undo a codec's start delay (found by cross-correlation) and match the length."""
    n = len(reference)
    size = 1 << math.ceil(math.log2(n + len(processed)))
    corr = np.fft.irfft(np.fft.rfft(processed, size) * np.conj(np.fft.rfft(reference, size)), size)
    lags = np.concatenate([corr[: max_lag + 1], corr[-max_lag:]])
    best = int(np.argmax(lags))
    lag = best if best <= max_lag else best - len(lags)
    shifted = processed[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), processed])
    out = np.zeros(n, dtype=np.float32)
    m = min(n, len(shifted))
    out[:m] = shifted[:m]
    return out


def misalign(
    x: torch.Tensor, y: torch.Tensor, rng: random.Random, *, max_shift: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift the audio by a random whole-plus-fractional number of samples.

    The generator and the detector share SEANet's frame grid (``max_shift`` samples per
    latent frame). Without this, a detector can learn to expect the watermark on that
    grid, and a codec's start delay, a crop or a splice, which move the audio by an
    arbitrary and often fractional number of samples, make it blind.
    """
    whole = rng.randrange(max_shift)
    frac = rng.random()
    n = x.shape[-1]
    f = torch.fft.rfftfreq(n, device=x.device)
    delayed = torch.fft.irfft(
        torch.fft.rfft(x, dim=-1) * torch.exp(-2j * math.pi * f * frac), n=n, dim=-1
    )
    return delayed[..., whole:], y[..., whole:]


def identity() -> Aug:
    return lambda x, y, _r: (x, y)


# (name, augmentation, relative weight). Codecs are slow on CPU, so they are drawn
# less often; each is still seen thousands of times over a training run.
TRAINING_AUGMENTATIONS: list[tuple[str, Aug, float]] = [
    ("identity", identity(), 2.0),
    ("white_noise_20db", white_noise(20.0), 1.0),
    ("white_noise_10db", white_noise(10.0), 0.5),
    ("pink_noise", pink_noise(0.05), 1.0),
    ("pink_noise_0db", pink_noise(0.1), 0.0),  # the suite's level; recipes opt in
    ("lowpass_3k", lowpass(3000.0), 1.0),
    ("lowpass_5k", lowpass(5000.0), 0.5),
    ("highpass_500", highpass(500.0), 1.0),
    ("bandpass_500_5000", bandpass(500.0, 5000.0), 1.0),
    ("resample_8k", resample_through(8000), 1.0),
    ("speed_0.9", speed(0.9), 0.7),
    ("speed_1.1", speed(1.1), 0.7),
    ("echo", echo(0.3, 0.5), 1.0),
    ("boost", gain(10.0), 0.3),
    ("duck", gain(0.1), 0.3),
    ("mix_speech_10db", mix_other(10.0), 1.0),
    ("mp3_32k", codec("mp3", 32), 0.5),
    ("mp3_64k", codec("mp3", 64), 0.7),
    ("aac_64k", codec("aac", 64), 0.5),
    ("opus_16k", codec("opus", 16), 0.5),
    # Continuous time-scale changes; recipes opt in.
    ("speed_0.8_1.25", speed_between(0.8, 1.25), 0.0),
    ("tempo_0.8_1.25", tempo_between(0.8, 1.25), 0.0),
    ("pitch_2.5", pitch_between(2.5), 0.0),
]


def weights(overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Each augmentation's relative weight: the defaults above, with ``overrides``.

    An unknown name is an error, so that a typo in a recipe cannot silently drop an
    attack from training.
    """
    out = {name: w for name, _aug, w in TRAINING_AUGMENTATIONS}
    for name, w in (overrides or {}).items():
        if name not in out:
            raise ValueError(f"unknown training augmentation {name!r}; known: {', '.join(out)}")
        if w < 0:
            raise ValueError(f"augmentation weight for {name!r} must be >= 0, got {w}")
        out[name] = float(w)
    if not any(out.values()):
        raise ValueError("every training augmentation has weight 0")
    return out


def choose(rng: random.Random, weighting: dict[str, float] | None = None) -> tuple[str, Aug]:
    table = weighting or weights()
    names = [name for name, _aug, _w in TRAINING_AUGMENTATIONS]
    i = rng.choices(range(len(names)), weights=[table[n] for n in names])[0]
    return names[i], TRAINING_AUGMENTATIONS[i][1]
