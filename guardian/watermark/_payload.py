"""What the 16 watermark bits carry, and how verify uses them.

Layout (most significant bit first):

- bits 15..12: **deployment tag**, 4 bits from the SHA-256 of the deployment's first root
  certificate. A clip marked by another Guardian deployment is recognisable as such
  without any registry access.
- bits 11..0: **label tag**, 12 bits from the SHA-256 of the label id. The registry
  stores it with the label, so a detected payload narrows a registry search to about
  1/4096 of the labels. ``verify`` then confirms the candidate with the audio
  fingerprint (at a looser threshold than a blind search, because the candidate set is
  tiny), so a payload alone never selects a manifest.

Decoding errors are expected after heavy attacks: the search also tries the label tags
obtained by flipping the least confident bits.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass

NBITS = 16
LABEL_BITS = 12
DEPLOYMENT_BITS = NBITS - LABEL_BITS


def deployment_tag(root_cert_pem: str) -> int:
    return hashlib.sha256(root_cert_pem.encode()).digest()[0] >> (8 - DEPLOYMENT_BITS)


def label_tag(label_id: str) -> int:
    digest = hashlib.sha256(label_id.encode()).digest()
    return int.from_bytes(digest[:2], "big") & ((1 << LABEL_BITS) - 1)


@dataclass(frozen=True)
class Payload:
    """A 16-bit watermark message."""

    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value < 1 << NBITS:
            raise ValueError("payload must fit in 16 bits")

    @classmethod
    def for_label(cls, *, deployment: int, label_id: str) -> Payload:
        return cls((deployment << LABEL_BITS) | label_tag(label_id))

    @property
    def deployment(self) -> int:
        return self.value >> LABEL_BITS

    @property
    def label_tag(self) -> int:
        return self.value & ((1 << LABEL_BITS) - 1)

    def bits(self) -> list[int]:
        return [(self.value >> (NBITS - 1 - i)) & 1 for i in range(NBITS)]

    @classmethod
    def from_bits(cls, bits: list[int]) -> Payload:
        if len(bits) != NBITS:
            raise ValueError(f"expected {NBITS} bits")
        value = 0
        for b in bits:
            value = (value << 1) | (1 if b else 0)
        return cls(value)

    def hex(self) -> str:
        return f"{self.value:04x}"


def candidate_label_tags(bits: list[int], confidence: list[float], *, flips: int = 3) -> list[int]:
    """Label tags to try, most likely first: the decoded tag, then least-confident flips."""
    label_bits = bits[DEPLOYMENT_BITS:]
    conf = confidence[DEPLOYMENT_BITS:]
    weakest = sorted(range(LABEL_BITS), key=lambda i: conf[i])[:flips]
    tags: list[int] = []
    for r in range(flips + 1):
        for combo in itertools.combinations(weakest, r):
            flipped = list(label_bits)
            for i in combo:
                flipped[i] ^= 1
            tag = Payload.from_bits([0] * DEPLOYMENT_BITS + flipped).label_tag
            if tag not in tags:
                tags.append(tag)
    return tags


TONE_LOW_HZ, TONE_HIGH_HZ = 970, 2520
"""The span of the tone code, the shipped model's (its watermark band is 600-2700 Hz)."""
TONE_BAND_HZ = 100
"""Each bit's pair lies in its own band of this width, so the code covers the span."""
TONE_SPREAD_HZ = 60
"""How far into its band a tone may lie: the next band's tones stay 40 Hz away."""
TONE_GAP_HZ = 40
"""Least distance between any two tones. The reader's decoys lie 10 and 20 Hz from a
tone and its noise estimate 10 Hz either side of a probe (``_tones``), so at 40 Hz no
probe of one tone sees another tone's main lobe. Keeping the shipped layout's 50 Hz
instead needs a wider span reaching down to 800 Hz, which measured worse
(``docs/benchmarks/watermark_keyed.md``)."""


def keyed_tones(secret: bytes) -> tuple[tuple[float, float], ...]:
    """A secret tone code: in band ``i``, an ordered pair of 10 Hz grid points at least
    ``TONE_GAP_HZ`` apart, chosen by HMAC-SHA256 of ``secret``."""
    pairs = []
    for i in range(NBITS):
        low = TONE_LOW_HZ + TONE_BAND_HZ * i
        grid = range(low, min(low + TONE_SPREAD_HZ, TONE_HIGH_HZ) + 1, 10)
        choices = [(a, b) for a in grid for b in grid if abs(a - b) >= TONE_GAP_HZ]
        draw = hmac.new(secret, f"payload-tones:{i}".encode(), hashlib.sha256).digest()
        a, b = choices[int.from_bytes(draw[:8], "big") % len(choices)]
        pairs.append((float(a), float(b)))
    return tuple(pairs)


@dataclass(frozen=True)
class PayloadKey:
    """A deployment's secret code for the payload: a bit permutation, a bit mask and the
    tone frequencies that carry the bits.

    The shipped model is public, so anyone can embed a watermark. Without this key they
    do not know where this deployment's tone code lies (one pair in each 100 Hz band,
    placed by the key: about 2^56 layouts), nor which bits decode to its tag or to one of
    its labels. Derived from the master key, never stored.
    """

    order: tuple[int, ...]
    """``order[i]``: which logical payload bit is carried in embedded position ``i``."""
    mask: tuple[int, ...]
    tones: tuple[tuple[float, float], ...] = ()
    """The (0-tone, 1-tone) pair in Hz of each embedded position; empty keeps the model's
    own (public) tones."""

    def __post_init__(self) -> None:
        if sorted(self.order) != list(range(NBITS)) or len(self.mask) != NBITS:
            raise ValueError("a payload key is a permutation and a mask of 16 bits")
        if self.tones and len(self.tones) != NBITS:
            raise ValueError("a payload key's tone code has one pair per bit")

    def __repr__(self) -> str:
        return "PayloadKey(<redacted>)"

    @classmethod
    def derive(cls, secret: bytes) -> PayloadKey:
        """The key for a 32-byte secret (HMAC-SHA256 stream, Fisher-Yates shuffle)."""
        stream = b"".join(
            hmac.new(secret, f"payload-code:{i}".encode(), hashlib.sha256).digest()
            for i in range(2)
        )
        order = list(range(NBITS))
        for i in range(NBITS - 1, 0, -1):
            j = int.from_bytes(stream[2 * i : 2 * i + 2], "big") % (i + 1)
            order[i], order[j] = order[j], order[i]
        mask = tuple((stream[40 + i // 8] >> (i % 8)) & 1 for i in range(NBITS))
        return cls(tuple(order), mask, keyed_tones(secret))

    def seal(self, payload: Payload) -> Payload:
        """The bits to embed for a logical ``payload``."""
        logical = payload.bits()
        return Payload.from_bits([logical[self.order[i]] ^ self.mask[i] for i in range(NBITS)])

    def open(self, bits: list[int], confidence: list[float]) -> tuple[list[int], list[float]]:
        """Logical bits (and their confidences) from decoded, embedded ones."""
        logical, conf = [0] * NBITS, [0.0] * NBITS
        for i in range(NBITS):
            logical[self.order[i]] = bits[i] ^ self.mask[i]
            conf[self.order[i]] = confidence[i]
        return logical, conf
