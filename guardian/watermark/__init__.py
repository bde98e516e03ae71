"""AudioSeal watermarking: Guardian's own trained model, official-weights loader, detection.

Public surface:

- :func:`load_model` — shipped model (default), a deployment's own model card, or
  official AudioSeal checkpoints from the local cache.
- :func:`embed` / :func:`detect` — any sample rate, mono or stereo, chunked.
- :func:`calibrate` — clip-score threshold for a target false-positive rate.
- :class:`Payload` — what the 16 bits carry (see ``_payload.py``).
"""

from guardian.watermark._detect import MIN_SECONDS, Detection, Segment, calibrate, detect, embed
from guardian.watermark._loader import (
    SHIPPED_CARD,
    SHIPPED_RECIPE,
    load_card,
    load_model,
    write_card,
)
from guardian.watermark._model import ArchConfig, EmbedConfig, WatermarkModel
from guardian.watermark._payload import (
    Payload,
    PayloadKey,
    candidate_label_tags,
    deployment_tag,
    label_tag,
)

__all__ = [
    "MIN_SECONDS",
    "SHIPPED_CARD",
    "SHIPPED_RECIPE",
    "ArchConfig",
    "Detection",
    "EmbedConfig",
    "Payload",
    "PayloadKey",
    "Segment",
    "WatermarkModel",
    "calibrate",
    "candidate_label_tags",
    "deployment_tag",
    "detect",
    "embed",
    "label_tag",
    "load_card",
    "load_model",
    "write_card",
]
