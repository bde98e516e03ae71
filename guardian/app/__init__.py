"""The use-case layer: the CLI and the HTTP API call these and nothing deeper."""

from guardian.app._audit import recent_audit, verify_audit
from guardian.app._consent import (
    ChallengeResult,
    ConsentView,
    RevokeResult,
    cosign_consent,
    create_challenge,
    make_subject_key,
    revoke_consent,
    show_consent,
    verify_consent_file,
    verify_stored_consent,
    withdraw_consent,
)
from guardian.app._context import Guardian, open_guardian
from guardian.app._engine import (
    NoAdapterError,
    SynthesisRequest,
    SynthesisResult,
    TrainResult,
    synthesize,
    train_voice,
)
from guardian.app._enroll import EnrollRequest, EnrollResult, enroll
from guardian.app._keys import init_keys, list_keys, revoke_key, rotate_key
from guardian.app._label import (
    AudioStage,
    LabelRequest,
    LabelResult,
    label_audio,
    label_file,
    write_new_file,
)
from guardian.app._policy import authorize, check_policies, consent_facts, require
from guardian.app._policy import explain as explain_policy
from guardian.app._report import ProcessingReport, processing_report
from guardian.app._retention import RetentionReport, run_retention
from guardian.app._retention import plan as plan_retention
from guardian.app._rights import (
    ExportResult,
    ForgetResult,
    export_subject,
    forget,
    resolve_subject,
    verify_receipt_file,
)
from guardian.app._verify import (
    ManifestInfo,
    Verdict,
    VerifyResult,
    WatermarkInfo,
    verify_bytes,
    verify_file,
)
from guardian.app._verify_report import VerifyReport
from guardian.app._wm_admin import (
    export_watermark,
    load_recipe,
    load_train_config,
    make_corpus,
    recipe_steps,
    train_watermark,
    watermark_info,
)

__all__ = [
    "AudioStage",
    "ChallengeResult",
    "ConsentView",
    "EnrollRequest",
    "EnrollResult",
    "ExportResult",
    "ForgetResult",
    "Guardian",
    "LabelRequest",
    "LabelResult",
    "ManifestInfo",
    "NoAdapterError",
    "ProcessingReport",
    "RetentionReport",
    "RevokeResult",
    "SynthesisRequest",
    "SynthesisResult",
    "TrainResult",
    "Verdict",
    "VerifyReport",
    "VerifyResult",
    "WatermarkInfo",
    "authorize",
    "check_policies",
    "consent_facts",
    "cosign_consent",
    "create_challenge",
    "enroll",
    "explain_policy",
    "export_subject",
    "export_watermark",
    "forget",
    "init_keys",
    "label_audio",
    "label_file",
    "list_keys",
    "load_recipe",
    "load_train_config",
    "make_corpus",
    "make_subject_key",
    "open_guardian",
    "plan_retention",
    "processing_report",
    "recent_audit",
    "recipe_steps",
    "require",
    "resolve_subject",
    "revoke_consent",
    "revoke_key",
    "rotate_key",
    "run_retention",
    "show_consent",
    "synthesize",
    "train_voice",
    "train_watermark",
    "verify_audit",
    "verify_bytes",
    "verify_consent_file",
    "verify_file",
    "verify_receipt_file",
    "verify_stored_consent",
    "watermark_info",
    "withdraw_consent",
    "write_new_file",
]
