"""The wheel ships one watermark model and stays small, and works outside the repository."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MAX_WHEEL_BYTES = 20 * 1024 * 1024

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (found,) = out.glob("guardian_voice-*.whl")
    return found


def test_the_wheel_holds_one_weights_file_one_detector_and_is_small(wheel: Path) -> None:
    """One torch weights file (embedding, training) and one ONNX detector (verify), the
    one the shipped card pins."""
    names = zipfile.ZipFile(wheel).namelist()
    weights = [
        n for n in names if n.startswith("guardian/watermark/weights/") and n.endswith(".pt")
    ]
    assert weights == ["guardian/watermark/weights/guardian-wm-v15.pt"]
    detectors = [
        n for n in names if n.startswith("guardian/watermark/weights/") and n.endswith(".onnx")
    ]
    pinned = yaml.safe_load((REPO / "guardian/watermark/weights/guardian-wm-v15.yaml").read_text())
    assert detectors == [f"guardian/watermark/weights/{pinned['detector_onnx']['file']}"]
    cards = [
        n for n in names if n.startswith("guardian/watermark/weights/") and n.endswith(".yaml")
    ]
    assert sorted(cards) == [
        "guardian/watermark/weights/guardian-wm-v15.recipe.yaml",
        "guardian/watermark/weights/guardian-wm-v15.yaml",
    ]
    assert wheel.stat().st_size <= MAX_WHEEL_BYTES


def test_the_wheel_carries_what_guardian_reads_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for source in sorted((REPO / "policies").glob("*")):
        if source.is_file() and source.suffix in {".cedar", ".cedarschema", ".yaml"}:
            assert f"guardian/policy/defaults/{source.name}" in names
    assert not any(n.startswith(("research/", "benchmarks/", "tests/", "docs/")) for n in names)
    migrations = [n for n in names if n.startswith("guardian/store/migrations/versions/")]
    assert len(migrations) == len(list((REPO / "guardian/store/migrations/versions").glob("*.py")))
    web = REPO / "guardian/api/web"
    for part in ("templates", "static"):
        for source in sorted((web / part).iterdir()):
            assert f"guardian/api/web/{part}/{source.name}" in names, source.name
