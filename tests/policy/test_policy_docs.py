"""docs/policy.md stays true: its example runs, and it names every policy."""

from __future__ import annotations

import re

import pytest

from guardian.policy import PolicySet, default_policy_dir
from guardian.policy._load import RESERVED_IDS

DOC = default_policy_dir().parent / "docs" / "policy.md"
ENGINE_IDS = ["unknown-voice", "invalid-policy-set", "default-deny", "evaluation-error"]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_python_example_runs() -> None:
    (example,) = blocks("python")
    exec(compile(example, str(DOC), "exec"), {})


def test_cedar_example_matches_the_shipped_example_rule() -> None:
    (rule,) = blocks("cedar")
    shipped = (
        default_policy_dir() / "examples" / "no-political-purposes.cedar.example"
    ).read_text()
    assert rule.strip() in shipped


def test_engine_ids_are_the_reserved_ones() -> None:
    assert set(ENGINE_IDS) == RESERVED_IDS


@pytest.mark.parametrize(
    "policy_id",
    [p.policy_id for p in PolicySet.load(default_policy_dir()).policies] + ENGINE_IDS,
)
def test_every_policy_id_is_documented(policy_id: str) -> None:
    assert f"`{policy_id}`" in DOC.read_text()
