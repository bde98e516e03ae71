"""Robust audio fingerprints for the provenance registry.

A fingerprint lets ``guardian verify`` find a clip's registry row after its C2PA
manifest was stripped or the audio was re-encoded. The scheme follows the idea of
Haitsma and Kalker ("A Highly Robust Audio Fingerprinting System", ISMIR 2002):
one 32-bit sub-fingerprint per short hop, each bit the sign of an energy difference
across neighbouring bands *and* neighbouring frames. Signs of energy differences do
not change under gain, and survive lossy codecs and resampling because they depend
on the coarse spectral shape only. Guardian's clips are speech, so the bands cover
300-3400 Hz (the telephone band) rather than the paper's 300-2000 Hz: on the speech
benchmark that lowered the bit error rate after MP3 32 kbps and noise and kept
unrelated clips further apart.

Search is split so that a SQL table can do the first step:

1. exact look-ups of the query's sub-fingerprints in an inverted index of
   ``(hash, clip, frame_offset)`` rows (:meth:`Fingerprint.index_keys`);
2. votes per clip over the offset delta ``ref_offset - query_offset``
   (:func:`vote_postings`);
3. a bit-error-rate check of the few best candidates (:func:`compare`), with a
   threshold that grows stricter as the overlap shrinks (:func:`ber_threshold`).

Everything here is pure computation: no database, no files.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from guardian._numeric import percentile
from guardian.audio import resample_poly

__all__ = [
    "FINGERPRINT_VERSION",
    "MIN_DURATION_SECONDS",
    "SCALES",
    "SILENT_HASH",
    "Fingerprint",
    "FingerprintIndex",
    "Match",
    "ScaledFingerprint",
    "ber_threshold",
    "check_candidates",
    "compare",
    "compute",
    "scaled",
    "vote_postings",
]

FINGERPRINT_VERSION: Final = 1
"""Bumped whenever a parameter below changes; fingerprints of different versions
cannot be compared."""

_RATE: Final = 8000
_FRAME: Final = 3072  # 0.384 s: long frames make the bits robust to codecs.
_HOP: Final = 128  # 16 ms: at most 8 ms misalignment for an unknown start.
_N_BANDS: Final = 33  # 33 bands give 32 band differences, one per bit.
_F_LO: Final = 300.0
_F_HI: Final = 3400.0
_SILENCE_ABS: Final = 1e-9  # mean power per sample, about -90 dBFS.
_SILENCE_REL: Final = 10 ** (-45 / 10)  # relative to the loud (95th pct) frames.

SILENT_HASH: Final = 0
"""Sub-fingerprint value reserved for frames that are (near) silent. They are never
indexed and never counted in a comparison, so silence cannot match silence."""

MIN_DURATION_SECONDS: Final = 1.0
"""Shortest input :func:`compute` accepts."""

_MIN_OVERLAP: Final = 32  # sub-fingerprints (0.51 s) needed before a match counts.
_MAX_BER: Final = 0.30
# Neighbouring sub-fingerprints share most of their frame, so their bits are far from
# independent: between unrelated speech clips the BER spreads 2.4 times as widely as
# for independent bits (1,500 random pairs of the benchmark corpus at every
# alignment). The threshold sits _Z_SCORE spreads of _SIGMA_SCALE (rounded up) below
# 0.5 and never above _MAX_BER, because clips of one voice share structure and their
# tail is heavier than a normal law: the lowest BER among those pairs was 0.34 over
# 0.6-1.3 s and 0.40 beyond 2.5 s, at least 0.078 above the threshold.
_SIGMA_SCALE: Final = 3.0
_Z_SCORE: Final = 8.0
_CANDIDATES: Final = 5  # clips verified per look-up
_SLACK: Final = 2  # frames searched either side of a voted offset
_OFFSETS: Final = 3  # best-voted offsets searched per candidate

_MAGIC: Final = b"GFP1"
_HEADER: Final = struct.Struct("<4sHdI")  # magic, version, hop seconds, count
_POPCOUNT: Final = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

FloatArray = npt.NDArray[np.float64]
_Key = TypeVar("_Key", str, int)  # a reference's key: a name, or a registry clip number


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """A sequence of 32-bit sub-fingerprints, one per hop.

    Attributes:
        hashes: One ``uint32`` per frame; :data:`SILENT_HASH` marks silent frames.
        hop_seconds: Time between consecutive sub-fingerprints.
        version: The :data:`FINGERPRINT_VERSION` that produced the hashes.
    """

    hashes: npt.NDArray[np.uint32]
    hop_seconds: float
    version: int = FINGERPRINT_VERSION

    def __post_init__(self) -> None:
        hashes = np.array(self.hashes, dtype=np.uint32)
        if hashes.ndim != 1:
            raise ValueError("hashes must be one-dimensional")
        if not (math.isfinite(self.hop_seconds) and self.hop_seconds > 0):
            raise ValueError("hop_seconds must be positive and finite")
        if not 0 < self.version < 2**16:
            raise ValueError("version out of range")
        hashes.flags.writeable = False
        object.__setattr__(self, "hashes", hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fingerprint):
            return NotImplemented
        return (
            self.version == other.version
            and self.hop_seconds == other.hop_seconds
            and np.array_equal(self.hashes, other.hashes)
        )

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    @property
    def duration_seconds(self) -> float:
        """Time span covered by the sub-fingerprints."""
        return len(self.hashes) * self.hop_seconds

    def to_bytes(self) -> bytes:
        """Serialise to a compact little-endian binary form with a versioned header."""
        header = _HEADER.pack(_MAGIC, self.version, self.hop_seconds, len(self.hashes))
        return header + self.hashes.astype("<u4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """Parse the output of :meth:`to_bytes`.

        Raises:
            ValueError: If ``data`` is not a well-formed fingerprint.
        """
        if len(data) < _HEADER.size:
            raise ValueError("fingerprint data too short")
        magic, version, hop, count = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise ValueError("not a Guardian fingerprint")
        if len(data) != _HEADER.size + 4 * count:
            raise ValueError("fingerprint length does not match its header")
        hashes = np.frombuffer(data, dtype="<u4", offset=_HEADER.size).astype(np.uint32)
        return cls(hashes=hashes, hop_seconds=hop, version=version)

    def index_keys(self) -> list[tuple[int, int]]:
        """``(hash, frame_offset)`` pairs for an inverted index, on both sides.

        Store these rows for a reference and look up the same pairs of a query.
        Silent frames and repeats of the previous hash are skipped, and so are three
        quarters of the hash *values* (a fixed pseudo-random choice). Because the
        choice depends on the value only, a query hash equal to a stored one is always
        selected too: the table shrinks fourfold, and a re-encoded query still shares
        exact hashes with its reference every second (docs/benchmarks/fingerprint.md).
        Rows stored when half of the values were kept still answer the quarter a query
        sends now (docs/adr/0005-registry-compact-postings.md).
        """
        keys: list[tuple[int, int]] = []
        previous = SILENT_HASH
        for offset, value in enumerate(self.hashes.tolist()):
            if value not in (SILENT_HASH, previous) and _indexed(value):
                keys.append((value, offset))
            previous = value
        return keys


def _indexed(value: int) -> bool:
    # Top two bits of a multiplicative (Knuth) hash: one value in four, unrelated to any
    # one band. Migration 0006 computes the same in SQL.
    return ((value * 2654435761) & 0xFFFFFFFF) >> 30 == 0


def ber_threshold(overlap_frames: int) -> float:
    """Highest bit error rate that still counts as a match for an overlap.

    Fewer compared bits leave more room for chance agreement, so short overlaps get
    a stricter threshold; below the minimum overlap nothing matches.
    """
    if overlap_frames < _MIN_OVERLAP:
        return 0.0
    sigma = _SIGMA_SCALE * 0.5 / math.sqrt(32 * overlap_frames)
    return min(_MAX_BER, 0.5 - _Z_SCORE * sigma)


@dataclass(frozen=True)
class Match:
    """Result of comparing a query with a reference at their best alignment.

    Attributes:
        ber: Fraction of differing bits over the compared frames.
        offset_frames: Reference frame aligned with query frame 0 (may be negative).
        overlap_frames: Number of frames compared (non-silent in both).
    """

    ber: float
    offset_frames: int
    overlap_frames: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.ber <= 1.0:
            raise ValueError("ber must lie in [0, 1]")
        if self.overlap_frames < 0:
            raise ValueError("overlap_frames must not be negative")

    @property
    def threshold(self) -> float:
        """The BER threshold that applies to this overlap."""
        return ber_threshold(self.overlap_frames)

    @property
    def is_match(self) -> bool:
        """Whether the BER is low enough, given the overlap, to be the same audio."""
        return self.overlap_frames >= _MIN_OVERLAP and self.ber <= self.threshold

    def __bool__(self) -> bool:
        return self.is_match


_NO_MATCH: Final = Match(ber=0.5, offset_frames=0, overlap_frames=0)


def _mono(samples: npt.NDArray[np.generic]) -> FloatArray:
    data = np.asarray(samples)
    if data.ndim == 2 and data.shape[1] > 0:
        data = data.mean(axis=1)
    elif data.ndim != 1:
        raise ValueError("samples must be shaped (frames,) or (frames, channels)")
    mono = data.astype(np.float64)
    if not np.all(np.isfinite(mono)):
        raise ValueError("samples contain NaN or infinity")
    return mono


def _band_edges(factor: float) -> npt.NDArray[np.intp]:
    """FFT bin where each band starts (and the last one ends), edges scaled by ``factor``."""
    edges = np.geomspace(_F_LO, _F_HI, _N_BANDS + 1) * factor
    return np.searchsorted(np.fft.rfftfreq(_FRAME, d=1.0 / _RATE), edges, side="left")


def _band_matrix() -> FloatArray:
    """(FFT bins x bands) indicator of which bin each band sums."""
    edges = _band_edges(1.0)
    matrix = np.zeros((_FRAME // 2 + 1, _N_BANDS))
    for band in range(_N_BANDS):
        matrix[edges[band] : edges[band + 1], band] = 1.0
    return matrix


_BANDS: Final = _band_matrix()
_WINDOW: Final = np.hanning(_FRAME)


def _band_energies(signal: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Band energies (frames x bands) and mean power per frame."""
    frames = np.lib.stride_tricks.sliding_window_view(signal, _FRAME)[::_HOP]
    energies = np.empty((len(frames), _N_BANDS))
    power = np.empty(len(frames))
    for start in range(0, len(frames), 256):  # chunks bound the memory of long inputs
        chunk = frames[start : start + 256] * _WINDOW
        spectrum = np.abs(np.fft.rfft(chunk, axis=1)) ** 2
        energies[start : start + 256] = spectrum @ _BANDS
        power[start : start + 256] = np.mean(chunk**2, axis=1)
    return energies, power


