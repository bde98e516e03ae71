"""``guardian.app`` imports each public name from its module on first use: the names
that mypy sees (the ``TYPE_CHECKING`` imports) and the ones the package hands out at run
time must be the same objects, and every exported name must resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import guardian.app


def _typed_imports() -> dict[str, tuple[str, str]]:
    """Public name -> (module, name in it), from the package's ``TYPE_CHECKING`` block."""
    tree = ast.parse(Path(guardian.app.__file__ or "").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If))
    return {
        alias.asname or alias.name: (node.module or "", alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_the_typed_imports_are_the_exports() -> None:
    assert sorted(_typed_imports()) == sorted(guardian.app.__all__)


def test_every_export_is_the_object_of_its_module() -> None:
    for name, (module, attr) in _typed_imports().items():
        assert getattr(guardian.app, name) is getattr(importlib.import_module(module), attr)


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(guardian.app, "no_such_use_case")
