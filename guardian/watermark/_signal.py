"""Differentiable signal helpers shared by embedding, detection and training."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from guardian.watermark._config import BAND_EDGE_HZ, DETECTOR_RMS, SAMPLE_RATE, EmbedConfig

_EPS = 1e-8


def envelope(x: torch.Tensor, cfg: EmbedConfig) -> torch.Tensor:
    """Smoothed amplitude envelope of ``x`` (B, 1, T), floored relative to its peak."""
    win = max(1, int(cfg.envelope_ms * SAMPLE_RATE / 1000)) | 1
    power = F.avg_pool1d(x.pow(2), win, stride=1, padding=win // 2, count_include_pad=False)
    env = power.clamp_min(0).add(_EPS).sqrt()
    peak = env.amax(dim=-1, keepdim=True)
    return torch.maximum(env, peak * 10 ** (cfg.envelope_floor_db / 20))


def freq_mask(
    x: torch.Tensor, lo: float | None, hi: float | None, width: float = 80.0
) -> torch.Tensor:
    """Smooth-edged FFT filter over the last axis: differentiable, zero phase."""
    n = x.shape[-1]
    f = torch.fft.rfftfreq(n, d=1 / SAMPLE_RATE).to(x.device)
    gain = torch.ones_like(f)
    if lo is not None:
        gain = gain * torch.sigmoid((f - lo) / width)
    if hi is not None:
        gain = gain * torch.sigmoid((hi - f) / width)
    out: torch.Tensor = torch.fft.irfft(torch.fft.rfft(x, dim=-1) * gain, n=n, dim=-1)
    return out


def band_limit(x: torch.Tensor, band_hz: tuple[float, float] | None) -> torch.Tensor:
    """Keep only ``band_hz`` of ``x`` (..., T); the identity without a band."""
    return x if band_hz is None else freq_mask(x, *band_hz, width=BAND_EDGE_HZ)


STFT_FFT = 512
STFT_HOP = 128


def spectral_mask(w: torch.Tensor, x: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Multiply ``w`` (B, 1, T) by the short-time magnitude of ``x`` in every STFT bin,
    raised to ``power``.

    A time-varying zero-phase filter, differentiable, so training sees exactly what
    embedding does. The overall level is left to the caller's SNR scaling.
    """
    window = torch.hann_window(STFT_FFT, device=w.device)

    def stft(v: torch.Tensor) -> torch.Tensor:
        return torch.stft(v[:, 0], STFT_FFT, STFT_HOP, window=window, return_complex=True)

    magnitude = stft(x).abs()
    masked = stft(w) * (magnitude if power == 1 else magnitude.add(_EPS).pow(power))
    out = torch.istft(masked, STFT_FFT, STFT_HOP, window=window, length=w.shape[-1])
    return out[:, None, :]


def shape_watermark(
    raw: torch.Tensor, x: torch.Tensor, cfg: EmbedConfig, *, snr_db: float | None = None
) -> torch.Tensor:
    """Shape the generator output to the speech envelope (and, with
    ``cfg.spectral_mask``, to its short-time spectrum) at an exact per-item SNR."""
    if not cfg.shaped:
        return raw
    snr = cfg.snr_db if snr_db is None else snr_db
    shaped = band_limit(raw * envelope(x, cfg), cfg.band_hz)
    if cfg.spectral_mask:
        shaped = band_limit(spectral_mask(shaped, x, cfg.spectral_mask_power), cfg.band_hz)
    return scale_to_snr(shaped, x, snr)


def scale_to_snr(w: torch.Tensor, x: torch.Tensor, snr_db: float) -> torch.Tensor:
    """Scale each item of ``w`` (..., T) so that ``x`` is ``snr_db`` above it."""
    p_x = x.pow(2).mean(dim=-1, keepdim=True)
    p_w = w.pow(2).mean(dim=-1, keepdim=True) + _EPS
    return w * torch.sqrt(p_x / (p_w * 10 ** (snr_db / 10)))


def normalize_loudness(x: torch.Tensor) -> torch.Tensor:
    """Scale each item to a fixed RMS: makes detection immune to boost and duck."""
    rms = x.pow(2).mean(dim=-1, keepdim=True).add(_EPS).sqrt()
    return x * (DETECTOR_RMS / rms)


def detector_input(x: torch.Tensor, cfg: EmbedConfig) -> torch.Tensor:
    """What the detector sees: the watermark's band, at a fixed loudness."""
    return normalize_loudness(band_limit(x, cfg.band_hz))


def snr_db(reference: torch.Tensor, processed: torch.Tensor) -> float:
    noise = (processed - reference).pow(2).sum().item()
    signal = reference.pow(2).sum().item()
    return 10 * math.log10((signal + _EPS) / (noise + _EPS))
