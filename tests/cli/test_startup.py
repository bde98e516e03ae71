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