def compute(samples: npt.NDArray[np.generic], sample_rate: int) -> Fingerprint:
    """Fingerprint audio.

    Args:
        samples: Float samples shaped ``(frames,)`` or ``(frames, channels)``;
            channels are averaged.
        sample_rate: Sampling rate of ``samples`` in Hz.

    Returns:
        One sub-fingerprint per 16 ms hop after the first 0.4 s frame.

    Raises:
        ValueError: If the input is shorter than :data:`MIN_DURATION_SECONDS`, has
            a bad shape or rate, or holds non-finite values.
    """
    return _from_energies(*_band_energies(_at_8k(samples, sample_rate)))


def _at_8k(samples: npt.NDArray[np.generic], sample_rate: int) -> FloatArray:
    """Mono at the fingerprint's rate, after the checks :func:`compute` documents."""
    if not 4000 <= sample_rate <= 768_000:
        raise ValueError("sample_rate must lie between 4000 and 768000 Hz")
    mono = _mono(samples)
    if len(mono) < MIN_DURATION_SECONDS * sample_rate:
        raise ValueError(f"audio shorter than {MIN_DURATION_SECONDS} s cannot be fingerprinted")
    # Exact for the common rates; an odd rate (say 44101 Hz) gets a close fraction
    # instead, so that a hostile header cannot ask for a filter of millions of taps.
    ratio = Fraction(_RATE, sample_rate).limit_denominator(1000)
    return np.asarray(resample_poly(mono, ratio.numerator, ratio.denominator), dtype=np.float64)


