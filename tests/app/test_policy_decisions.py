"""Policy decisions through the use-case layer: real Cedar, real store, audited."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlmodel import col, select

from guardian.app import Guardian, explain_policy, require, revoke_consent
from guardian.errors import ExitCode, PolicyDeniedError
from guardian.policy import Action, PolicyRequest
from guardian.store import AuditEntry, Voice, VoiceStatus, utcnow

ORG = "Guardian Demo Studio"


def _voice(g: Guardian, **terms: object) -> str:
    """A voice row as enrollment leaves it (the record blob is irrelevant here)."""
    with g.transaction() as s:
        subject = g.vault.new_subject(s)
        voice = Voice(
            id="voice_" + "a" * 26,
            subject_id=subject.id,
            consent_id="consent_" + "a" * 26,
            status=VoiceStatus.ACTIVE,
            organization=ORG,
            purposes_json=json.dumps(terms.get("purposes", ["audiobook"])),
            requesters_json=json.dumps(terms.get("requesters", ["Acme Audio"])),
            expires_at=terms.get("expires_at"),
            max_epsilon=float(terms.get("max_epsilon", 8.0)),  # type: ignore[arg-type]
            epsilon_spent=float(terms.get("epsilon_spent", 0.0)),  # type: ignore[arg-type]
            record_blob_id="blob_none",
            record_sha256="0" * 64,
            withdraw_token_mac="1" * 64,
            created_at=utcnow(),
        )
        s.add(voice)
    return voice.id


def _ask(voice: str, purpose: str = "audiobook", requester: str = ORG) -> PolicyRequest:
    return PolicyRequest(Action.SYNTHESIZE, voice, purpose, requester)


def _last_decision(g: Guardian) -> dict[str, object]:
    with g.reading() as s:
        entry = s.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "policy.decision")
            .order_by(col(AuditEntry.seq).desc())
        ).first()
    assert entry is not None
    return dict(json.loads(entry.details_json))


def test_an_allowed_use_is_audited_with_its_policy(g: Guardian) -> None:
    g.ensure_keys()
    voice = _voice(g)
    assert require(g, _ask(voice, requester="Acme Audio"))
    logged = _last_decision(g)
    assert logged["allowed"] is True and logged["policy_ids"] == ["consented-use"]


@pytest.mark.parametrize(
    ("terms", "request_kw", "policy"),
    [
        ({}, {"purpose": "political-ads"}, "purpose-not-consented"),
        ({}, {"requester": "Unknown Corp"}, "requester-not-allowed"),
        (
            {"expires_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)},
            {},
            "consent-expired",
        ),
        ({"epsilon_spent": 8.0}, {}, "budget-exhausted"),
    ],
)
def test_a_denied_use_is_refused_and_still_audited(
    g: Guardian, terms: dict[str, object], request_kw: dict[str, str], policy: str
) -> None:
    g.ensure_keys()
    voice = _voice(g, **terms)
    with pytest.raises(PolicyDeniedError) as info:
        require(g, _ask(voice, **request_kw))
    assert info.value.exit_code is ExitCode.REJECTED
    logged = _last_decision(g)
    assert logged["allowed"] is False and policy in logged["policy_ids"]  # type: ignore[operator]


def test_revocation_denies_the_next_request(g: Guardian) -> None:
    g.ensure_keys()
    voice = _voice(g)
    assert explain_policy(g, _ask(voice))
    revoke_consent(g, voice)
    decision = explain_policy(g, _ask(voice))
    assert not decision and "consent-revoked" in decision.policy_ids


def test_an_unknown_voice_is_denied(g: Guardian) -> None:
    decision = explain_policy(g, _ask("voice_" + "b" * 26))
    assert not decision and decision.policy_ids == ("unknown-voice",)
