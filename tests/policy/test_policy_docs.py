"""docs/policy.md stays true: its example runs, and it names every policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guardian.policy import PolicySet, default_policy_dir
from guardian.policy._load import RESERVED_IDS

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "policy.md"
ENGINE_IDS = ["unknown-voice", "invalid-policy-set", "default-deny", "evaluation-error"]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_python_example_runs() -> None:
    (example,) = blocks("python")
    exec(compile(example, str(DOC), "exec"), {})


def test_cedar_example_matches_the_shipped_example_rule() -> None:
    (rule,) = blocks("cedar")
    shipped = (REPO / "policies" / "examples" / "no-political-purposes.cedar.example").read_text()
    assert rule.strip() in shipped


def test_engine_ids_are_the_reserved_ones() -> None:
    assert set(ENGINE_IDS) == RESERVED_IDS


@pytest.mark.parametrize(
    "policy_id",
    [p.policy_id for p in PolicySet.load(default_policy_dir()).policies] + ENGINE_IDS,
)
def test_every_policy_id_is_documented(policy_id: str) -> None:
    assert f"`{policy_id}`" in DOC.read_text()


def test_the_packaged_defaults_are_the_repository_policies() -> None:
    """``policies/`` is the editable source; the package ships a copy of its rules."""
    source = REPO / "policies"
    shipped = sorted(p.name for p in default_policy_dir().iterdir())
    expected = sorted(
        p.name
        for p in source.iterdir()
        if p.is_file() and p.suffix in {".cedar", ".cedarschema", ".yaml"}
    )
    assert shipped == expected
    for name in shipped:
        assert (default_policy_dir() / name).read_bytes() == (source / name).read_bytes(), (
            f"guardian/policy/defaults/{name} differs from policies/{name}: copy it over"
        )
