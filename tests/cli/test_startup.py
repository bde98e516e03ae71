"""Starting the ``guardian`` command loads no database layer and no policy engine: each
command imports the use-cases it calls, when it runs (``guardian verify`` starts cold
in a new process every time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFERRED = ("sqlalchemy", "sqlmodel", "cedarpy", "guardian.store", "guardian.app._context")


@pytest.mark.slow  # a fresh interpreter
def test_importing_the_cli_defers_the_database_and_the_policies() -> None:
    code = (
        "import json, sys\n"
        "import cli.main\n"
        f"print(json.dumps(sorted(m for m in {DEFERRED!r} if m in sys.modules)))\n"
    )
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, check=True
    )
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--help"],
        ["verify"],
        ["--verbose", "verify", "--help"],
        ["verify-batch", "--help"],
        ["label", "--json", "--help"],
        ["demo", "--bogus"],
    ],
)
def test_a_command_run_alone_reads_as_in_the_whole_app(argv: list[str]) -> None:
    """``run`` builds only the command it is given; its help, usage and errors are the
    whole app's."""
    from typer.testing import CliRunner

    from cli.main import _for_argv, app

    narrow = _for_argv(argv)
    assert narrow is not app and len(narrow.registered_commands) == 1
    runner = CliRunner()
    whole, alone = runner.invoke(app, argv), runner.invoke(narrow, argv)
    assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output)


@pytest.mark.parametrize("argv", [[], ["--help"], ["keys", "list"], ["verif", "x.wav"]])
def test_groups_help_and_unknown_commands_get_the_whole_app(argv: list[str]) -> None:
    from cli.main import _for_argv, app

    assert _for_argv(argv) is app
