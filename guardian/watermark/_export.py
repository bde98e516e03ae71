"""Turn a training checkpoint into a hash-pinned, calibrated model card."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from guardian.audio import Audio
from guardian.watermark._detect import calibrate
from guardian.watermark._loader import write_card
from guardian.watermark._model import (
    WatermarkModel,
    build_detector,
    build_generator,
    sha256_file,
    state_bytes,
)
from guardian.watermark._train import TrainConfig


def export(
    checkpoint: Path,
    card: Path,
    *,
    model_id: str,
    config: TrainConfig,
    negatives: list[Audio],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``<card>.pt`` and ``card``, with the threshold calibrated on ``negatives``.

    If a weights file beside ``card`` already holds exactly these weights (a card that
    changes only how a model embeds or detects), the card
    names that file instead of writing a copy.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    gen = build_generator(config.arch)
    det = build_detector(config.detector_arch or config.arch)
    gen.load_state_dict(state["generator"])
    det.load_state_dict(state["detector"])
    model = WatermarkModel(
        model_id,
        config.arch,
        config.embed,
        gen,
        det,
        weights_sha256="",
        detector_arch=config.detector_arch,
    )
    threshold = calibrate(model, negatives)
    card.parent.mkdir(parents=True, exist_ok=True)
    data = state_bytes(gen, det)
    digest = hashlib.sha256(data).hexdigest()
    same = (p for p in sorted(card.parent.glob("*.pt")) if sha256_file(p) == digest)
    weights = next(same, card.with_suffix(".pt"))
    if weights == card.with_suffix(".pt"):
        weights.write_bytes(data)
    info = {
        "training": {"steps": int(state["step"]), "config": config.to_dict()},
        "calibration": {"negatives": len(negatives), "target_fpr": 1e-3},
        **(extra or {}),
    }
    write_card(
        card,
        model_id=model_id,
        arch=config.arch,
        embed=config.embed,
        weights_file=weights,
        threshold=threshold,
        extra=info,
        detector_arch=config.detector_arch,
    )
    return card