def _from_energies(energies: FloatArray, power: FloatArray) -> Fingerprint:
    band_diff = energies[:, :-1] - energies[:, 1:]
    bits = np.ascontiguousarray((band_diff[1:] - band_diff[:-1]) > 0)  # bit 31: lowest pair
    hashes = np.packbits(bits, axis=1).view(">u4")[:, 0].astype(np.uint32)
    loud = percentile(power, 95) if len(power) else 0.0
    silent = power < max(_SILENCE_ABS, _SILENCE_REL * loud)
    hashes[silent[1:] | silent[:-1]] = SILENT_HASH
    return Fingerprint(hashes=hashes, hop_seconds=_HOP / _RATE, version=FINGERPRINT_VERSION)


SCALES: Final = tuple(round(0.90 + 0.01 * i, 2) for i in range(21) if i != 10)
"""Factors the time-scale search tries: 0.90-1.10 in 1 % steps, 1.00 left to
:func:`compute`. At 1 % apart a query is at most 0.5 % off its factor, and a 1 % change
left as it is already costs a true match a mean BER of 0.15 (docs/benchmarks/fingerprint.md)."""
_FINE_HOP: Final = 64  # 8 ms: frames for any factor are picked from this grid


@dataclass(frozen=True)
class ScaledFingerprint:
    """A query's fingerprint as it would be had the clip not been changed in speed or
    tempo by ``factor`` (``speed``: resampled, pitch and time; ``tempo``: time only)."""

    change: str
    factor: float
    fingerprint: Fingerprint


