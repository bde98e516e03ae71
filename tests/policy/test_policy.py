"""Voice-use policies: the shipped Cedar policies, deployment rules, loading problems."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from guardian.errors import PolicyError, UsageError
from guardian.policy import (
    Action,
    ConsentFacts,
    Decision,
    PolicyRequest,
    PolicySet,
    check_policies,
    default_policy_dir,
)

NOW = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
SOURCE = Path(__file__).resolve().parents[2] / "policies"
"""The editable source of the default policies, with its ``local/`` and ``examples/``."""
EXAMPLE_RULE = SOURCE / "examples" / "no-political-purposes.cedar.example"


@pytest.fixture(scope="module")
def shipped() -> PolicySet:
    return PolicySet.load(default_policy_dir())


def facts(**changes: object) -> ConsentFacts:
    base = ConsentFacts(
        voice_id="voice-1",
        consent_id="consent-1",
        status="active",
        organization="Acme Audio",
        purposes=frozenset({"audiobook", "assistive-speech", "political-campaign"}),
        requesters=frozenset({"studio-b"}),
        expires_at=NOW + dt.timedelta(days=30),
        epsilon_spent=2.0,
        epsilon_cap=8.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def use(
    purpose: str = "audiobook",
    requester: str = "studio-b",
    *,
    action: Action = Action.SYNTHESIZE,
    epsilon: float = 0.0,
) -> PolicyRequest:
    return PolicyRequest(action, "voice-1", purpose, requester, epsilon)


def policy_copy(tmp_path: Path) -> Path:
    """A private copy of the policy directory that a test may change, as a deployment
    makes one for its own rules."""
    target = tmp_path / "policies"
    shutil.copytree(SOURCE, target)
    return target


# --- the shipped policies ------------------------------------------------------------


def test_shipped_policies_are_valid_and_annotated(shipped: PolicySet) -> None:
    assert shipped.problems() == []
    ids = [p.policy_id for p in shipped.policies]
    assert len(ids) == len(set(ids))
    assert all(p.reason for p in shipped.policies)
    permits = [p.policy_id for p in shipped.policies if p.effect == "permit"]
    assert permits == ["consented-use", "label-imported-audio"]


def test_consented_purpose_is_allowed(shipped: PolicySet) -> None:
    decision = shipped.decide(use("audiobook"), facts(), now=NOW)
    assert decision.allowed
    assert decision.policy_ids == ("consented-use",)
    assert "consent" in decision.reasons[0]


def test_purpose_not_consented_is_denied(shipped: PolicySet) -> None:
    decision = shipped.decide(use("advertising"), facts(), now=NOW)
    assert not decision
    assert decision.policy_ids == ("purpose-not-consented",)
    assert decision.reasons == ("the speaker did not consent to this purpose",)


def test_expired_consent_is_denied(shipped: PolicySet) -> None:
    expired = facts(expires_at=NOW - dt.timedelta(seconds=1))
    decision = shipped.decide(use(), expired, now=NOW)
    assert decision.policy_ids == ("consent-expired",)
    assert not decision


def test_consent_ends_at_its_expiry_second(shipped: PolicySet) -> None:
    assert not shipped.decide(use(), facts(expires_at=NOW), now=NOW)
    assert shipped.decide(use(), facts(expires_at=NOW + dt.timedelta(seconds=1)), now=NOW)
    assert shipped.decide(use(), facts(expires_at=None), now=NOW + dt.timedelta(days=9999))


def test_sub_second_rounding_ends_consent_early_never_late(shipped: PolicySet) -> None:
    # Whole-second encoding may refuse in the consent's last second, never extend it.
    quarter = dt.timedelta(milliseconds=250)
    assert not shipped.decide(use(), facts(expires_at=NOW + 3 * quarter), now=NOW + quarter)
    assert not shipped.decide(use(), facts(expires_at=NOW + quarter), now=NOW + 3 * quarter)
    assert shipped.decide(use(), facts(expires_at=NOW + quarter), now=NOW - quarter)


def test_budget_rounding_leans_towards_denial(shipped: PolicySet) -> None:
    # Below a micro-ε: what is spent or requested rounds up, the cap rounds down.
    assert not shipped.decide(use(), facts(epsilon_spent=7.9999994, epsilon_cap=8.0), now=NOW)
    assert not shipped.decide(use(), facts(epsilon_spent=8.0, epsilon_cap=8.0000004), now=NOW)
    train = use(action=Action.TRAIN, epsilon=1.0000001)
    assert not shipped.decide(train, facts(epsilon_spent=1.0, epsilon_cap=2.0), now=NOW)
    # 1.0000004 + 1.0000004 > 2.0000007: nearest rounding would say 2.000000 <= 2.000001.
    nudged = use(action=Action.TRAIN, epsilon=1.0000004)
    assert not shipped.decide(
        nudged, facts(epsilon_spent=1.0000004, epsilon_cap=2.0000007), now=NOW
    )


def test_naive_datetimes_are_utc(shipped: PolicySet) -> None:
    naive_end = (NOW + dt.timedelta(hours=1)).replace(tzinfo=None)
    assert shipped.decide(use(), facts(expires_at=naive_end), now=NOW)
    later = (NOW + dt.timedelta(hours=2)).replace(tzinfo=None)
    assert not shipped.decide(use(), facts(expires_at=naive_end), now=later)


@pytest.mark.parametrize(
    ("status", "policy_id"),
    [
        ("revoked", "consent-revoked"),
        ("erased", "consent-erased"),
        ("suspended", "consent-status-unknown"),
        ("ACTIVE", "consent-status-unknown"),
    ],
)
def test_inactive_consent_is_denied(shipped: PolicySet, status: str, policy_id: str) -> None:
    decision = shipped.decide(use(), facts(status=status), now=NOW)
    assert not decision
    assert decision.policy_ids == (policy_id,)


def test_unknown_requester_is_denied(shipped: PolicySet) -> None:
    decision = shipped.decide(use(requester="mallory"), facts(), now=NOW)
    assert not decision
    assert decision.policy_ids == ("requester-not-allowed",)


def test_consenting_organisation_is_always_allowed(shipped: PolicySet) -> None:
    assert "Acme Audio" not in facts().requesters
    assert shipped.decide(use(requester="Acme Audio"), facts(), now=NOW).allowed
    assert shipped.decide(use(requester="Acme Audio"), facts(requesters=frozenset()), now=NOW)


def test_consent_without_organisation_admits_only_listed_requesters(shipped: PolicySet) -> None:
    no_org = facts(organization="")
    assert shipped.decide(use(requester="studio-b"), no_org, now=NOW)
    assert not shipped.decide(use(requester="Acme Audio"), no_org, now=NOW)
    with pytest.raises(UsageError):
        use(requester="  ")


def test_every_failed_condition_is_named(shipped: PolicySet) -> None:
    decision = shipped.decide(
        use("advertising", "mallory", action=Action.TRAIN, epsilon=1.0),
        facts(status="revoked", expires_at=NOW, epsilon_spent=8.0),
        now=NOW,
    )
    assert decision.policy_ids == (
        "purpose-not-consented",
        "requester-not-allowed",
        "budget-exhausted",
        "budget-would-exceed",
        "consent-revoked",
        "consent-expired",
    )
    assert len(decision.reasons) == len(decision.policy_ids)


# --- privacy budget ------------------------------------------------------------------


def test_synthesis_allowed_while_budget_remains(shipped: PolicySet) -> None:
    assert shipped.decide(use(), facts(epsilon_spent=7.999999, epsilon_cap=8.0), now=NOW)


@pytest.mark.parametrize("spent", [8.0, 8.000001, 100.0])
def test_synthesis_denied_once_budget_is_spent(shipped: PolicySet, spent: float) -> None:
    decision = shipped.decide(use(), facts(epsilon_spent=spent, epsilon_cap=8.0), now=NOW)
    assert not decision
    assert decision.policy_ids == ("budget-exhausted",)


def test_zero_budget_allows_nothing(shipped: PolicySet) -> None:
    zero = facts(epsilon_spent=0.0, epsilon_cap=0.0)
    assert shipped.decide(use(), zero, now=NOW).policy_ids == ("budget-exhausted",)


def test_training_denied_when_it_would_pass_the_cap(shipped: PolicySet) -> None:
    train = use(action=Action.TRAIN, epsilon=2.5)
    decision = shipped.decide(train, facts(epsilon_spent=6.0, epsilon_cap=8.0), now=NOW)
    assert not decision
    assert decision.policy_ids == ("budget-would-exceed",)


def test_training_allowed_within_the_cap(shipped: PolicySet) -> None:
    exact = use(action=Action.TRAIN, epsilon=2.0)
    assert shipped.decide(exact, facts(epsilon_spent=6.0, epsilon_cap=8.0), now=NOW)
    # Decimal meaning, not binary floats: 0.1 + 0.2 is 0.3 and fits a cap of 0.3.
    tenths = use(action=Action.TRAIN, epsilon=0.2)
    assert shipped.decide(tenths, facts(epsilon_spent=0.1, epsilon_cap=0.3), now=NOW)


def test_training_denied_by_a_millionth_over(shipped: PolicySet) -> None:
    over = use(action=Action.TRAIN, epsilon=2.000001)
    decision = shipped.decide(over, facts(epsilon_spent=6.0, epsilon_cap=8.0), now=NOW)
    assert decision.policy_ids == ("budget-would-exceed",)


def test_huge_budgets_saturate_towards_denial(shipped: PolicySet) -> None:
    # Past 10^12 ε the encoding saturates; it must never wrap or allow.
    huge_request = use(action=Action.TRAIN, epsilon=5e12)
    assert not shipped.decide(huge_request, facts(epsilon_spent=0.0, epsilon_cap=2e12), now=NOW)
    assert not shipped.decide(huge_request, facts(epsilon_spent=0.0, epsilon_cap=1e300), now=NOW)
    assert not shipped.decide(use(), facts(epsilon_spent=1e300, epsilon_cap=1e301), now=NOW)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_invalid_budget_figures_are_refused(bad: float) -> None:
    with pytest.raises(PolicyError):
        facts(epsilon_spent=bad)
    with pytest.raises(UsageError):
        use(action=Action.TRAIN, epsilon=bad)


def test_synthesis_cannot_claim_a_budget() -> None:
    with pytest.raises(UsageError, match="synthesis spends no privacy budget"):
        use(action=Action.SYNTHESIZE, epsilon=1.0)


# --- unknown voices ------------------------------------------------------------------


def test_unknown_voice_is_denied(shipped: PolicySet) -> None:
    decision = shipped.decide(use(), None, now=NOW)
    assert not decision
    assert decision.policy_ids == ("unknown-voice",)


def test_facts_for_another_voice_count_as_unknown(shipped: PolicySet) -> None:
    decision = shipped.decide(use(), facts(voice_id="voice-2"), now=NOW)
    assert decision.policy_ids == ("unknown-voice",)


# --- deployment rules ----------------------------------------------------------------


def test_example_rule_is_not_loaded_until_copied_in(tmp_path: Path) -> None:
    directory = policy_copy(tmp_path)
    political = use("political-campaign")
    assert PolicySet.load(directory).decide(political, facts(), now=NOW).allowed

    shutil.copy(EXAMPLE_RULE, directory / "local" / "no-political-purposes.cedar")
    policies = PolicySet.load(directory)

    assert policies.problems() == []
    decision = policies.decide(political, facts(), now=NOW)
    assert not decision
    assert decision.policy_ids == ("no-political-purposes",)
    assert "political" in decision.reasons[0]
    assert policies.decide(use("audiobook"), facts(), now=NOW).allowed


def test_rules_load_recursively_in_a_stable_order(tmp_path: Path) -> None:
    directory = policy_copy(tmp_path)
    nested = directory / "local" / "team" / "deep"
    nested.mkdir(parents=True)
    (nested / "no-ads.cedar").write_text(
        '@id("no-ads")\n@reason("no advertising here")\n'
        'forbid (principal, action, resource) when { context.purpose == "audiobook" };\n'
    )
    policies = PolicySet.load(directory)
    assert policies.problems() == []
    assert "local/team/deep/no-ads.cedar" in {p.file for p in policies.policies}
    assert policies.decide(use(), facts(), now=NOW).policy_ids == ("no-ads",)


def test_evaluation_error_fails_closed(tmp_path: Path) -> None:
    directory = policy_copy(tmp_path)
    # Well-typed, so the validator accepts it, but it overflows at evaluation time.
    # Cedar skips an erroring forbid, which would leave the permit standing.
    (directory / "local" / "overflow.cedar").write_text(
        '@id("overflowing-rule")\n@reason("demonstrates an evaluation error")\n'
        'forbid (principal, action in [Action::"synthesize", Action::"train"], resource)\n'
        "when { resource.epsilon_cap_micro * 9223372036854775807 > 0 };\n"
    )
    policies = PolicySet.load(directory)
    assert policies.problems() == []
    decision = policies.decide(use(), facts(), now=NOW)
    assert not decision
    assert decision.policy_ids == ("overflowing-rule",)
    assert "could not be evaluated" in decision.reasons[0]
    assert "overflow" in decision.reasons[0]


# --- loading problems ----------------------------------------------------------------


def test_schema_violation_is_reported_and_denies_everything(tmp_path: Path) -> None:
    directory = policy_copy(tmp_path)
    (directory / "local" / "typo.cedar").write_text(
        '@id("typo-rule")\n@reason("misspelt attribute")\n'
        'forbid (principal, action == Action::"train", resource)\n'
        "when { resource.purpose_list.isEmpty() };\n"
    )
    policies = PolicySet.load(directory)
    problems = policies.problems()
    assert len(problems) == 1
    assert problems[0].startswith("local/typo.cedar: policy typo-rule: ")
    assert "purpose_list" in problems[0]
    decision = policies.decide(use(), facts(), now=NOW)
    assert decision.policy_ids == ("invalid-policy-set",)
    assert not decision


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    directory = policy_copy(tmp_path)
    (directory / "local" / "broken.cedar").write_text("forbid (principal, action resource);\n")
    with pytest.raises(PolicyError) as caught:
        PolicySet.load(directory)
    assert "local/broken.cedar" in caught.value.diagnostics()
    assert [p.split(":")[0] for p in caught.value.problems] == ["local/broken.cedar"]
    assert check_policies(directory)[0].startswith("local/broken.cedar: cannot parse")


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    directory = policy_copy(tmp_path)
    (directory / "local" / "latin1.cedar").write_bytes(b"// caf\xe9\n")
    problems = check_policies(directory)
    assert len(problems) == 1
    assert problems[0].startswith("local/latin1.cedar: cannot parse")


def test_empty_directory_is_a_problem_not_allow_all(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    directory.mkdir()
    shutil.copy(default_policy_dir() / "schema.cedarschema", directory)
    policies = PolicySet.load(directory)
    assert any("no policies" in p for p in policies.problems())
    assert not policies.decide(use(), facts(), now=NOW)


def test_missing_directory_or_schema_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        PolicySet.load(tmp_path / "nowhere")
    directory = policy_copy(tmp_path)
    (directory / "schema.cedarschema").unlink()
    with pytest.raises(PolicyError, match=r"schema\.cedarschema"):
        PolicySet.load(directory)
    assert check_policies(directory)[0].startswith("schema.cedarschema: cannot read")


def test_annotation_problems_are_reported(tmp_path: Path) -> None:
    directory = policy_copy(tmp_path)
    (directory / "local" / "sloppy.cedar").write_text(
        "forbid (principal, action, resource) when { false };\n"
        '@id("no-reason")\nforbid (principal, action, resource) when { false };\n'
        '@id("consent-expired")\n@reason("again")\n'
        "forbid (principal, action, resource) when { false };\n"
        '@id("unknown-voice")\n@reason("claims an engine id")\n'
        "forbid (principal, action, resource) when { false };\n"
    )
    problems = PolicySet.load(directory).problems()
    assert problems == [
        'local/sloppy.cedar: policy #0: missing @id("...") annotation',
        'local/sloppy.cedar: policy #0: missing @reason("...") annotation',
        'local/sloppy.cedar: policy #1: missing @reason("...") annotation',
        "local/sloppy.cedar: policy #2: duplicate @id 'consent-expired' (also in consent.cedar)",
        "local/sloppy.cedar: policy #3: @id 'unknown-voice' is reserved for the engine",
    ]


def test_templates_are_reported(tmp_path: Path) -> None:
    directory = policy_copy(tmp_path)
    (directory / "local" / "template.cedar").write_text(
        '@id("t")\n@reason("r")\npermit (principal == ?principal, action, resource);\n'
    )
    assert any("templates" in p for p in PolicySet.load(directory).problems())


# --- decisions -----------------------------------------------------------------------


def test_decision_round_trips_through_a_dict(shipped: PolicySet) -> None:
    decision = shipped.decide(use("advertising", "mallory"), facts(), now=NOW)
    data = decision.to_dict()
    assert set(data) == {"allowed", "policy_ids", "reasons"}
    assert data["policy_ids"] == ["purpose-not-consented", "requester-not-allowed"]
    assert Decision.from_dict(data) == decision


def test_a_decision_must_name_a_policy() -> None:
    with pytest.raises(ValueError, match="at least one policy id"):
        Decision(allowed=False, policy_ids=(), reasons=())
    with pytest.raises(ValueError, match="one reason per policy id"):
        Decision(allowed=True, policy_ids=("a", "b"), reasons=("only one",))


def test_action_accepts_its_cli_spelling() -> None:
    assert PolicyRequest("train", "v", "p", "r", 1.0).action is Action.TRAIN  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unknown action"):
        PolicyRequest("clone", "v", "p", "r")  # type: ignore[arg-type]
