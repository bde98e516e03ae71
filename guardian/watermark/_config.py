"""Watermark model settings that need no torch: architecture, embedding and detection.

The verify path reads these from a model card without loading torch; ``_model`` builds
the torch modules from them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from guardian import _cards
from guardian.errors import WatermarkModelError
from guardian.watermark._payload import NBITS

SAMPLE_RATE = 16000
WEIGHTS_DIR = Path(__file__).with_name("weights")
SHIPPED_CARD = WEIGHTS_DIR / "guardian-wm-v15.yaml"
"""The one model the package ships."""
SHIPPED_RECIPE = WEIGHTS_DIR / "guardian-wm-v15.recipe.yaml"
"""The staged training recipe that rebuilds the shipped model from scratch."""
DETECTOR_RMS = 0.1
"""The detector sees every chunk scaled to this RMS (gain changes do not matter)."""
BAND_EDGE_HZ = 40.0
"""Width of the band limit's soft edges (a sigmoid in frequency, no ringing to speak of)."""


@dataclass(frozen=True)
class ArchConfig:
    """The SEANet hyper-parameters Guardian varies; the rest follow the official card."""

    n_filters: int = 16
    dimension: int = 64
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    lstm: int = 2
    nbits: int = NBITS

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratios"] = list(self.ratios)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchConfig:
        known = {
            k: data[k] for k in ("n_filters", "dimension", "ratios", "lstm", "nbits") if k in data
        }
        if "ratios" in known:
            known["ratios"] = tuple(int(r) for r in known["ratios"])
        return cls(**known)


SHIPPED_BAND_HZ = (600.0, 2700.0)
SHIPPED_TONES = tuple((970.0 + 100 * i, 1020.0 + 100 * i) for i in range(16))
"""The shipped model's payload code: 16 tone pairs, 970-2520 Hz, 50 Hz apart in a pair."""


