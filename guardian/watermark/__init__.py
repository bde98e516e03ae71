"""AudioSeal watermarking: Guardian's own trained model, official-weights loader, detection.

Public surface:

- :func:`load_model` — shipped model (default), a deployment's own model card, or
  official AudioSeal checkpoints from the local cache.
- :func:`load_detector` — the detector ``verify`` runs: ONNX Runtime when the card pins
  an ONNX detector (the shipped one does), else the torch model.
- :func:`embed` / :func:`detect` — any sample rate, mono or stereo, chunked.
- :func:`calibrate` — clip-score threshold for a target false-positive rate.
- :func:`export_onnx` — rebuild and pin a card's ONNX detector.
- :class:`Payload` — what the 16 bits carry (see ``_payload.py``).

Everything that needs torch (the model, embedding, torch detection, export) is imported
on first use, so that verifying a clip never loads torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from guardian.watermark._config import (
    SHIPPED_CARD,
    SHIPPED_RECIPE,
    ArchConfig,
    EmbedConfig,
)
from guardian.watermark._onnx import OnnxDetector, Precision, load_detector, preload_detector
from guardian.watermark._payload import (
    Payload,
    PayloadKey,
    candidate_label_tags,
    deployment_tag,
    label_tag,
)
from guardian.watermark._scoring import MIN_SECONDS, Detection, Detector, Look, Segment

if TYPE_CHECKING:
    from guardian.watermark._detect import TorchDetector, calibrate, detect, embed
    from guardian.watermark._loader import load_card, load_model, write_card
    from guardian.watermark._model import WatermarkModel
    from guardian.watermark._onnx_export import export_onnx

_NEEDS_TORCH = {
    "TorchDetector": "_detect",
    "calibrate": "_detect",
    "detect": "_detect",
    "embed": "_detect",
    "load_card": "_loader",
    "load_model": "_loader",
    "write_card": "_loader",
    "WatermarkModel": "_model",
    "export_onnx": "_onnx_export",
}


def __getattr__(name: str) -> Any:
    """The torch side of the surface, imported when first asked for."""
    if name in _NEEDS_TORCH:
        module = importlib.import_module(f"guardian.watermark.{_NEEDS_TORCH[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'guardian.watermark' has no attribute {name!r}")


__all__ = [
    "MIN_SECONDS",
    "SHIPPED_CARD",
    "SHIPPED_RECIPE",
    "ArchConfig",
    "Detection",
    "Detector",
    "EmbedConfig",
    "Look",
    "OnnxDetector",
    "Payload",
    "PayloadKey",
    "Precision",
    "Segment",
    "TorchDetector",
    "WatermarkModel",
    "calibrate",
    "candidate_label_tags",
    "deployment_tag",
    "detect",
    "embed",
    "export_onnx",
    "label_tag",
    "load_card",
    "load_detector",
    "load_model",
    "preload_detector",
    "write_card",
]
