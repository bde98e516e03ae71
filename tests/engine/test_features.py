"""Numeric building blocks of the engine, property-tested."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from guardian.engine._adapter import cepstra, envelope
from guardian.engine._align import dtw_path, speech_span
from guardian.engine._world import N_MEL, from_mel, mel_freqs, to_mel

finite = st.floats(-8.0, 8.0, allow_nan=False, width=32)


@given(arrays(np.float32, (5, N_MEL), elements=finite))
def test_cepstra_invert(env: np.ndarray) -> None:
    np.testing.assert_allclose(envelope(cepstra(env)), env, atol=1e-4)


@given(arrays(np.float32, (3, 20), elements=st.floats(-2.0, 2.0, width=32)))
def test_smooth_envelopes_survive_the_linear_round_trip(low: np.ndarray) -> None:
    # Spectral envelopes are smooth (the adapter's cepstra are low-order): going to FFT
    # bins for WORLD and sampling back at the mel points must keep them.
    cep = np.zeros((3, N_MEL), np.float32)
    cep[:, :20] = low
    env = envelope(cep).astype(np.float64)
    back = to_mel(np.log(from_mel(env)))
    # Below about 250 Hz the mel points are closer than the FFT bins, so peaks there
    # are smoothed a little; above, the round trip is within 0.1 neper (under 1 dB).
    above = mel_freqs() > 250.0
    np.testing.assert_allclose(back[:, above], env[:, above], atol=0.1)
    np.testing.assert_allclose(back, env, atol=0.3)


@given(
    st.integers(5, 60),
    st.integers(5, 60),
    st.integers(0, 2**16),
)
def test_dtw_path_is_monotone_and_spans_the_source(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, N_MEL)), rng.normal(size=(m, N_MEL))
    path = dtw_path(a, b)
    assert path.shape == (n,)
    assert path[0] == 0 or m > 2 * n
    assert (np.diff(path) >= 0).all() and (np.diff(path) <= 2).all()
    assert path.min() >= 0 and path.max() <= m - 1


def test_dtw_recovers_a_known_stretch() -> None:
    rng = np.random.default_rng(0)
    src = np.cumsum(rng.normal(size=(40, N_MEL)), axis=0)
    tgt = np.repeat(src, 2, axis=0)  # the target speaks twice as slowly
    path = dtw_path(tgt, src)
    np.testing.assert_array_equal(path, np.repeat(np.arange(40), 2))


@given(arrays(np.bool_, st.integers(1, 50)))
def test_speech_span_covers_every_loud_frame(speech: np.ndarray) -> None:
    start, end = speech_span(speech)
    assert not speech[:start].any() and not speech[end:].any()
