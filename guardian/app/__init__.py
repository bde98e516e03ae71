"""The use-case layer: the CLI and the HTTP API call these and nothing deeper.

The names below are imported from their modules on first use (PEP 562), so that a
command loads only the use-cases it calls: ``guardian verify`` does not load
enrolment, synthesis, training or the API keys.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardian.app._apikeys import (
        ApiKeyInfo,
        NewApiKey,
        authenticate_api_key,
        create_api_key,
        list_api_keys,
        parse_scopes,
        record_api_access,
        revoke_api_key,
    )
    from guardian.app._audit import recent_audit, verify_audit
    from guardian.app._batch import BatchSummary, list_clips, verify_batch
    from guardian.app._consent import (
        ChallengeResult,
        ConsentView,
        RevokeResult,
        cosign_consent,
        create_challenge,
        make_subject_key,
        parse_when,
        revoke_consent,
        show_consent,
        verify_consent_file,
        verify_stored_consent,
        voice_for_token,
        withdraw_consent,
    )
    from guardian.app._context import Guardian, open_existing_guardian, open_guardian
    from guardian.app._engine import (
        NoAdapterError,
        SynthesisRequest,
        SynthesisResult,
        TrainResult,
        synthesize,
        train_voice,
    )
    from guardian.app._enroll import EnrollRequest, EnrollResult, enroll
    from guardian.app._health import Readiness, check_readiness, job_counts, prepare
    from guardian.app._invite import (
        InvitationError,
        InvitationResult,
        InvitationView,
        create_invitation,
        enroll_invitation,
        open_invitation,
    )
    from guardian.app._jobs import (
        JobView,
        cancel_job,
        get_job,
        reap_dead_jobs,
        retry_job,
        run_job_worker,
        run_one_job,
        submit_train_job,
    )
    from guardian.app._keys import (
        init_keys,
        key_warnings,
        list_keys,
        revoke_key,
        rotate_audit_key,
        rotate_key,
    )
    from guardian.app._label import (
        AudioStage,
        LabelRequest,
        LabelResult,
        Origin,
        VoiceClaim,
        label_audio,
        label_file,
        write_new_file,
    )
    from guardian.app._look_ahead import Seen, look_ahead
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
    from guardian.app._scopes import Scope
    from guardian.app._selfservice import (
        SelfServiceView,
        Use,
        forget_by_key,
        self_service_view,
        session_key,
        session_valid,
        sign_session,
        voice_for_key,
        withdraw_by_key,
    )
    from guardian.app._softbinding import (
        FINGERPRINT_ALG,
        WATERMARK_ALG,
        Match,
        manifest_store,
        match_by_binding,
        match_by_content,
        supported_algorithms,
        trust_anchors,
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
    from guardian.app._waveform import Waveform, waveform
    from guardian.app._wm_admin import (
        export_watermark,
        export_watermark_onnx,
        load_recipe,
        load_train_config,
        make_corpus,
        recipe_steps,
        train_watermark,
        watermark_info,
    )
    from guardian.audit import acting_as

__all__ = [
    "FINGERPRINT_ALG",
    "WATERMARK_ALG",
    "ApiKeyInfo",
    "AudioStage",
    "BatchSummary",
    "ChallengeResult",
    "ConsentView",
    "EnrollRequest",
    "EnrollResult",
    "ExportResult",
    "ForgetResult",
    "Guardian",
    "InvitationError",
    "InvitationResult",
    "InvitationView",
    "JobView",
    "LabelRequest",
    "LabelResult",
    "ManifestInfo",
    "Match",
    "NewApiKey",
    "NoAdapterError",
    "Origin",
    "ProcessingReport",
    "Readiness",
    "RetentionReport",
    "RevokeResult",
    "Scope",
    "Seen",
    "SelfServiceView",
    "SynthesisRequest",
    "SynthesisResult",
    "TrainResult",
    "Use",
    "Verdict",
    "VerifyReport",
    "VerifyResult",
    "VoiceClaim",
    "WatermarkInfo",
    "Waveform",
    "acting_as",
    "authenticate_api_key",
    "authorize",
    "cancel_job",
    "check_policies",
    "check_readiness",
    "consent_facts",
    "cosign_consent",
    "create_api_key",
    "create_challenge",
    "create_invitation",
    "enroll",
    "enroll_invitation",
    "explain_policy",
    "export_subject",
    "export_watermark",
    "export_watermark_onnx",
    "forget",
    "forget_by_key",
    "get_job",
    "init_keys",
    "job_counts",
    "key_warnings",
    "label_audio",
    "label_file",
    "list_api_keys",
    "list_clips",
    "list_keys",
    "load_recipe",
    "load_train_config",
    "look_ahead",
    "make_corpus",
    "make_subject_key",
    "manifest_store",
    "match_by_binding",
    "match_by_content",
    "open_existing_guardian",
    "open_guardian",
    "open_invitation",
    "parse_scopes",
    "parse_when",
    "plan_retention",
    "prepare",
    "processing_report",
    "reap_dead_jobs",
    "recent_audit",
    "recipe_steps",
    "record_api_access",
    "require",
    "resolve_subject",
    "retry_job",
    "revoke_api_key",
    "revoke_consent",
    "revoke_key",
    "rotate_audit_key",
    "rotate_key",
    "run_job_worker",
    "run_one_job",
    "run_retention",
    "self_service_view",
    "session_key",
    "session_valid",
    "show_consent",
    "sign_session",
    "submit_train_job",
    "supported_algorithms",
    "synthesize",
    "train_voice",
    "train_watermark",
    "trust_anchors",
    "verify_audit",
    "verify_batch",
    "verify_bytes",
    "verify_consent_file",
    "verify_file",
    "verify_receipt_file",
    "verify_stored_consent",
    "voice_for_key",
    "voice_for_token",
    "watermark_info",
    "waveform",
    "withdraw_by_key",
    "withdraw_consent",
    "write_new_file",
]


_EXPORTS: dict[str, tuple[str, ...]] = {
    "guardian.app._apikeys": (
        "ApiKeyInfo",
        "NewApiKey",
        "authenticate_api_key",
        "create_api_key",
        "list_api_keys",
        "parse_scopes",
        "record_api_access",
        "revoke_api_key",
    ),
    "guardian.app._audit": ("recent_audit", "verify_audit"),
    "guardian.app._batch": ("BatchSummary", "list_clips", "verify_batch"),
    "guardian.app._consent": (
        "ChallengeResult",
        "ConsentView",
        "RevokeResult",
        "cosign_consent",
        "create_challenge",
        "make_subject_key",
        "parse_when",
        "revoke_consent",
        "show_consent",
        "verify_consent_file",
        "verify_stored_consent",
        "voice_for_token",
        "withdraw_consent",
    ),
    "guardian.app._context": ("Guardian", "open_existing_guardian", "open_guardian"),
    "guardian.app._engine": (
        "NoAdapterError",
        "SynthesisRequest",
        "SynthesisResult",
        "TrainResult",
        "synthesize",
        "train_voice",
    ),
    "guardian.app._enroll": ("EnrollRequest", "EnrollResult", "enroll"),
    "guardian.app._health": ("Readiness", "check_readiness", "job_counts", "prepare"),
    "guardian.app._invite": (
        "InvitationError",
        "InvitationResult",
        "InvitationView",
        "create_invitation",
        "enroll_invitation",
        "open_invitation",
    ),
    "guardian.app._jobs": (
        "JobView",
        "cancel_job",
        "get_job",
        "reap_dead_jobs",
        "retry_job",
        "run_job_worker",
        "run_one_job",
        "submit_train_job",
    ),
    "guardian.app._keys": (
        "init_keys",
        "key_warnings",
        "list_keys",
        "revoke_key",
        "rotate_audit_key",
        "rotate_key",
    ),
    "guardian.app._look_ahead": ("Seen", "look_ahead"),
    "guardian.app._label": (
        "AudioStage",
        "LabelRequest",
        "LabelResult",
        "Origin",
        "VoiceClaim",
        "label_audio",
        "label_file",
        "write_new_file",
    ),
    "guardian.app._policy": ("authorize", "check_policies", "consent_facts", "require"),
    "guardian.app._report": ("ProcessingReport", "processing_report"),
    "guardian.app._retention": ("RetentionReport", "run_retention"),
    "guardian.app._rights": (
        "ExportResult",
        "ForgetResult",
        "export_subject",
        "forget",
        "resolve_subject",
        "verify_receipt_file",
    ),
    "guardian.app._scopes": ("Scope",),
    "guardian.app._selfservice": (
        "SelfServiceView",
        "Use",
        "forget_by_key",
        "self_service_view",
        "session_key",
        "session_valid",
        "sign_session",
        "voice_for_key",
        "withdraw_by_key",
    ),
    "guardian.app._softbinding": (
        "FINGERPRINT_ALG",
        "WATERMARK_ALG",
        "Match",
        "manifest_store",
        "match_by_binding",
        "match_by_content",
        "supported_algorithms",
        "trust_anchors",
    ),
    "guardian.app._verify": (
        "ManifestInfo",
        "Verdict",
        "VerifyResult",
        "WatermarkInfo",
        "verify_bytes",
        "verify_file",
    ),
    "guardian.app._verify_report": ("VerifyReport",),
    "guardian.app._waveform": ("Waveform", "waveform"),
    "guardian.app._wm_admin": (
        "export_watermark",
        "export_watermark_onnx",
        "load_recipe",
        "load_train_config",
        "make_corpus",
        "recipe_steps",
        "train_watermark",
        "watermark_info",
    ),
    "guardian.audit": ("acting_as",),
}
"""The public names of each module, by module."""

_RENAMED = {
    "explain_policy": ("guardian.app._policy", "explain"),
    "plan_retention": ("guardian.app._retention", "plan"),
}
"""Public names that differ from their name in their module."""

_SOURCES = {name: (module, name) for module, names in _EXPORTS.items() for name in names} | _RENAMED

if not TYPE_CHECKING:  # mypy checks the names through the imports above

    def __getattr__(name: str) -> object:
        try:
            module, attr = _SOURCES[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))
