"""Tests for the registry fingerprint (guardian.provenance.fingerprint)."""

from __future__ import annotations

import contextlib
import struct
from collections import Counter
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter, resample_poly

from guardian.provenance.fingerprint import (
    FINGERPRINT_VERSION,
    MIN_DURATION_SECONDS,
    SILENT_HASH,
    Fingerprint,
    FingerprintIndex,
    Match,
    ber_threshold,
    check_candidates,
    compare,
    compute,
    scaled,
    vote_postings,
)

RATE = 16_000
_FORMANTS = ((300, 900), (900, 2500), (2300, 3500))


@cache
def speech_like(seed: int, seconds: float = 4.0) -> np.ndarray:
    """Syllables of a glottal pulse train (or noise) through three moving formants,
    with pauses: enough spectral motion in 300-3400 Hz to behave like speech."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    pos = 0
    while pos < len(out):
        n = min(int(rng.uniform(0.12, 0.3) * RATE), len(out) - pos)
        if rng.random() < 0.15:  # pause
            pos += n
            continue
        if rng.random() < 0.2:  # fricative
            excitation = 0.3 * rng.standard_normal(n)
        else:
            f0 = rng.uniform(90, 220) * np.linspace(1.0, rng.uniform(0.85, 1.15), n)
            excitation = np.diff(np.floor(np.cumsum(f0 / RATE)), prepend=0.0)
        voiced = excitation
        for low, high in _FORMANTS:
            r = np.exp(-np.pi * rng.uniform(80, 150) / RATE)
            theta = 2 * np.pi * rng.uniform(low, high) / RATE
            voiced = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], voiced)
        out[pos : pos + n] = voiced * np.hanning(n) ** 0.5
        pos += n
    return np.asarray(0.5 * out / np.max(np.abs(out)), dtype=np.float32)


@cache
def fingerprint_of(seed: int) -> Fingerprint:
    return compute(speech_like(seed), RATE)


# --- serialisation --------------------------------------------------------------------


def test_round_trip() -> None:
    fp = fingerprint_of(1)
    data = fp.to_bytes()
    again = Fingerprint.from_bytes(data)
    assert again == fp
    assert again.hashes.dtype == np.uint32
    assert len(data) == 18 + 4 * len(fp.hashes)


def test_round_trip_keeps_version_and_hop() -> None:
    fp = Fingerprint(hashes=np.array([1, 2, 3], dtype=np.uint32), hop_seconds=0.02, version=7)
    again = Fingerprint.from_bytes(fp.to_bytes())
    assert (again.version, again.hop_seconds, again.hashes.tolist()) == (7, 0.02, [1, 2, 3])


@given(st.binary(max_size=200))
def test_from_bytes_rejects_garbage_with_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):  # any other exception fails the test
        Fingerprint.from_bytes(data)


@given(
    version=st.integers(0, 2**16 - 1),
    hop=st.floats(allow_nan=True, allow_infinity=True),
    count=st.integers(0, 2**32 - 1),
    body=st.binary(max_size=64),
)
def test_from_bytes_with_plausible_header(
    version: int, hop: float, count: int, body: bytes
) -> None:
    data = struct.pack("<4sHdI", b"GFP1", version, hop, count) + body
    try:
        fp = Fingerprint.from_bytes(data)
    except ValueError:
        return
    assert fp.to_bytes() == data


def test_fingerprint_is_immutable() -> None:
    fp = fingerprint_of(1)
    with pytest.raises(ValueError):
        fp.hashes[0] = 1


@pytest.mark.parametrize(
    ("hashes", "hop", "version"),
    [(np.zeros((2, 2)), 0.016, 1), ([1], 0.0, 1), ([1], float("nan"), 1), ([1], 0.016, 0)],
)
def test_fingerprint_invariants(hashes: object, hop: float, version: int) -> None:
    with pytest.raises(ValueError):
        Fingerprint(hashes=np.asarray(hashes), hop_seconds=hop, version=version)


# --- robustness -----------------------------------------------------------------------


@pytest.mark.parametrize("db", [-1.0, 1.0, -20.0])
def test_gain_invariance(db: float) -> None:
    louder = speech_like(2) * np.float32(10 ** (db / 20))
    match = compare(compute(louder, RATE), fingerprint_of(2), offsets=[0])
    assert match.is_match
    assert match.ber < 0.01


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_resampled_copy_matches(rate: int) -> None:
    resampled = resample_poly(speech_like(3), rate, RATE).astype(np.float32)
    back = resample_poly(resampled, RATE, rate).astype(np.float32)
    for samples, sr in ((resampled, rate), (back, RATE)):
        match = compare(compute(samples, sr), fingerprint_of(3))
        assert match.is_match
        assert match.offset_frames == 0
        assert match.ber < 0.05


def test_noisy_copy_matches() -> None:
    clean = speech_like(4)
    noise = np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    noisy = clean + noise * np.float32(np.sqrt(np.mean(clean**2) / 100))  # 20 dB SNR
    assert compare(compute(noisy, RATE), fingerprint_of(4)).is_match


def test_stereo_is_fingerprinted_as_its_mix() -> None:
    mono = speech_like(5)
    stereo = np.stack([mono * 0.5, mono * 1.5], axis=1)
    assert compute(stereo, RATE) == compute(mono, RATE)


def test_unrelated_signals_do_not_match() -> None:
    fps = [fingerprint_of(seed) for seed in range(10, 16)]
    for i, query in enumerate(fps):
        for reference in fps[i + 1 :]:
            match = compare(query, reference)
            assert not match.is_match
            assert match.ber > 0.35


def test_excerpt_matches_at_its_offset() -> None:
    start = int(1.3 * RATE) + 37  # not a whole number of hops
    excerpt = speech_like(6)[start : start + 2 * RATE]
    match = compare(compute(excerpt, RATE), fingerprint_of(6))
    assert match.is_match
    assert abs(match.offset_frames * 0.016 - 1.3) < 0.02


# --- input checks and silence ---------------------------------------------------------


def test_too_short_input_raises() -> None:
    short = speech_like(7)[: int(MIN_DURATION_SECONDS * RATE) - 1]
    with pytest.raises(ValueError, match="shorter"):
        compute(short, RATE)
    compute(speech_like(7)[: int(MIN_DURATION_SECONDS * RATE)], RATE)


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros((RATE, 2, 1), np.float32),
        np.full(RATE * 2, np.nan, np.float32),
        np.zeros((RATE, 0)),
    ],
)
def test_bad_samples_raise(samples: np.ndarray) -> None:
    with pytest.raises(ValueError):
        compute(samples, RATE)


@pytest.mark.parametrize("rate", [0, 3999, 999_983])
def test_bad_rate_raises(rate: int) -> None:
    with pytest.raises(ValueError):
        compute(speech_like(7), rate)


def test_odd_rate_is_approximated() -> None:
    clip = speech_like(7)
    resampled = resample_poly(clip, 44_101, RATE).astype(np.float32)
    assert compare(compute(resampled, 44_101), fingerprint_of(7), offsets=[0]).ber < 0.05


def test_silence_matches_nothing() -> None:
    silence = compute(np.zeros(3 * RATE, np.float32), RATE)
    assert np.all(silence.hashes == SILENT_HASH)
    assert silence.index_keys() == []
    assert not compare(silence, silence).is_match
    assert not compare(silence, fingerprint_of(8)).is_match
    assert not compare(fingerprint_of(8), silence).is_match


def test_silent_gaps_are_skipped() -> None:
    gap = np.zeros(2 * RATE, np.float32)
    padded_a = np.concatenate([speech_like(8, 1.5), gap, speech_like(9, 1.5)])
    padded_b = np.concatenate([speech_like(10, 1.5), gap, speech_like(11, 1.5)])
    fp_a, fp_b = compute(padded_a, RATE), compute(padded_b, RATE)
    assert np.count_nonzero(fp_a.hashes == SILENT_HASH) > 80
    assert all(h != SILENT_HASH for h, _ in fp_a.index_keys())
    assert not compare(fp_a, fp_b).is_match
    assert compare(compute(padded_a * np.float32(0.7), RATE), fp_a).is_match


def test_near_silent_noise_floor_counts_as_silence() -> None:
    hiss = 1e-6 * np.random.default_rng(1).standard_normal(3 * RATE)
    loud = np.concatenate([hiss, speech_like(12, 2.0)]).astype(np.float32)
    fp = compute(loud, RATE)
    assert np.all(fp.hashes[: int(2.5 / 0.016)] == SILENT_HASH)


# --- thresholds and matching --------------------------------------------------------


def test_threshold_is_stricter_for_short_overlaps() -> None:
    values = [ber_threshold(n) for n in range(0, 2000, 7)]
    assert values == sorted(values)
    assert ber_threshold(0) == 0.0
    assert ber_threshold(40) < 0.2 < ber_threshold(200) <= 0.3


def test_match_needs_enough_overlap() -> None:
    assert not Match(ber=0.0, offset_frames=0, overlap_frames=5).is_match
    assert Match(ber=0.0, offset_frames=0, overlap_frames=100)
    with pytest.raises(ValueError):
        Match(ber=1.5, offset_frames=0, overlap_frames=10)


def test_compare_refuses_other_versions() -> None:
    fp = fingerprint_of(1)
    other = Fingerprint(
        hashes=fp.hashes, hop_seconds=fp.hop_seconds, version=FINGERPRINT_VERSION + 1
    )
    with pytest.raises(ValueError):
        compare(fp, other)


def test_votes_go_to_the_offset_delta_most_pairs_share() -> None:
    keys = [(1, 0), (2, 5), (3, 7), (4, 3), (5, 9)]
    postings = np.array([(1, 0, 10), (2, 0, 15), (3, 0, 17), (4, 0, 4), (5, 0, 40)])
    assert vote_postings(keys, postings) == [(0, [10, 1, 31])]


def _counted_vote(
    keys: list[tuple[int, int]], postings: np.ndarray, limit: int
) -> list[tuple[int, list[int]]]:
    """The vote spelled out, a counter per reference: what vote_postings computes."""
    votes: dict[int, Counter[int]] = {}
    for h, q in keys:
        for _, ref, r in postings[postings[:, 0] == h].tolist():
            votes.setdefault(ref, Counter())[r - q] += 1
    ranked = sorted(votes, key=lambda ref: (-max(votes[ref].values()), ref))[:limit]
    return [(ref, sorted(votes[ref], key=lambda o: (-votes[ref][o], o))[:3]) for ref in ranked]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_voting_on_arrays_counts_every_pair_of_equal_hashes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = [(int(h), int(f)) for h, f in zip(rng.integers(0, 40, 60), rng.permutation(60))]
    postings = np.column_stack(
        [rng.integers(0, 50, 400), rng.integers(0, 12, 400), rng.integers(0, 80, 400)]
    ).astype(np.int64)
    assert vote_postings(keys, postings, limit=5) == _counted_vote(keys, postings, 5)
    assert vote_postings([], postings) == [] and vote_postings(keys, postings[:0]) == []
    assert vote_postings([(99, 0)], postings) == []  # rows, none of them the query's


def test_index_keys_select_by_value_so_both_sides_agree() -> None:
    fp = fingerprint_of(13)
    keys = fp.index_keys()
    assert 0.15 * len(fp.hashes) < len(keys) < 0.35 * len(fp.hashes)
    # The same hashes at other positions are selected alike: a query finds every
    # stored row whose hash it shares, whatever the alignment.
    shifted = Fingerprint(hashes=np.concatenate([[7], fp.hashes]), hop_seconds=fp.hop_seconds)
    assert {h for h, _ in shifted.index_keys()} - {7} == {h for h, _ in keys}
    assert [o + 1 for _, o in keys] == [o for h, o in shifted.index_keys() if h != 7]


def test_index_lookup_finds_the_right_clip() -> None:
    index = FingerprintIndex()
    for seed in range(20, 26):
        index.add(f"clip-{seed}", fingerprint_of(seed))
    assert len(index) == 6
    clip = speech_like(23)
    start = int(0.7 * RATE) + 11
    query = resample_poly(clip[start:], 441, 160).astype(np.float32) * np.float32(0.9)
    results = index.lookup(compute(query, 44_100))
    assert [key for key, _ in results] == ["clip-23"]
    assert abs(results[0][1].offset_frames - round(0.7 / 0.016)) <= 1
    assert index.lookup(fingerprint_of(30)) == []


def test_index_rejects_duplicate_keys() -> None:
    index = FingerprintIndex()
    index.add("a", fingerprint_of(1))
    with pytest.raises(ValueError):
        index.add("a", fingerprint_of(2))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 20))
def test_candidates_voted_by_chance_do_not_match(seed: int) -> None:
    rng = np.random.default_rng(seed)
    refs = {f"r{i}": fingerprint_of(40 + i) for i in range(3)}
    voted = [(key, rng.integers(-200, 200, 3).tolist()) for key in refs]
    assert check_candidates(fingerprint_of(50), voted, refs.__getitem__) == []


@pytest.mark.parametrize("speed", [0.9, 0.955, 1.035, 1.1])
def test_the_scaled_search_undoes_a_speed_change(speed: float) -> None:
    """Played faster or slower (resampled), a clip no longer matches as it is; one of
    the scaled queries does, at about the factor applied."""
    x = speech_like(11, seconds=8.0)
    reference = compute(x, RATE)
    changed = resample_poly(x, 1000, round(1000 * speed)).astype(np.float32)
    assert not compare(compute(changed, RATE), reference)
    best = min(scaled(changed, RATE), key=lambda v: compare(v.fingerprint, reference).ber)
    match = compare(best.fingerprint, reference)
    assert match and match.ber < 0.2
    assert best.change == "speed" and abs(best.factor - speed) <= 0.015


def test_the_scaled_search_never_matches_unrelated_audio() -> None:
    """Through the index, as the registry searches: 40 queries per clip, none matches."""
    index = FingerprintIndex()
    for seed in range(20, 30):
        index.add(f"ref-{seed}", compute(speech_like(seed, seconds=6.0), RATE))
    for seed in range(40, 45):
        assert index.lookup_scaled(speech_like(seed, seconds=6.0), RATE) == []
    changed = resample_poly(speech_like(25, seconds=6.0), 100, 105).astype(np.float32)
    assert [key for key, _ in index.lookup_scaled(changed, RATE)][:1] == ["ref-25"]


def test_the_scaled_search_refuses_what_compute_refuses() -> None:
    with pytest.raises(ValueError, match="shorter"):
        scaled(np.zeros(RATE // 2, dtype=np.float32), RATE)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 400),
    m=st.integers(1, 400),
    excerpt=st.booleans(),
    silent=st.floats(0.0, 0.6),
    flips=st.floats(0.0, 0.45),
)
def test_the_search_over_every_alignment_equals_trying_each_offset(
    seed: int, n: int, m: int, excerpt: bool, silent: float, flips: float
) -> None:
    """``compare`` without offsets scores all alignments at once (FFT); it must pick
    the same alignment, BER and overlap as the offset-by-offset comparison."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 2**32, m, dtype=np.uint32)
    if excerpt and n < m:
        start = int(rng.integers(0, m - n + 1))
        noise = rng.random((n, 32)) < flips
        query = ref[start : start + n] ^ (noise * (1 << np.arange(32, dtype=np.uint64))).sum(
            axis=1
        ).astype(np.uint32)
    else:
        query = rng.integers(0, 2**32, n, dtype=np.uint32)
    ref[rng.random(m) < silent] = SILENT_HASH
    query[rng.random(n) < silent / 2] = SILENT_HASH
    q, r = Fingerprint(query, 0.016), Fingerprint(ref, 0.016)
    every = range(-n + 32, m - 32 + 1)
    assert compare(q, r) == compare(q, r, offsets=every)
