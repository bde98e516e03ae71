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
