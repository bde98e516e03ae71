"""A deployment's secret payload code: its bit code and where its tones lie."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.watermark import SHIPPED_CARD, PayloadKey
from guardian.watermark._config import card_embed, read_card
from guardian.watermark._payload import (
    TONE_BAND_HZ,
    TONE_GAP_HZ,
    TONE_HIGH_HZ,
    TONE_LOW_HZ,
    keyed_tones,
)

SECRETS = st.binary(min_size=32, max_size=32)


@given(SECRETS)
@settings(max_examples=200)
def test_keyed_tones_keep_the_reader_s_spacing(secret: bytes) -> None:
    pairs = keyed_tones(secret)
    assert len(pairs) == 16
    flat = sorted(f for pair in pairs for f in pair)
    assert all(f % 10 == 0 and TONE_LOW_HZ <= f <= TONE_HIGH_HZ for f in flat)
    assert min(b - a for a, b in itertools.pairwise(flat)) >= TONE_GAP_HZ
    for i, (a, b) in enumerate(pairs):  # one pair per band: the code covers the span
        low = TONE_LOW_HZ + TONE_BAND_HZ * i
        assert low <= min(a, b) and max(a, b) < low + TONE_BAND_HZ


SHIPPED_EMBED = card_embed(SHIPPED_CARD, read_card(SHIPPED_CARD))  # the card alone: no weights


@given(SECRETS)
@settings(max_examples=50)
def test_the_shipped_model_accepts_every_keyed_code(secret: bytes) -> None:
    tones = PayloadKey.derive(secret).tones
    assert replace(SHIPPED_EMBED, payload_tones=tones).payload_tones == tones


def test_keyed_tones_are_fixed_by_the_secret_and_differ_between_secrets() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert keyed_tones(a) == keyed_tones(a)
    assert keyed_tones(a) != keyed_tones(b)
    assert "redacted" in repr(PayloadKey.derive(a))
