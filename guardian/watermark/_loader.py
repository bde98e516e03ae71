"""Where watermark models come from: shipped, a deployment's own, or official AudioSeal.

- ``None`` / ``"guardian"``: the model shipped in ``guardian/watermark/weights``.
- a path to a Guardian model card (``*.yaml``): a deployment's privately trained model.
- an official card name (``audioseal_wm_16bits``, with its detector
  ``audioseal_detector_16bits``) or a directory holding ``generator_base.pth`` and
  ``detector_base.pth``: Meta's published checkpoints, looked up in the official
  cache (``AUDIOSEAL_CACHE_DIR``). Guardian never downloads them: offline, a missing
  checkpoint is a one-line error.

Every load checks the SHA-256 pinned in the model card before ``torch.load`` with
``weights_only=True``. Official checkpoints have no pin Guardian can know offline;
their hash is computed and recorded in each manifest instead.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import torch
import yaml

from guardian.errors import WatermarkModelError
from guardian.watermark._config import (
    SHIPPED_CARD,
    card_embed,
    read_card,
)
from guardian.watermark._model import (
    ArchConfig,
    EmbedConfig,
    WatermarkModel,
    build_detector,
    build_generator,
    load_state,
    sha256_file,
)

OFFICIAL_PAIRS = {
    "audioseal_wm_16bits": "audioseal_detector_16bits",
    "audioseal_wm_streaming": "audioseal_detector_streaming",
}
OFFICIAL_THRESHOLD = 0.5
OFFICIAL_EMBED = EmbedConfig(
    shaped=False,
    spectral_mask=False,
    detect_chunk_s=10.0,
    band_hz=None,
    payload_tones=None,
    code_snr_db=None,
)
"""Official generators' output is added as it is, and read over the whole band, with the
detector's own bits as the payload."""


def load_model(spec: str | None = None) -> WatermarkModel:
    """Load a watermark model from a spec (see the module docstring)."""
    if spec in (None, "", "guardian"):
        return load_card(SHIPPED_CARD)
    assert spec is not None
    if spec in OFFICIAL_PAIRS or spec in OFFICIAL_PAIRS.values():
        gen_card = spec if spec in OFFICIAL_PAIRS else _generator_for(spec)
        return _load_official_cards(gen_card, OFFICIAL_PAIRS[gen_card])
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml"):
        return load_card(path)
    if path.is_dir():
        return _load_official_files(
            path / "generator_base.pth",
            path / "detector_base.pth",
            model_id=f"audioseal:{path.name}",
        )
    raise WatermarkModelError(
        f"unknown watermark model {spec!r}: use 'guardian', a model card (.yaml), an official "
        f"card name ({', '.join(OFFICIAL_PAIRS)}) or a directory of official checkpoints"
    )


def load_card(card: Path) -> WatermarkModel:
    """Load a Guardian model card and its hash-pinned weights."""
    meta = read_card(card)
    embed = card_embed(card, meta)
    try:
        weights = card.parent / str(meta["weights"])
        sha = str(meta["sha256"])
        arch = ArchConfig.from_dict(meta["arch"])
        student = meta.get("detector_arch")
        detector_arch = ArchConfig.from_dict(student) if student else None
    except (KeyError, TypeError) as e:
        raise WatermarkModelError(f"watermark model card {card} lacks {e}") from e
    if not weights.exists():
        raise WatermarkModelError(f"weights {weights} named by {card.name} are missing")
    state = load_state(weights, expected_sha256=sha)
    gen = build_generator(arch) if state.get("generator") else None
    det = build_detector(detector_arch or arch)
    try:
        if gen is not None:
            gen.load_state_dict(state["generator"])
        det.load_state_dict(state["detector"])
    except RuntimeError as e:
        raise WatermarkModelError(
            f"{weights.name} does not fit the architecture in {card.name}"
        ) from e
    return WatermarkModel(
        model_id=str(meta.get("model_id", card.stem)),
        arch=arch,
        embed=embed,
        generator=gen,
        detector=det,
        weights_sha256=sha,
        threshold=float(meta.get("threshold", 0.5)),
        source="guardian",
        extra={k: meta[k] for k in ("metrics", "training") if k in meta},
        detector_arch=detector_arch,
    )


def write_card(
    card: Path,
    *,
    model_id: str,
    arch: ArchConfig,
    embed: EmbedConfig,
    weights_file: Path,
    threshold: float,
    extra: dict[str, Any] | None = None,
    detector_arch: ArchConfig | None = None,
) -> None:
    """Write a model card that pins ``weights_file`` by SHA-256."""
    meta: dict[str, Any] = {
        "model_id": model_id,
        "architecture": "audioseal.AudioSealWM + audioseal.AudioSealDetector (SEANet)",
        "weights": weights_file.name,
        "sha256": sha256_file(weights_file),
        "arch": arch.to_dict(),
        **({"detector_arch": detector_arch.to_dict()} if detector_arch is not None else {}),
        "embed": embed.to_dict(),
        "threshold": threshold,
        **(extra or {}),
    }
    card.write_text(yaml.safe_dump(meta, sort_keys=False))


