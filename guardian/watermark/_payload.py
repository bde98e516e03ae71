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


@dataclass(frozen=True)
class PayloadKey:
    """A deployment's secret code for the payload: a bit permutation and a bit mask.

    The shipped model is public, so anyone can embed bits; without this key they cannot
    choose bits that decode to this deployment's tag or to one of its labels (short of
    guessing, one in 16 for the tag). Derived from the master key, never stored.
    """

    order: tuple[int, ...]
    """``order[i]``: which logical payload bit is carried in embedded position ``i``."""
    mask: tuple[int, ...]

    def __post_init__(self) -> None:
        if sorted(self.order) != list(range(NBITS)) or len(self.mask) != NBITS:
            raise ValueError("a payload key is a permutation and a mask of 16 bits")

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
        return cls(tuple(order), mask)

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