@dataclass(frozen=True)
class EmbedConfig:
    """How the generator's output is scaled into the audio, and how the detector
    reads it back (band, chunks). The defaults are the shipped model's."""

    snr_db: float = 26.5
    """Target signal-to-watermark ratio, enforced per clip."""

    envelope_ms: float = 20.0
    """The watermark follows the speech envelope smoothed over this window."""

    envelope_floor_db: float = -35.0
    """Relative to the clip's peak envelope: quiet parts still carry some watermark."""

    shaped: bool = True
    """False for official AudioSeal generators, whose output is added as it is."""

    spectral_mask: bool = True
    """Give the watermark the clip's short-time spectrum.

    In every STFT bin (32 ms Hann window, 8 ms hop) the envelope-shaped watermark is
    multiplied by the clip's own magnitude (to ``spectral_mask_power``), so it sits
    below the clip everywhere, where hearing (and PESQ) masks it, instead of filling
    the quiet parts of the band.
    """

    spectral_mask_power: float = 0.3
    """With ``spectral_mask``: the clip's magnitude is raised to this power first.

    1 gives the watermark the clip's spectrum exactly; below 1 it follows that spectrum
    part of the way in decibels, so the watermark keeps some energy between the clip's
    harmonics and formants, where codecs leave more of it.
    """

    detect_chunk_s: float = 2.0
    """Detection runs the detector on chunks this long, each with an eighth of it (at
    most 1 s) of context either side.

    The detector's LSTM carries state across its input, and it was trained on 1 s
    segments: seconds of unwatermarked speech before a watermarked stretch pull that
    stretch's presence down in long chunks (a spliced stretch scores 0.49-0.94 in 10 s
    chunks, 0.82-0.98 in 2 s ones).
    """

    band_hz: tuple[float, float] | None = SHIPPED_BAND_HZ
    """Keep the watermark (and the detector's view) inside this band, in Hz.

    A band that every attack in the suite passes (low-pass 3 kHz, high-pass 500 Hz,
    8 kHz resampling, perceptual codecs) turns those attacks into near-identities for
    the detector. ``None`` uses the whole band (official AudioSeal models).
    """

    payload_tones: tuple[tuple[float, float], ...] | None = SHIPPED_TONES
    """The payload's tone code, one (0-tone, 1-tone) pair in Hz per bit, on the reader's
    10 Hz bins.

    Set, embedding adds the code beside the generator's watermark (at ``code_snr_db``)
    and detection reads it coherently (``_tones.read_bits``); ``None`` reads the
    detector's own bit outputs (official AudioSeal models).
    """

    code_snr_db: float | None = 31.5
    """The tone code's level under the clip, shaped like the watermark. The generator's
    watermark then carries presence only."""

    code_mask_power: float = 0.4
    """``spectral_mask_power`` for the tone code."""

    speed_lines_hz: tuple[float, ...] | None = None
    """Narrow spectral lines of the generator's presence watermark, in Hz. Set,
    detection also searches the clip's playback speed by where these lines lie
    (``_scoring.speed_candidates``); a model's card measures them."""

    def __post_init__(self) -> None:
        if self.band_hz is not None:
            lo, hi = (float(f) for f in self.band_hz)
            if not 0 <= lo < hi <= SAMPLE_RATE / 2:
                raise ValueError(f"band_hz must satisfy 0 <= low < high <= 8000, got {lo}, {hi}")
            object.__setattr__(self, "band_hz", (lo, hi))
        if self.payload_tones is not None:
            pairs = tuple((float(a), float(b)) for a, b in self.payload_tones)
            flat = [f for pair in pairs for f in pair]
            lo, hi = self.band_hz if self.band_hz is not None else (0.0, SAMPLE_RATE / 2)
            if len(pairs) != NBITS or len(set(flat)) != len(flat):
                raise ValueError(f"payload_tones must be {NBITS} pairs of distinct tones")
            if any(not lo < f < hi or f % 10 for f in flat):  # on the reader's 10 Hz bins
                raise ValueError(
                    f"payload_tones must be multiples of 10 Hz inside {lo:g}-{hi:g} Hz"
                )
            if self.code_snr_db is None:
                raise ValueError("payload_tones needs code_snr_db: the level of the code")
            object.__setattr__(self, "payload_tones", pairs)
        if self.code_snr_db is not None and self.payload_tones is None:
            raise ValueError("code_snr_db needs payload_tones: the code to add")
        if self.speed_lines_hz is not None:
            lines = tuple(float(f) for f in self.speed_lines_hz)
            if not lines or any(not 0 < f < SAMPLE_RATE / 2 for f in lines):
                raise ValueError("speed_lines_hz must be frequencies inside 0-8000 Hz")
            object.__setattr__(self, "speed_lines_hz", lines)
        if not 0 < self.code_mask_power <= 2:
            raise ValueError(f"code_mask_power must be in (0, 2], got {self.code_mask_power}")
        if not 1.0 <= self.detect_chunk_s <= 60.0:
            raise ValueError(f"detect_chunk_s must be in [1, 60] s, got {self.detect_chunk_s}")
        if not 0 < self.spectral_mask_power <= 2:
            raise ValueError(
                f"spectral_mask_power must be in (0, 2], got {self.spectral_mask_power}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.band_hz is not None:
            d["band_hz"] = list(self.band_hz)
        if self.payload_tones is not None:
            d["payload_tones"] = [list(pair) for pair in self.payload_tones]
        if self.speed_lines_hz is not None:
            d["speed_lines_hz"] = list(self.speed_lines_hz)
        return d


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_card(card: Path) -> dict[str, Any]:
    """A Guardian model card's fields (YAML), or a clear error."""
    return _cards.read_card(card, what="watermark model card", error=WatermarkModelError)


def card_embed(card: Path, meta: dict[str, Any]) -> EmbedConfig:
    """The card's embedding and detection settings."""
    try:
        return EmbedConfig(**meta.get("embed", {}))
    except TypeError as e:
        raise WatermarkModelError(f"watermark model card {card} lacks {e}") from e
    except ValueError as e:
        raise WatermarkModelError(f"watermark model card {card} is invalid: {e}") from e


def pinned_file(card: Path, name: object, sha256: object) -> Path:
    """The file ``name`` beside ``card`` after its SHA-256 matched the card's pin."""
    path = card.parent / str(name)
    if not path.exists():
        raise WatermarkModelError(f"{path} named by {card.name} is missing")
    actual = sha256_file(path)
    if actual != str(sha256):
        raise WatermarkModelError(
            f"{path.name}: SHA-256 {actual[:12]}… does not match the model card "
            f"({str(sha256)[:12]}…); refusing to load"
        )
    return path
