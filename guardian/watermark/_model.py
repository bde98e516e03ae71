"""Guardian's AudioSeal models: construction and hashed weights.

The generator and detector are the ``audioseal`` package's own ``AudioSealWM`` and
``AudioSealDetector``, built with its builder from a SEANet configuration. Guardian's
shipped model is a small configuration of that architecture, trained by
``guardian watermark train`` (see ``_train.py``).
"""

from __future__ import annotations

import io
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from guardian._thirdparty import quiet_import
from guardian.errors import WatermarkModelError
from guardian.watermark._config import (
    SAMPLE_RATE,
    SHIPPED_BAND_HZ,
    SHIPPED_TONES,
    ArchConfig,
    EmbedConfig,
    sha256_file,
)
from guardian.watermark._payload import NBITS

# The moshi modules that audioseal ships call torch.jit.script, deprecated since torch 2.13.
quiet_import("audioseal.models")
from audioseal.builder import (  # noqa: E402
    AudioSealDetectorConfig,
    AudioSealWMConfig,
    DecoderConfig,
    SEANetConfig,
    create_detector,
    create_generator,
)
from audioseal.models import AudioSealDetector, AudioSealWM  # noqa: E402

__all__ = [
    "NBITS",
    "SAMPLE_RATE",
    "SHIPPED_BAND_HZ",
    "SHIPPED_TONES",
    "ArchConfig",
    "AudioSealDetector",
    "AudioSealWM",
    "EmbedConfig",
    "WatermarkModel",
    "build_detector",
    "build_generator",
    "load_state",
    "no_compile",
    "seanet_config",
    "sha256_file",
    "state_bytes",
]


def no_compile() -> AbstractContextManager[None]:
    """Run audioseal's SEANet blocks eagerly (no lazy ``torch.compile``).

    Compilation needs a C toolchain and seconds of warm-up per shape; eager mode is
    deterministic and fast enough on a CPU.
    """
    from audioseal.libs.moshi.utils.compile import no_compile as _no_compile

    return _no_compile()


def seanet_config(arch: ArchConfig) -> SEANetConfig:
    return SEANetConfig(
        channels=1,
        dimension=arch.dimension,
        n_filters=arch.n_filters,
        n_residual_layers=1,
        ratios=list(arch.ratios),
        activation="ELU",
        activation_params={"alpha": 1.0},
        norm="none",
        norm_params={},
        kernel_size=7,
        last_kernel_size=7,
        residual_kernel_size=3,
        dilation_base=2,
        causal=False,
        pad_mode="constant",
        true_skip=True,
        compress=2,
        lstm=arch.lstm,
        disable_norm_outer_blocks=0,
    )


def build_generator(arch: ArchConfig) -> AudioSealWM:
    cfg = AudioSealWMConfig(
        nbits=arch.nbits, seanet=seanet_config(arch), decoder=DecoderConfig(None, None, 1.0)
    )
    return create_generator(cfg)


def build_detector(arch: ArchConfig) -> AudioSealDetector:
    return create_detector(AudioSealDetectorConfig(nbits=arch.nbits, seanet=seanet_config(arch)))


@dataclass
class WatermarkModel:
    """A generator/detector pair with the metadata a manifest records."""

    model_id: str
    arch: ArchConfig
    embed: EmbedConfig
    generator: AudioSealWM | None
    detector: AudioSealDetector
    weights_sha256: str
    threshold: float = 0.5
    """Clip-level detection threshold, calibrated for FPR <= 1e-3 on clean audio."""
    source: str = "guardian"
    extra: dict[str, Any] = field(default_factory=dict)
    detector_arch: ArchConfig | None = None
    """The detector's architecture where it is not ``arch``: a narrower detector
    distilled from the generator's partner (``guardian watermark train``, mode
    ``distill``)."""

    def __post_init__(self) -> None:
        for m in (self.generator, self.detector):
            if m is not None:
                m.eval()
                for p in m.parameters():
                    p.requires_grad_(False)


def _half(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}


def state_bytes(generator: AudioSealWM | None, detector: AudioSealDetector) -> bytes:
    """Serialise both state dicts into one ``torch.save`` blob (tensors only).

    Weights are stored in float16 to keep the shipped file small; they are loaded
    back as float32, and the benchmark measures the stored (float16) weights.
    """
    buf = io.BytesIO()
    torch.save(
        {
            "generator": _half(generator.state_dict()) if generator is not None else {},
            "detector": _half(detector.state_dict()),
        },
        buf,
    )
    return buf.getvalue()


def load_state(path: Path, *, expected_sha256: str) -> dict[str, dict[str, torch.Tensor]]:
    """Load weights only after their SHA-256 matches the model card, tensors only."""
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise WatermarkModelError(
            f"{path.name}: SHA-256 {actual[:12]}… does not match the model card "
            f"({expected_sha256[:12]}…); refusing to load"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "detector" not in state:
        raise WatermarkModelError(f"{path.name}: not a Guardian watermark checkpoint")
    return {
        part: {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
        for part, sd in state.items()
    }
