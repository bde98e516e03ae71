"""The watermark as a label stage, and the watermark-led registry search."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlmodel import Session

from guardian.audio import Audio
from guardian.provenance import Registry
from guardian.provenance import fingerprint as fp
from guardian.store import Label
from guardian.watermark import (
    MIN_SECONDS,
    Detection,
    Detector,
    Payload,
    PayloadKey,
    candidate_label_tags,
    label_tag,
)

if TYPE_CHECKING:
    from guardian.watermark import WatermarkModel

# A candidate named by the watermark payload is one of a handful, not one of the whole
# registry, so its fingerprint is accepted at a looser bit error rate than a blind
# search's (<= 0.30). Unrelated clips sit at 0.40 and above (docs/benchmarks/fingerprint.md).
ASSISTED_MAX_BER = 0.37
ASSISTED_MIN_OVERLAP = 32
_SILENT_RMS = 10 ** (-60 / 20)


class WatermarkStage:
    """Embeds a payload that names the deployment and narrows the label's registry row."""

    name = "watermark"

    def __init__(self, model: WatermarkModel, *, deployment: int, key: PayloadKey) -> None:
        self._model = model
        self._deployment = deployment
        self._key = key

    def apply(self, audio: Audio, *, label_id: str) -> tuple[Audio, Mapping[str, Any]]:
        payload = Payload.for_label(deployment=self._deployment, label_id=label_id)
        info: dict[str, Any] = {
            "model_id": self._model.model_id,
            "weights_sha256": self._model.weights_sha256,
        }
        if audio.duration < MIN_SECONDS:
            return audio, {
                "watermark": {**info, "embedded": False, "reason": f"shorter than {MIN_SECONDS} s"}
            }
        if float(np.sqrt(np.mean(audio.samples**2))) < _SILENT_RMS:
            return audio, {"watermark": {**info, "embedded": False, "reason": "silent"}}
        # The embedded bits are the payload under the deployment's secret code; the
        # assertion and the registry keep the logical payload.
        from guardian.watermark import embed  # torch: labeling only

        marked = embed(self._model, audio, self._key.seal(payload))
        return marked, {"watermark": {**info, "embedded": True, "payload": payload.hex()}}


def keyed_model(model: WatermarkModel, key: PayloadKey) -> WatermarkModel:
    """The model with its tone code moved to the deployment's secret frequencies.

    A model whose payload is not a tone code (official AudioSeal weights) is unchanged:
    its bits are keyed by the permutation and mask alone.
    """
    if model.embed.payload_tones is None or not key.tones:
        return model
    return replace(model, embed=replace(model.embed, payload_tones=key.tones))


def keyed_detector(detector: Detector, key: PayloadKey) -> Detector:
    """The detector reading the tone code where the deployment's key puts it
    (:func:`keyed_model` for the detector ``verify`` runs)."""
    if detector.embed.payload_tones is None or not key.tones:
        return detector
    return detector.with_tones(key.tones)


def open_payload(detection: Detection, key: PayloadKey) -> Detection:
    """The detection with its payload read under the deployment's secret code."""
    if detection.payload is None or len(detection.bits) != len(detection.bit_confidence):
        return detection
    bits, confidence = key.open(detection.bits, detection.bit_confidence)
    return replace(detection, bits=bits, bit_confidence=confidence, payload=Payload.from_bits(bits))


def watermark_columns(extra: Mapping[str, Any], label_id: str) -> dict[str, Any]:
    """Registry columns derived from what the watermark stage reported."""
    wm = extra.get("watermark")
    if not isinstance(wm, Mapping) or not wm.get("embedded"):
        return {"wm_payload": None, "wm_tag": None, "wm_model": None}
    return {
        "wm_payload": int(str(wm["payload"]), 16),
        "wm_tag": label_tag(label_id),
        "wm_model": str(wm["model_id"]),
    }


@dataclass(frozen=True)
class AssistedMatch:
    label: Label
    ber: float


def assisted_lookup(
    session: Session,
    registry: Registry,
    detection: Detection,
    query: fp.Fingerprint | None,
) -> AssistedMatch | None:
    """Registry rows named by the payload, confirmed by the audio fingerprint.

    The payload only proposes candidates; it never vetoes the search. A payload can be
    forged, so one naming another deployment must not hide a clip of this registry that
    its fingerprint confirms: the deployment bits are not consulted here.
    """
    if not detection.detected or detection.payload is None or query is None:
        return None
    tags = candidate_label_tags(detection.bits, detection.bit_confidence)
    best: AssistedMatch | None = None
    for label in registry.by_wm_tags(session, tags):
        if not label.fingerprint:
            continue
        match = fp.compare(query, fp.Fingerprint.from_bytes(label.fingerprint))
        ok = match.overlap_frames >= ASSISTED_MIN_OVERLAP and match.ber <= ASSISTED_MAX_BER
        if ok and (best is None or match.ber < best.ber):
            best = AssistedMatch(label, match.ber)
    return best
