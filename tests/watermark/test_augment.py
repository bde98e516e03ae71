"""The training attacks: codec round-trips through the real ffmpeg encoders."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from guardian.watermark import _augment
from guardian.watermark._model import SAMPLE_RATE


def _tones(batch: int, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    freqs = torch.tensor([300.0, 440.0, 700.0, 1100.0][:batch])[:, None]
    return (0.3 * torch.sin(2 * torch.pi * freqs * t))[:, None, :]


@pytest.mark.parametrize(("name", "kbps"), [("mp3", 32), ("opus", 16)])
def test_codec_round_trip_is_real_aligned_and_straight_through(name: str, kbps: int) -> None:
    x = _tones(3).requires_grad_(True)
    labels = torch.ones_like(x)
    out, out_labels = _augment.codec(name, kbps)(x, labels, random.Random(0))
    assert out.shape == x.shape and out_labels is labels
    diff = (out - x).detach()
    assert float(diff.abs().max()) > 1e-3  # the codec changed the audio ...
    for coded, clean in zip(out.detach()[:, 0].numpy(), x.detach()[:, 0].numpy(), strict=True):
        mid = slice(2000, -2000)  # ... but kept each item's own tone, in place
        assert np.corrcoef(coded[mid], clean[mid])[0, 1] > 0.9
    out.sum().backward()  # gradient passes straight through the codec
    assert x.grad is not None and torch.allclose(x.grad, torch.ones_like(x))


def _peak_hz(x: torch.Tensor) -> float:
    spectrum = np.abs(np.fft.rfft(x.detach().numpy() * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), d=1 / SAMPLE_RATE)[spectrum.argmax()])


@pytest.mark.parametrize("factor", [0.8, 1.17])
def test_tempo_changes_the_length_and_keeps_the_pitch(factor: float) -> None:
    x = _tones(3, seconds=2.0).requires_grad_(True)
    labels = torch.zeros_like(x)
    labels[..., SAMPLE_RATE:] = 1  # the second half is watermarked
    out, out_labels = _augment.tempo(factor)(x, labels, random.Random(0))
    assert abs(out.shape[-1] - x.shape[-1] / factor) < _augment.WSOLA_FRAME
    assert out_labels.shape == out.shape
    for got, sent in zip(out.detach()[:, 0], x.detach()[:, 0], strict=True):
        assert abs(_peak_hz(got) - _peak_hz(sent)) < 2.0  # a resampling would move it
    # the labels moved with the audio: the watermarked half starts 1 s / factor in
    start = int(torch.nonzero(out_labels[0, 0]).min())
    assert abs(start - SAMPLE_RATE / factor) < _augment.WSOLA_FRAME
    mid = out.detach()[0, 0, 2000:-2000]  # overlap-add keeps the tone's level
    assert abs(float(mid.pow(2).mean().sqrt()) - 0.3 / np.sqrt(2)) < 0.03
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_pitch_moves_the_tones_and_keeps_the_length() -> None:
    x = _tones(2, seconds=2.0)
    rng = random.Random(3)
    ratio = 2 ** (random.Random(3).uniform(-2.5, 2.5) / 12)  # what the augmentation draws
    out, _ = _augment.pitch_between(2.5)(x, torch.ones_like(x), rng)
    assert abs(out.shape[-1] - x.shape[-1]) < _augment.WSOLA_FRAME
    assert abs(_peak_hz(out[0, 0]) / 300.0 - ratio) < 0.01
