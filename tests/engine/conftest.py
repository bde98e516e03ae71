"""Engine fixtures: shipped synthetic enrollment samples (festival slt) and their texts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guardian.audio import Audio, read_audio
from guardian.engine import BaseVoice, EngineModelError

SLT = Path(__file__).resolve().parents[2] / "guardian" / "app" / "assets" / "consent" / "slt"


def _samples() -> list[tuple[Path, str]]:
    readme = SLT / "README.md"
    if not readme.exists():
        return []
    rows = re.findall(r"^\| `(sample-\d+\.flac)` \| (.+?) \|$", readme.read_text(), re.M)
    return [(SLT / name, text) for name, text in rows if (SLT / name).exists()]


@pytest.fixture(scope="session")
def enrollment() -> tuple[list[Audio], list[str]]:
    """Four shipped slt enrollment samples and what each one says."""
    pairs = _samples()[:4]
    if len(pairs) < 4:
        pytest.skip("the shipped slt enrollment samples are not present")
    return [read_audio(p) for p, _ in pairs], [t for _, t in pairs]


@pytest.fixture(scope="session")
def base_voice() -> BaseVoice:
    try:
        return BaseVoice()
    except EngineModelError as e:
        pytest.skip(str(e))
