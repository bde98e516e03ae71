"""Verifying a clip, from the CLI, the use-case or the HTTP API, never loads torch or
opacus: the detector runs on ONNX Runtime and the payload reader on numpy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guardian.app import LabelRequest, label_file, open_guardian
from guardian.config import Settings
from tests.conftest import write_clip

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "opacus")
COLD_START = (*HEAVY, "numpy.ma")
"""What ``guardian verify`` leaves unloaded: ``numpy.ma`` costs a cold start about 50 ms,
and only ``np.median``-style helpers pull it in (``guardian._numeric`` stands in)."""
REPORT = "import sys; print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"

USE_CASE = f"""
import json, sys
from pathlib import Path
from guardian.app import open_guardian, verify_file
result = verify_file(open_guardian(), Path(sys.argv[1]))
print(json.dumps([result.verdict.value, result.watermark.detected]))
{REPORT.format(heavy=HEAVY)}
"""

HTTP = f"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from guardian.api import create_app
with TestClient(create_app()) as client:
    data = Path(sys.argv[1]).read_bytes()
    body = client.post("/v1/verify", files={{"file": ("x.wav", data, "audio/wav")}}).json()
print(json.dumps([body["verdict"], body["watermark"]["detected"]]))
{REPORT.format(heavy=HEAVY)}
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A home on the shipped model with one labeled clip (labeling does use torch)."""
    root = tmp_path_factory.mktemp("verify-home")
    g = open_guardian(
        Settings(home=root / "h", database_url=None, master_key=None, watermark_model="guardian")
    )
    out = root / "labeled.wav"
    source = write_clip(root / "in.wav", seconds=6.0)
    label_file(g, LabelRequest(source=source, output=out, purpose="test"))
    g.engine.dispose()
    return root / "h", out


def _run(code: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDIAN_")}
    env |= {"GUARDIAN_HOME": str(home), "GUARDIAN_WATERMARK_MODEL": "guardian"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=REPO
    )


@pytest.mark.slow  # a fresh interpreter per test
def test_the_verify_use_case_loads_no_torch(home: tuple[Path, Path]) -> None:
    root, clip = home
    done = _run(USE_CASE, root, str(clip))
    assert done.returncode == 0, done.stderr
    result, loaded = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert result == ["verified", True]
    assert loaded == []


@pytest.mark.slow  # a fresh interpreter per test
@pytest.mark.parametrize("labeled", [True, False], ids=["labeled", "unrelated"])
def test_guardian_verify_loads_no_torch(
    home: tuple[Path, Path], tmp_path: Path, labeled: bool
) -> None:
    """Unrelated audio takes the fingerprint search, whose loudness percentile once
    loaded ``numpy.ma``."""
    root, clip = home
    if not labeled:
        clip = write_clip(tmp_path / "other.wav", seconds=6.0, seed=7)
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: print(json.dumps(sorted(m for m in {COLD_START!r} "
        "if m in sys.modules))))\n"
        "sys.argv = ['guardian', 'verify', sys.argv[1], '--json']\n"
        "from cli.main import run\n"
        "run()\n"
    )
    done = _run(code, root, str(clip))
    *report, loaded = done.stdout.strip().splitlines()
    verdict = json.loads("\n".join(report))["verdict"]
    assert verdict == ("verified" if labeled else "not_found"), done.stderr
    assert json.loads(loaded) == []


@pytest.mark.slow  # a fresh interpreter per test
def test_the_http_verifier_loads_no_torch(home: tuple[Path, Path]) -> None:
    root, clip = home
    done = _run(HTTP, root, str(clip))
    assert done.returncode == 0, done.stderr
    result, loaded = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert result == ["verified", True]
    assert loaded == []
