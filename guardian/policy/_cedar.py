"""Asking Cedar, and turning its answer into a :class:`Decision`.

Cedar decides. This module only translates: the request goes in through
:mod:`guardian.policy._encode`, and Cedar's diagnostics (the engine ids of the
policies that determined the answer, and any evaluation errors) come back as
``@id``/``@reason`` pairs. Three answers do not come from a Cedar policy, and each
carries a reserved id of its own so that the audit log still names a cause:

- ``unknown-voice``: there are no consent facts for the voice, so there is nothing
  to evaluate. This is the one rule decided in code, before Cedar is asked.
- ``invalid-policy-set``: the loaded set has problems (``guardian policy check``
  lists them); a set that is not known to be right never allows anything.
- ``default-deny``: no permit matched and no forbid did either (Cedar's default).
  The shipped forbids cover every condition of the shipped permit, so this appears
  only when a deployment changes the shipped files.

Any evaluation error denies (fail closed): Cedar skips a policy that errors, so a
forbid that errors would otherwise let the permit through. The erroring policy is
named, under ``evaluation-error`` when Cedar's message names no policy.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

import cedarpy

from guardian.policy._encode import (
    cedar_entities,
    cedar_label_entities,
    cedar_label_request,
    cedar_request,
)
from guardian.policy._load import (
    DEFAULT_DENY,
    EVALUATION_ERROR,
    INVALID_POLICY_SET,
    UNKNOWN_VOICE,
    Loaded,
    LoadedPolicy,
)
from guardian.policy._model import ConsentFacts, Decision, LabelPolicyRequest, PolicyRequest

_ERROR_POLICY = re.compile(r"policy `([^`]+)`: (.*)", re.DOTALL)

# Cedar's input errors quote the whole entity JSON (names, consent ids). Reasons go
# into the audit log, so they keep only the sentence after it, and a bounded length.
_MAX_DETAIL = 200


def evaluate(
    loaded: Loaded, request: PolicyRequest, facts: ConsentFacts | None, *, now: dt.datetime
) -> Decision:
    """Decide on ``request`` with the policies in ``loaded``."""
    if loaded.problems:
        count = len(loaded.problems)
        return _deny(
            INVALID_POLICY_SET,
            f"the policy set has {count} problem(s) and allows nothing until they are "
            "fixed (run `guardian policy check`)",
        )
    if facts is None:
        return _deny(UNKNOWN_VOICE, "no consent is on record for this voice")
    if facts.voice_id != request.voice_id:
        return _deny(UNKNOWN_VOICE, "the consent facts given are for another voice")
    return _ask(loaded, cedar_request(request, now=now), cedar_entities(request, facts))


def evaluate_label(loaded: Loaded, request: LabelPolicyRequest, *, now: dt.datetime) -> Decision:
    """Decide on labeling imported audio with the policies in ``loaded``."""
    if loaded.problems:
        return _deny(
            INVALID_POLICY_SET,
            f"the policy set has {len(loaded.problems)} problem(s) and allows nothing "
            "until they are fixed (run `guardian policy check`)",
        )
    return _ask(loaded, cedar_label_request(request, now=now), cedar_label_entities(request))


def _ask(loaded: Loaded, request: dict[str, Any], entities: list[dict[str, Any]]) -> Decision:
    try:
        result = cedarpy.is_authorized(request, loaded.engine, entities, schema=loaded.schema)
    except ValueError as e:
        return _deny(EVALUATION_ERROR, f"the policy engine rejected the request: {_short(e)}")
    return _to_decision(result, loaded.by_engine_id)


def _to_decision(result: cedarpy.AuthzResult, policies: Mapping[str, LoadedPolicy]) -> Decision:
    fired = _in_load_order(result.diagnostics.reasons, policies)
    pairs = [(p.info.policy_id or p.engine_id, p.info.reason) for p in fired]
    errors = result.diagnostics.errors
    if errors:
        # Whatever Cedar concluded, an error means some policy was not applied.
        forbids = [pair for pair, p in zip(pairs, fired, strict=True) if p.info.effect == "forbid"]
        return _decision(False, forbids + [_error_pair(e, policies) for e in errors])
    if pairs:
        return _decision(result.allowed, pairs)
    return _deny(DEFAULT_DENY, "no policy permits this use")


def _in_load_order(
    engine_ids: Iterable[str], policies: Mapping[str, LoadedPolicy]
) -> list[LoadedPolicy]:
    # Cedar reports determining policies in no fixed order; the audit log and the
    # tests want the same decision to read the same way every time.
    order = {engine_id: n for n, engine_id in enumerate(policies)}
    known = [policies[e] for e in set(engine_ids) if e in policies]
    return sorted(known, key=lambda p: order[p.engine_id])


def _error_pair(error: str, policies: Mapping[str, LoadedPolicy]) -> tuple[str, str]:
    match = _ERROR_POLICY.search(error)
    policy = policies.get(match.group(1)) if match else None
    if match is None or policy is None:
        return EVALUATION_ERROR, f"the policy engine could not evaluate: {_short(error)}"
    detail = _short(match.group(2))
    return policy.info.policy_id or policy.engine_id, (
        f"this policy could not be evaluated, so the use is denied: {detail}"
    )


def _short(error: object) -> str:
    text = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown error"
    if "]: " in text:
        text = text.rsplit("]: ", 1)[1]
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _deny(policy_id: str, reason: str) -> Decision:
    return Decision(allowed=False, policy_ids=(policy_id,), reasons=(reason,))


def _decision(allowed: bool, pairs: list[tuple[str, str]]) -> Decision:
    unique = list(dict.fromkeys(pairs))
    return Decision(
        allowed=allowed,
        policy_ids=tuple(p for p, _ in unique),
        reasons=tuple(r for _, r in unique),
    )
