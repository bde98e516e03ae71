"""Band limit, envelope and spectral shaping, grid misalignment: the recipes' signal pieces."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from guardian.watermark._augment import misalign
from guardian.watermark._model import SAMPLE_RATE, EmbedConfig
from guardian.watermark._signal import band_limit, detector_input, shape_watermark

BAND = (600.0, 2700.0)


def _tone(hz: float, n: int = SAMPLE_RATE) -> torch.Tensor:
    t = torch.arange(n) / SAMPLE_RATE
    return torch.sin(2 * math.pi * hz * t)[None, None, :]


def _rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


@pytest.mark.parametrize(("hz", "kept"), [(300.0, False), (1500.0, True), (5000.0, False)])
def test_band_limit_keeps_the_band_only(hz: float, kept: bool) -> None:
    out = band_limit(_tone(hz), BAND)
    ratio = _rms(out) / _rms(_tone(hz))
    assert ratio > 0.99 if kept else ratio < 1e-3


def test_no_band_is_the_identity() -> None:
    x = torch.randn(2, 1, 800)
    assert torch.equal(band_limit(x, None), x)


def test_shaped_watermark_is_in_band_at_the_exact_snr() -> None:
    cfg = EmbedConfig(snr_db=26.0, band_hz=BAND)
    x = 0.3 * torch.randn(1, 1, SAMPLE_RATE)
    wm = shape_watermark(torch.randn(1, 1, SAMPLE_RATE), x, cfg)
    snr = 10 * math.log10(float(x.pow(2).sum() / wm.pow(2).sum()))
    assert snr == pytest.approx(cfg.snr_db, abs=1e-3)
    spec = torch.fft.rfft(wm[0, 0]).abs().pow(2)
    f = torch.fft.rfftfreq(SAMPLE_RATE, 1 / SAMPLE_RATE)
    outside = spec[(f < BAND[0] - 300) | (f > BAND[1] + 300)].sum() / spec.sum()
    assert float(outside) < 1e-4


def _level_db(w: torch.Tensor, hz: float) -> float:
    spec = torch.fft.rfft(w[0, 0]).abs().pow(2)
    f = torch.fft.rfftfreq(w.shape[-1], 1 / SAMPLE_RATE)
    return 10 * math.log10(float(spec[(f - hz).abs() < 40].sum()))


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_spectral_mask_keeps_the_watermark_at_a_constant_level_below_the_clip(
    power: float,
) -> None:
    torch.manual_seed(0)
    x = 0.3 * _tone(1000.0) + 0.003 * _tone(2200.0)  # the 2.2 kHz partial is 40 dB down
    raw = torch.randn(1, 1, SAMPLE_RATE)
    plain = shape_watermark(raw, x, EmbedConfig(band_hz=BAND, spectral_mask=False))
    cfg = EmbedConfig(band_hz=BAND, spectral_mask=True, spectral_mask_power=power)
    masked = shape_watermark(raw, x, cfg)
    # the envelope alone spreads the watermark over the band: as loud at 2.2 kHz as at 1 kHz
    assert abs(_level_db(plain, 1000.0) - _level_db(plain, 2200.0)) < 6
    # masked, it follows the clip: 40 dB down where the clip is (20 dB at half power),
    # give or take 3
    depth = _level_db(masked, 1000.0) - _level_db(masked, 2200.0)
    assert depth == pytest.approx(40 * power, abs=3)
    snr = 10 * math.log10(float(x.pow(2).sum() / masked.pow(2).sum()))
    assert snr == pytest.approx(cfg.snr_db, abs=1e-3)


def test_spectral_mask_puts_nothing_where_the_clip_is_silent() -> None:
    x = 0.3 * _tone(1000.0)
    x[..., SAMPLE_RATE // 2 :] = 0
    raw = torch.randn(1, 1, SAMPLE_RATE)
    masked = shape_watermark(raw, x, EmbedConfig(band_hz=BAND, spectral_mask=True))
    half = SAMPLE_RATE // 2 + 800  # past the STFT overhang (and, at the end, the
    # band limit's circular wrap-around of the tone's abrupt start)
    assert _rms(masked[..., half:-800]) < 1e-3 * _rms(masked[..., : SAMPLE_RATE // 2])


def test_detector_input_ignores_level_and_out_of_band_energy() -> None:
    cfg = EmbedConfig(band_hz=BAND)
    speech = _tone(1000.0)
    loud_hiss = speech * 10 + 5 * _tone(6000.0)
    assert torch.allclose(detector_input(speech, cfg), detector_input(loud_hiss, cfg), atol=1e-3)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("spectral_mask_power", 0.0),
        ("spectral_mask_power", -0.5),
        ("spectral_mask_power", 2.5),
        ("detect_chunk_s", 0.5),
        ("detect_chunk_s", 600.0),
    ],
)
def test_bad_mask_powers_and_detection_chunks_are_refused(key: str, value: float) -> None:
    with pytest.raises(ValueError, match=key):
        EmbedConfig(spectral_mask=True, **{key: value})


@pytest.mark.parametrize("band", [(3000.0, 2000.0), (-1.0, 100.0), (100.0, 9000.0)])
def test_bad_bands_are_refused(band: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="band_hz"):
        EmbedConfig(band_hz=band)


def test_band_survives_the_card_round_trip() -> None:
    cfg = EmbedConfig(band_hz=[600, 2700])  # type: ignore[arg-type]  # as YAML gives it
    assert cfg.band_hz == BAND
    assert EmbedConfig(**cfg.to_dict()) == cfg
    masked = EmbedConfig(
        band_hz=BAND, spectral_mask=True, spectral_mask_power=0.5, detect_chunk_s=2.0
    )
    assert EmbedConfig(**masked.to_dict()) == masked


def test_misalign_delays_by_a_whole_plus_fractional_shift() -> None:
    n, hz = 4000, 440.0
    x = _tone(hz, n).double()
    labels = torch.ones(1, 1, n)
    rng = random.Random(3)
    out, out_labels = misalign(x, labels, rng, max_shift=320)
    whole = n - out.shape[-1]
    assert 0 <= whole < 320 and out_labels.shape[-1] == out.shape[-1]
    rng = random.Random(3)
    rng.randrange(320)
    frac = rng.random()
    t = (torch.arange(whole, n, dtype=torch.float64) - frac) / SAMPLE_RATE
    expected = torch.sin(2 * math.pi * hz * t)
    inner = slice(200, -200)  # away from the circular FFT shift's wrap-around
    assert np.allclose(out[0, 0, inner].numpy(), expected[inner].numpy(), atol=2e-2)
