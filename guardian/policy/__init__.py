"""Policy-as-code: Cedar policies in ``policies/`` decide who may use which voice.

Every use of a cloned voice (synthesis, DP training) is one Cedar request: the
requester is the principal, the voice with its consent facts is the resource, and the
purpose, time and requested privacy budget are the context. The shipped policies
permit consented use and forbid each way a use can fall outside the consent; a
deployment adds its own ``*.cedar`` rules under ``policies/local/`` without code
changes. Each :class:`Decision` names the policies that determined it and why, and
the caller writes it to the audit log. ``docs/policy.md`` describes the model.

Example:
    >>> policies = PolicySet.load(default_policy_dir())
    >>> policies.problems()
    []
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from guardian.errors import PolicyError
from guardian.policy._model import (
    Action,
    ConsentFacts,
    Decision,
    LabelPolicyRequest,
    PolicyInfo,
    PolicyRequest,
)

if TYPE_CHECKING:  # cedarpy loads with the first policy set, not with the enums above
    from guardian.policy._load import Loaded


def default_policy_dir() -> Path:
    """The default policies and retention rules, shipped as package data.

    They are a copy of the repository's top-level ``policies/``, its editable source (a
    test keeps the two identical). A deployment with rules of its own points
    ``GUARDIAN_POLICY_DIR`` at a copy of ``policies/`` with them in its ``local/`` folder.
    """
    return Path(__file__).with_name("defaults")


class PolicySet:
    """Schema-validated Cedar policies loaded from a directory.

    Build one with :meth:`load`. It is immutable and safe to share between threads.
    """

    def __init__(self, loaded: Loaded) -> None:
        """Wrap an already-loaded directory; use :meth:`load` instead."""
        self._loaded = loaded

    @classmethod
    def load(cls, directory: Path) -> PolicySet:
        """Load ``schema.cedarschema`` and every ``*.cedar`` file under ``directory``.

        Files are found recursively, so a deployment's own rules in ``local/`` load
        with the shipped ones. Other suffixes (``*.cedar.example``) are ignored.

        Args:
            directory: The policy directory, e.g. :func:`default_policy_dir`.

        Returns:
            The policy set. It may still have :meth:`problems`; until they are fixed
            it denies every request.

        Raises:
            PolicyError: the directory or schema is missing, or a file cannot be read
                or parsed; the message and ``problems`` name each file.
        """
        from guardian.policy._load import load_directory

        return cls(load_directory(Path(directory)))

    @property
    def directory(self) -> Path:
        """The directory the policies were loaded from."""
        return self._loaded.directory

    @property
    def policies(self) -> tuple[PolicyInfo, ...]:
        """Every loaded policy with its ``@id``, ``@reason``, effect and file, in load order."""
        return tuple(p.info for p in self._loaded.policies)

    def problems(self) -> list[str]:
        """Everything wrong with the set, one line each, naming the file; empty when valid.

        Reports schema violations (Cedar's validator), policies without ``@id`` or
        ``@reason``, duplicate or reserved ids, templates, and an empty set. Parse
        errors stop :meth:`load` itself; :func:`check_policies` reports those too.
        """
        return list(self._loaded.problems)

    def decide(
        self, request: PolicyRequest, facts: ConsentFacts | None, *, now: dt.datetime
    ) -> Decision:
        """Decide on ``request``; ``facts`` is None for an unknown voice (always denied).

        Never raises for a policy reason: an unknown voice, a set with problems or an
        evaluation error all come back as a denial naming its cause.

        Args:
            request: The use to decide on.
            facts: The voice's consent facts from the store, or None when unknown.
            now: The time of the use; naive datetimes are UTC.

        Returns:
            The decision, naming at least one policy id with a reason for each.
        """
        from guardian.policy._cedar import evaluate

        return evaluate(self._loaded, request, facts, now=now)

    def decide_label(self, request: LabelPolicyRequest, *, now: dt.datetime) -> Decision:
        """Decide on labeling imported audio (Cedar action ``label``); never raises for a
        policy reason, like :meth:`decide`."""
        from guardian.policy._cedar import evaluate_label

        return evaluate_label(self._loaded, request, now=now)


def check_policies(directory: Path) -> list[str]:
    """Every problem with the policy directory, parse errors included; never raises.

    This is the non-raising form of :meth:`PolicySet.load` followed by
    :meth:`PolicySet.problems`, for ``guardian policy check``.

    Args:
        directory: The policy directory to check.

    Returns:
        One line per problem, naming the file; empty when the policies are valid.
    """
    try:
        return PolicySet.load(directory).problems()
    except PolicyError as e:
        return list(e.problems) or [e.diagnostics()]


__all__ = [
    "Action",
    "ConsentFacts",
    "Decision",
    "LabelPolicyRequest",
    "PolicyInfo",
    "PolicyRequest",
    "PolicySet",
    "check_policies",
    "default_policy_dir",
]