def scaled(samples: npt.NDArray[np.generic], sample_rate: int) -> list[ScaledFingerprint]:
    """The query's fingerprints under every factor of :data:`SCALES`, speed and tempo.

    One short-time spectrum on an 8 ms grid serves them all: a clip sped up by ``f``
    holds at time ``t / f`` what the original held at ``t``, at ``f`` times the
    frequency. So each fingerprint takes its frames from the grid at the scaled times,
    and a speed change also scales the band edges. Nothing here looks at a registry.

    Raises:
        ValueError: As :func:`compute`.
    """
    signal = _at_8k(samples, sample_rate)
    frames = np.lib.stride_tricks.sliding_window_view(signal, _FRAME)[::_FINE_HOP]
    # cumulative power over frequency: any band's energy is a difference of two columns
    cumulative = np.empty((len(frames), _FRAME // 2 + 2))
    power = np.empty(len(frames))
    for start in range(0, len(frames), 256):
        chunk = frames[start : start + 256] * _WINDOW
        spectrum = np.abs(np.fft.rfft(chunk, axis=1)) ** 2
        cumulative[start : start + 256, 0] = 0.0
        np.cumsum(spectrum, axis=1, out=cumulative[start : start + 256, 1:])
        power[start : start + 256] = np.mean(chunk**2, axis=1)
    at_edges = cumulative[:, _band_edges(1.0)]
    plain = at_edges[:, 1:] - at_edges[:, :-1]
    out = []
    for change in ("speed", "tempo"):
        for factor in SCALES:
            # the original's frame k (time k * _HOP) sits at k * _HOP / factor here
            times = np.arange(0, len(frames) * _FINE_HOP * factor / _HOP) * _HOP / factor
            rows = np.rint(times / _FINE_HOP).astype(int)
            rows = rows[rows < len(frames)]
            if change == "speed":
                at_edges = cumulative[np.ix_(rows, _band_edges(factor))]
                energies = at_edges[:, 1:] - at_edges[:, :-1]
            else:
                energies = plain[rows]
            out.append(ScaledFingerprint(change, factor, _from_energies(energies, power[rows])))
    return out


def _check_compatible(query: Fingerprint, reference: Fingerprint) -> None:
    if query.version != reference.version or query.hop_seconds != reference.hop_seconds:
        raise ValueError("fingerprints of different versions cannot be compared")


def _significance(match: Match) -> float:
    return (0.5 - match.ber) * math.sqrt(match.overlap_frames)


def _compare_at(query: Fingerprint, reference: Fingerprint, offset: int) -> Match:
    q_start = max(0, -offset)
    q_stop = min(len(query.hashes), len(reference.hashes) - offset)
    if q_stop - q_start <= 0:
        return Match(ber=0.5, offset_frames=offset, overlap_frames=0)
    q = query.hashes[q_start:q_stop]
    r = reference.hashes[q_start + offset : q_stop + offset]
    usable = (q != SILENT_HASH) & (r != SILENT_HASH)
    overlap = int(np.count_nonzero(usable))
    if overlap == 0:
        return Match(ber=0.5, offset_frames=offset, overlap_frames=0)
    errors = int(_POPCOUNT[np.bitwise_xor(q[usable], r[usable]).view(np.uint8)].sum())
    return Match(ber=errors / (32 * overlap), offset_frames=offset, overlap_frames=overlap)


def _planes(hashes: npt.NDArray[np.uint32], reverse: bool) -> npt.NDArray[np.float64]:
    """Rows: the usable-frame mask, its bit count, and the 32 bit planes (each masked)."""
    usable = (hashes != SILENT_HASH).astype(np.float64)
    bits = ((hashes[None, :] >> np.arange(32, dtype=np.uint32)[:, None]) & 1).astype(np.float64)
    rows = np.vstack([usable, bits.sum(axis=0) * usable, bits * usable])
    return rows[:, ::-1] if reverse else rows


@functools.lru_cache(maxsize=4)
def _query_spectrum(hashes: bytes, size: int) -> npt.NDArray[np.complex128]:
    """The query side of :func:`_compare_everywhere`, kept for the next reference: a
    registry search compares one query with many references."""
    spectrum = np.fft.rfft(_planes(np.frombuffer(hashes, dtype=np.uint32), reverse=True), size)
    spectrum.flags.writeable = False
    return spectrum


def _compare_everywhere(q: npt.NDArray[np.uint32], r: npt.NDArray[np.uint32]) -> Match:
    """:func:`compare` over every alignment at once, with the same result.

    Over the usable frames of an alignment, the bit errors are popcount(q) + popcount(r)
    - 2 x (bits set in both), so the errors and the overlap of every offset are sums of
    cross-correlations, which one FFT product gives for all offsets together. The sums
    are integers below 2^21 and are rounded back exactly.
    """
    n, m = len(q), len(r)
    if min(n, m) < _MIN_OVERLAP:
        return _NO_MATCH
    size = 1 << (n + m - 2).bit_length()
    a = _query_spectrum(q.tobytes(), size)
    b = np.fft.rfft(_planes(r, reverse=False), size)
    # rows: 0 usable, 1 popcount x usable, 2.. bit planes x usable
    errors_f = a[1] * b[0] + a[0] * b[1] - 2 * np.einsum("ij,ij->j", a[2:], b[2:])
    both = np.fft.irfft(np.vstack([errors_f, a[0] * b[0]]), size)
    # index k of the full correlation is offset k - (n - 1); keep offsets low..high
    low, high = -n + _MIN_OVERLAP, m - _MIN_OVERLAP
    errors = np.rint(both[0, low + n - 1 : high + n])
    overlap = np.rint(both[1, low + n - 1 : high + n])
    enough = overlap >= _MIN_OVERLAP
    if not enough.any():
        return _NO_MATCH
    with np.errstate(divide="ignore", invalid="ignore"):
        ber = errors / (32 * overlap)
        significance = np.where(enough, (0.5 - ber) * np.sqrt(overlap), -np.inf)
    k = int(np.argmax(significance))
    return Match(ber=float(ber[k]), offset_frames=low + k, overlap_frames=int(overlap[k]))


def compare(
    query: Fingerprint, reference: Fingerprint, *, offsets: Iterable[int] | None = None
) -> Match:
    """Compare two fingerprints at their best alignment.

    Args:
        query: Fingerprint of the audio being looked up.
        reference: Fingerprint from the registry.
        offsets: Reference frames to try aligning with query frame 0; by default
            every alignment with at least the minimum overlap.

    Returns:
        The alignment with the lowest BER among those with enough overlap, judged by
        its distance below chance (``0.5``) in units of its standard error, so that
        a lucky short overlap cannot beat a long good one.

    Raises:
        ValueError: If the fingerprints come from different versions.
    """
    _check_compatible(query, reference)
    if offsets is None:
        return _compare_everywhere(query.hashes, reference.hashes)
    best = _NO_MATCH
    for offset in offsets:
        match = _compare_at(query, reference, offset)
        if match.overlap_frames >= _MIN_OVERLAP and (
            best.overlap_frames < _MIN_OVERLAP or _significance(match) > _significance(best)
        ):
            best = match
    return best


def vote_postings(
    keys: Sequence[tuple[int, int]],
    postings: npt.NDArray[np.int64],
    *,
    limit: int = _CANDIDATES,
) -> list[tuple[int, list[int]]]:
    """The references with the most exact-hash votes at one offset delta
    (``ref_offset - query_offset``), voted without a Python loop per index row: a large
    registry returns thousands of chance hits per query.

    Args:
        keys: The query's ``(hash, frame_offset)`` pairs (:meth:`Fingerprint.index_keys`).
        postings: ``(hash, reference, ref_offset)`` rows, the reference an integer key.
        limit: How many references to return.

    Returns:
        ``(reference, offsets)``, most votes first (equal votes: the smaller key), each
        with its :data:`_OFFSETS` best-voted offsets (equal votes: the smaller offset).
    """
    if not keys or not len(postings):
        return []
    query = np.array(keys, dtype=np.int64)
    query = query[np.argsort(query[:, 0], kind="stable")]
    # every (posting, query frame) pair with equal hashes
    lo = np.searchsorted(query[:, 0], postings[:, 0], "left")
    n = np.searchsorted(query[:, 0], postings[:, 0], "right") - lo
    row = np.repeat(np.arange(len(postings)), n)
    if not len(row):
        return []
    at = np.arange(len(row)) + np.repeat(lo - (np.cumsum(n) - n), n)
    refs = postings[row, 1]
    deltas = postings[row, 2] - query[at, 1]
    # votes per (reference, offset), through one integer key
    half = np.int64(1 << 30)
    pairs, votes = np.unique(refs * (2 * half) + (deltas + half), return_counts=True)
    refs, deltas = pairs // (2 * half), pairs % (2 * half) - half
    order = np.lexsort((deltas, -votes, refs))
    refs, deltas, votes = refs[order], deltas[order], votes[order]
    starts = np.flatnonzero(np.r_[True, refs[1:] != refs[:-1]])
    ends = np.r_[starts[1:], len(refs)]
    chosen = np.lexsort((refs[starts], -votes[starts]))[:limit]
    return [
        (int(refs[starts[i]]), deltas[starts[i] : min(ends[i], starts[i] + _OFFSETS)].tolist())
        for i in chosen
    ]


def check_candidates(
    query: Fingerprint,
    voted: Iterable[tuple[_Key, Sequence[int]]],
    load: Callable[[_Key], Fingerprint],
) -> list[tuple[_Key, Match]]:
    """Compare ``query`` in full with each voted reference, around its voted offsets.

    Returns:
        ``(key, match)`` for the references that match, lowest BER first.
    """
    results: list[tuple[_Key, Match]] = []
    for key, best in voted:
        around = {o + d for o in best for d in range(-_SLACK, _SLACK + 1)}
        match = compare(query, load(key), offsets=sorted(around))
        if match.is_match:
            results.append((key, match))
    results.sort(key=lambda item: item[1].ber)
    return results


class FingerprintIndex:
    """In-memory inverted index over reference fingerprints.

    It mirrors what a SQL registry does: ``(hash, reference, frame_offset)`` rows,
    exact look-ups, the registry's vote (:func:`vote_postings`), then :func:`compare`
    on the best few candidates (:func:`check_candidates`).
    """

    def __init__(self) -> None:
        self._keys: list[str] = []  # a reference's number is its place here
        self._fingerprints: dict[str, Fingerprint] = {}
        self._postings: dict[int, list[tuple[int, int]]] = {}  # hash: (number, offset)

    def __len__(self) -> int:
        return len(self._fingerprints)

    def add(self, key: str, fp: Fingerprint) -> None:
        """Index ``fp`` under ``key``.

        Raises:
            ValueError: If ``key`` is already present or ``fp`` has another version.
        """
        if key in self._fingerprints:
            raise ValueError(f"key already indexed: {key}")
        if fp.version != FINGERPRINT_VERSION:
            raise ValueError("fingerprint version not supported by this index")
        self._fingerprints[key] = fp
        self._keys.append(key)
        for value, offset in fp.index_keys():
            self._postings.setdefault(value, []).append((len(self._keys) - 1, offset))

    def vote(
        self, query_fp: Fingerprint, *, limit: int = _CANDIDATES
    ) -> list[tuple[str, list[int]]]:
        """The references with the most exact-hash votes (:func:`vote_postings`)."""
        keys = query_fp.index_keys()
        rows = [(v, n, o) for v in {v for v, _ in keys} for n, o in self._postings.get(v, ())]
        postings = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return [(self._keys[n], best) for n, best in vote_postings(keys, postings, limit=limit)]

    def lookup(self, query_fp: Fingerprint) -> list[tuple[str, Match]]:
        """Find the references that ``query_fp`` matches, best (lowest BER) first."""
        return check_candidates(query_fp, self.vote(query_fp), self._fingerprints.__getitem__)

    def lookup_scaled(
        self, samples: npt.NDArray[np.generic], sample_rate: int
    ) -> list[tuple[str, Match]]:
        """:meth:`lookup` of every :func:`scaled` query; the matches of the one whose
        best match has the lowest BER, as the registry's search keeps them."""
        found: list[tuple[str, Match]] = []
        for variant in scaled(samples, sample_rate):
            matches = self.lookup(variant.fingerprint)
            if matches and (not found or matches[0][1].ber < found[0][1].ber):
                found = matches
        return found
