"""Reading a policy directory: the schema, every ``*.cedar`` file, and their problems.

Each file is parsed on its own so that a parse or validation problem names the file it
is in. The policies are then merged into one Cedar policy set under engine ids of
the form ``<file>#<n>`` (file relative to the directory, ``n`` the policy's position
in it). Those ids are unique by construction, whatever the ``@id`` annotations say,
so a duplicate ``@id`` is a reported problem rather than a crash, and every
diagnostic Cedar returns maps back to exactly one file and policy.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import cedarpy
from cedarpy import pst

from guardian.errors import PolicyError
from guardian.policy._model import PolicyInfo

SCHEMA_FILE = "schema.cedarschema"
POLICY_GLOB = "*.cedar"

# Ids the engine itself puts in decisions; a policy file may not claim them.
UNKNOWN_VOICE = "unknown-voice"
DEFAULT_DENY = "default-deny"
INVALID_POLICY_SET = "invalid-policy-set"
EVALUATION_ERROR = "evaluation-error"
RESERVED_IDS = frozenset({UNKNOWN_VOICE, DEFAULT_DENY, INVALID_POLICY_SET, EVALUATION_ERROR})

# The validator prefixes each message with the positional id, which means nothing
# to an operator once the message already names the file and the @id.
_VALIDATOR_PREFIX = re.compile(r"^for policy `[^`]*`, ")


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy as loaded: its engine id plus what an operator sees."""

    engine_id: str
    info: PolicyInfo


@dataclass(frozen=True)
class Loaded:
    """Everything :class:`guardian.policy.PolicySet` needs from a directory."""

    directory: Path
    schema: cedarpy.Schema
    engine: cedarpy.PolicySet
    policies: tuple[LoadedPolicy, ...]
    problems: tuple[str, ...]

    @functools.cached_property
    def by_engine_id(self) -> dict[str, LoadedPolicy]:
        """The policies by engine id, in load order."""
        return {p.engine_id: p for p in self.policies}


def load_directory(directory: Path) -> Loaded:
    """Load the schema and every ``*.cedar`` file under ``directory``, recursively.

    Args:
        directory: The policy directory; its top level holds ``schema.cedarschema``.

    Returns:
        The parsed policies, ready to evaluate, with every problem found that does
        not stop evaluation (schema violations, annotations, duplicates, emptiness).

    Raises:
        PolicyError: the directory or schema is missing, or a file cannot be read or
            parsed. ``problems`` names each file and what is wrong with it.
    """
    if not directory.is_dir():
        raise PolicyError(f"policy directory {directory} does not exist")
    schema = _read_schema(directory / SCHEMA_FILE)
    parse_problems: list[str] = []
    problems: list[str] = []
    policies: list[LoadedPolicy] = []
    nodes: dict[str, pst.Template] = {}
    for path in sorted(directory.rglob(POLICY_GLOB), key=lambda p: p.as_posix()):
        name = path.relative_to(directory).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
            parsed = cedarpy.policies_to_pst(text)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            parse_problems.append(f"{name}: cannot parse: {e}")
            continue
        if parsed.templates:
            problems.append(f"{name}: templates (?principal/?resource) are not supported")
        problems.extend(_validate(name, text, parsed, schema))
        ordered = sorted(parsed.static_policies.items(), key=lambda kv: _position(kv[0]))
        for position, (_, template) in enumerate(ordered):
            engine_id = f"{name}#{position}"
            nodes[engine_id] = dataclasses.replace(template, id=engine_id)
            policies.append(LoadedPolicy(engine_id, _info(name, template)))
    if parse_problems:
        raise PolicyError(
            f"{len(parse_problems)} policy file(s) in {directory} cannot be parsed: "
            + "; ".join(parse_problems),
            tuple(parse_problems),
        )
    problems.extend(_annotation_problems(policies))
    if not policies:
        # An empty set would deny everything by Cedar's default; it is reported
        # anyway, because it is always a deployment mistake, never a policy.
        problems.append(f"{directory}: no policies (*.cedar files) found")
    return Loaded(directory, schema, _engine(nodes), tuple(policies), tuple(problems))


def _position(key: str) -> tuple[int, str]:
    """Order Cedar's positional ids (``policy0``, ``policy1``, …, ``policy10``) by number."""
    digits = key.removeprefix("policy")
    return (int(digits), key) if digits.isdigit() else (-1, key)


def _read_schema(path: Path) -> cedarpy.Schema:
    try:
        return cedarpy.Schema.from_str(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        problem = f"{path.name}: cannot read the policy schema: {e}"
        raise PolicyError(problem, (problem,)) from e


def _engine(nodes: dict[str, pst.Template]) -> cedarpy.PolicySet:
    tree = pst.PolicySet(
        templates=pst.FrozenMap(), static_policies=pst.FrozenMap(nodes), template_links=()
    )
    try:
        return cedarpy.PolicySet.from_pst(tree)
    except ValueError as e:
        raise PolicyError(f"the policies cannot be combined into one set: {e}") from e


def _info(name: str, template: pst.Template) -> PolicyInfo:
    return PolicyInfo(
        policy_id=template.annotations.get("id", ""),
        reason=template.annotations.get("reason", ""),
        effect=template.effect,
        file=name,
    )


def _validate(name: str, text: str, parsed: pst.PolicySet, schema: cedarpy.Schema) -> list[str]:
    """Schema violations in one file, each naming the file and the policy's @id."""
    try:
        result = cedarpy.validate_policies(text, schema)
    except ValueError as e:
        return [f"{name}: cannot validate against the schema: {e}"]
    problems = []
    for error in result.errors:
        template = parsed.static_policies.get(error.policy_id) or parsed.templates.get(
            error.policy_id
        )
        label = template.annotations.get("id", error.policy_id) if template else "?"
        message = _VALIDATOR_PREFIX.sub("", error.error)
        problems.append(f"{name}: policy {label or error.policy_id}: {message}")
    return problems


def _annotation_problems(policies: list[LoadedPolicy]) -> list[str]:
    """Missing or empty @id/@reason, reserved ids and duplicate ids."""
    problems = []
    seen: dict[str, str] = {}
    for policy in policies:
        info = policy.info
        where = f"{info.file}: policy #{policy.engine_id.rsplit('#', 1)[1]}"
        if not info.policy_id:
            problems.append(f'{where}: missing @id("...") annotation')
        if not info.reason:
            problems.append(f'{where}: missing @reason("...") annotation')
        if info.policy_id in RESERVED_IDS:
            problems.append(f"{where}: @id {info.policy_id!r} is reserved for the engine")
        elif info.policy_id in seen:
            problems.append(
                f"{where}: duplicate @id {info.policy_id!r} (also in {seen[info.policy_id]})"
            )
        elif info.policy_id:
            seen[info.policy_id] = info.file
    return problems
