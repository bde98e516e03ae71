"""Cedar's decisions against an independent reference written in plain Python.

The reference below states the consent rules of docs/policy.md directly. It exists
only here, as the oracle: the product never decides in Python.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.policy import Action, ConsentFacts, PolicyRequest, PolicySet, default_policy_dir

BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
PURPOSES = ["audiobook", "assistive-speech", "advertising", "political-campaign"]
NAMES = ["Acme Audio", "studio-b", "mallory", "narrator"]
STATUSES = ["active", "revoked", "erased", "suspended"]


@pytest.fixture(scope="module")
def shipped() -> PolicySet:
    return PolicySet.load(default_policy_dir())


def exact(value: float) -> Decimal:
    """A budget figure's decimal meaning, exactly (``0.1`` is one tenth)."""
    return Decimal(repr(value))


def reference_denials(request: PolicyRequest, facts: ConsentFacts, now: dt.datetime) -> set[str]:
    """The policy ids that must deny ``request``; empty means it must be allowed."""
    denials = set()
    if facts.status == "revoked":
        denials.add("consent-revoked")
    if facts.status == "erased":
        denials.add("consent-erased")
    if facts.status not in {"active", "revoked", "erased"}:
        denials.add("consent-status-unknown")
    if facts.expires_at is not None and now >= facts.expires_at:
        denials.add("consent-expired")
    if request.purpose not in facts.purposes:
        denials.add("purpose-not-consented")
    organisation = facts.organization != "" and request.requester == facts.organization
    if request.requester not in facts.requesters and not organisation:
        denials.add("requester-not-allowed")
    spent, cap, requested = (
        exact(facts.epsilon_spent),
        exact(facts.epsilon_cap),
        exact(request.epsilon),
    )
    if spent >= cap:
        denials.add("budget-exhausted")
    if request.action is Action.TRAIN and spent + requested > cap:
        denials.add("budget-would-exceed")
    return denials


# Budgets on the micro-ε grid, mostly on a coarse grid so that equality (spent == cap,
# spent + requested == cap) comes up often.
micro = st.one_of(st.integers(0, 8).map(lambda k: k * 500_000), st.integers(0, 4_000_000))
budget = micro.map(lambda m: m / 1_000_000)
seconds = st.integers(-3, 3)


@st.composite
def cases(
    draw: st.DrawFn, *, budgets: st.SearchStrategy[float], whole_seconds: bool
) -> tuple[PolicyRequest, ConsentFacts, dt.datetime]:
    step = dt.timedelta(seconds=1) if whole_seconds else dt.timedelta(milliseconds=250)
    now = BASE + draw(st.integers(-3, 3)) * step
    expires = draw(st.one_of(st.none(), st.integers(-3, 3).map(lambda n: BASE + n * step)))
    facts = ConsentFacts(
        voice_id="voice-1",
        consent_id="consent-1",
        status=draw(st.sampled_from(STATUSES)),
        organization=draw(st.sampled_from([*NAMES[:2], ""])),
        purposes=frozenset(draw(st.sets(st.sampled_from(PURPOSES)))),
        requesters=frozenset(draw(st.sets(st.sampled_from(NAMES)))),
        expires_at=expires,
        epsilon_spent=draw(budgets),
        epsilon_cap=draw(budgets),
    )
    action = draw(st.sampled_from(list(Action)))
    request = PolicyRequest(
        action=action,
        voice_id="voice-1",
        purpose=draw(st.sampled_from(PURPOSES)),
        requester=draw(st.sampled_from(NAMES)),
        epsilon=draw(budgets) if action is Action.TRAIN else 0.0,
    )
    return request, facts, now


@settings(max_examples=400)
@given(case=cases(budgets=budget, whole_seconds=True))
def test_cedar_agrees_with_the_reference(
    shipped: PolicySet, case: tuple[PolicyRequest, ConsentFacts, dt.datetime]
) -> None:
    request, facts, now = case
    decision = shipped.decide(request, facts, now=now)
    denials = reference_denials(request, facts, now)

    assert decision.allowed == (not denials)
    assert len(decision.policy_ids) >= 1
    if denials:
        assert set(decision.policy_ids) == denials
    else:
        assert decision.policy_ids == ("consented-use",)


# Off-grid budgets: arbitrary floats, and grid values nudged by less than a micro-ε,
# which is where rounding the wrong way would show.
off_grid = st.one_of(
    st.floats(0, 50, allow_nan=False, allow_infinity=False),
    st.tuples(micro, st.sampled_from([1e-7, 4e-7, 6e-7, -4e-7])).map(
        lambda t: max(0.0, t[0] / 1_000_000 + t[1])
    ),
)


@settings(max_examples=300)
@given(case=cases(budgets=off_grid, whole_seconds=False))
def test_quantisation_never_allows_what_the_reference_denies(
    shipped: PolicySet, case: tuple[PolicyRequest, ConsentFacts, dt.datetime]
) -> None:
    # Arbitrary floats and sub-second times do not sit on Cedar's grid (micro-ε,
    # whole seconds). Rounding may then deny a borderline use, but never allow one.
    request, facts, now = case
    decision = shipped.decide(request, facts, now=now)
    if decision.allowed:
        assert reference_denials(request, facts, now) == set()
    else:
        assert decision.policy_ids