# --- official checkpoints -------------------------------------------------------------------


def _generator_for(detector_card: str) -> str:
    return next(g for g, d in OFFICIAL_PAIRS.items() if d == detector_card)


def _cache_dir() -> Path:
    for var in ("AUDIOSEAL_CACHE_DIR", "XDG_CACHE_HOME"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser() / "audioseal"
    return Path("~/.cache").expanduser() / "audioseal"


def _official_checkpoint(card_name: str) -> Path:
    from audioseal.loader import load_local_model_config

    card = load_local_model_config(card_name)
    if card is None:
        raise WatermarkModelError(f"no official AudioSeal card named {card_name!r}")
    url = str(card["checkpoint"])
    parsed = urlparse(url)
    cache = _cache_dir()
    # The official loader stores downloads under the URL's file name, or under a hash
    # of its path when fetched through torch.hub.
    names = [Path(parsed.path).name, hashlib.sha1(parsed.path.encode()).hexdigest()[:24]]  # noqa: S324
    for name in names:
        if (cache / name).is_file():
            return cache / name
    raise WatermarkModelError(
        f"official AudioSeal checkpoint for {card_name} is not in {cache} (expected "
        f"{names[0]}); Guardian does not download weights: copy it there or use the "
        "shipped model"
    )


def _load_official_cards(gen_card: str, det_card: str) -> WatermarkModel:
    return _load_official_files(
        _official_checkpoint(gen_card),
        _official_checkpoint(det_card),
        model_id=f"audioseal:{gen_card}",
        cards=(gen_card, det_card),
    )


def _read_official(path: Path) -> dict[str, Any]:
    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    if not path.is_file():
        raise WatermarkModelError(f"official AudioSeal checkpoint {path} does not exist")
    safe = [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, Any, dict, list, int]
    try:
        with torch.serialization.safe_globals(cast(Any, safe)):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WatermarkModelError(
            f"{path.name} is not a loadable AudioSeal checkpoint ({e})"
        ) from e
    if not isinstance(ckpt, dict):
        raise WatermarkModelError(f"{path.name} is not an AudioSeal checkpoint")
    return ckpt


def _official_config(path: Path, card: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model config (card merged over the checkpoint's ``xp.cfg``) and the state."""
    from audioseal.loader import load_local_model_config
    from omegaconf import OmegaConf

    ckpt = _read_official(path)
    config: dict[str, Any] = {}
    if card is not None:
        loaded = load_local_model_config(card)
        if loaded is not None:
            config = cast(dict[str, Any], OmegaConf.to_container(loaded))
        config.pop("checkpoint", None)
    if "xp.cfg" in ckpt:
        config = {**dict(ckpt["xp.cfg"]), **config}
    return config, ckpt.get("model", ckpt)


def _load_official_files(
    gen_path: Path, det_path: Path, *, model_id: str, cards: tuple[str, str] | None = None
) -> WatermarkModel:
    from audioseal.builder import (
        AudioSealDetectorConfig,
        AudioSealWMConfig,
        create_detector,
        create_generator,
    )
    from audioseal.loader import AudioSeal, convert_state_dict_for_scriptable_model, load_state_dict

    gen_cfg, gen_state = _official_config(gen_path, cards[0] if cards else None)
    det_cfg, det_state = _official_config(det_path, cards[1] if cards else None)
    try:
        generator = create_generator(
            AudioSeal.parse_config(gen_cfg, config_type=AudioSealWMConfig, nbits=16)
        )
        load_state_dict(generator, convert_state_dict_for_scriptable_model(gen_state))
        detector = create_detector(
            AudioSeal.parse_config(det_cfg, config_type=AudioSealDetectorConfig, nbits=16)
        )
        load_state_dict(detector, convert_state_dict_for_scriptable_model(det_state))
    except (AssertionError, KeyError, RuntimeError, ValueError) as e:
        raise WatermarkModelError(
            f"official checkpoints do not match their AudioSeal config ({e})"
        ) from e
    digest = hashlib.sha256(
        bytes.fromhex(sha256_file(gen_path)) + bytes.fromhex(sha256_file(det_path))
    )
    seanet = det_cfg.get("seanet", {})
    arch = ArchConfig(
        n_filters=int(seanet.get("n_filters", 32)),
        dimension=int(seanet.get("dimension", 128)),
        ratios=tuple(int(r) for r in seanet.get("ratios", (8, 5, 4, 2))),
        lstm=int(seanet.get("lstm", 2)),
    )
    return WatermarkModel(
        model_id=model_id,
        arch=arch,
        embed=OFFICIAL_EMBED,
        generator=generator,
        detector=detector,
        weights_sha256=digest.hexdigest(),
        threshold=OFFICIAL_THRESHOLD,
        source="audioseal",
    )
