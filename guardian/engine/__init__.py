"""The cloning engine: a base TTS, a public converter, and a private DP speaker adapter.

Piper "joe" says the text (:class:`BaseVoice`); WORLD analyses it; a per-speaker
adapter, trained with DP-SGD on the enrolled speaker's utterances
(:func:`train_adapter`), converts F0, spectral envelope and speaking rate to the
speaker; WORLD resynthesises. Everything learned from enrollment audio is inside the
DP mechanism; everything else comes from public speech (:func:`load_converter`). See
docs/engine.md.
"""

from guardian.engine._base import BaseVoice
from guardian.engine._dp import DPConfig, epsilon_of
from guardian.engine._errors import (
    AdapterFormatError,
    EngineError,
    EngineModelError,
    EnrollmentDataError,
    TrainingCancelledError,
)
from guardian.engine._prior import PublicConverter, Tier, load_converter
from guardian.engine._trained import Device, TrainedAdapter, train_adapter

__all__ = [
    "AdapterFormatError",
    "BaseVoice",
    "DPConfig",
    "Device",
    "EngineError",
    "EngineModelError",
    "EnrollmentDataError",
    "PublicConverter",
    "Tier",
    "TrainedAdapter",
    "TrainingCancelledError",
    "epsilon_of",
    "load_converter",
    "train_adapter",
]
