"""The use-case layer: the CLI and the HTTP API call these and nothing deeper."""

from guardian.app._audit import recent_audit, verify_audit
from guardian.app._context import Guardian, open_guardian
from guardian.app._keys import init_keys, list_keys, revoke_key, rotate_key
from guardian.app._label import AudioStage, LabelRequest, LabelResult, label_audio, label_file
from guardian.app._verify import (
    ManifestInfo,
    Verdict,
    VerifyResult,
    WatermarkInfo,
    verify_bytes,
    verify_file,
)
from guardian.app._wm_admin import (
    export_watermark,
    load_train_config,
    make_corpus,
    train_watermark,
    watermark_info,
)

__all__ = [
    "AudioStage",
    "Guardian",
    "LabelRequest",
    "LabelResult",
    "ManifestInfo",
    "Verdict",
    "VerifyResult",
    "WatermarkInfo",
    "export_watermark",
    "init_keys",
    "label_audio",
    "label_file",
    "list_keys",
    "load_train_config",
    "make_corpus",
    "open_guardian",
    "recent_audit",
    "revoke_key",
    "rotate_key",
    "train_watermark",
    "verify_audit",
    "verify_bytes",
    "verify_file",
    "watermark_info",
]
