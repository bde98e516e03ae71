"""An in-process app on a fresh Guardian home, API keys and labeled clips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from guardian.api import create_app
from guardian.app import Guardian, LabelRequest, create_api_key, label_file
from guardian.config import Settings
from tests.app.conftest import attempt  # noqa: F401 (a fixture, shared with use-case tests)
from tests.conftest import write_clip


@pytest.fixture
def client(g: Guardian, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, guardian=g)) as c:
        yield c


@pytest.fixture
def labeled(g: Guardian, tmp_path: Path) -> Path:
    src = write_clip(tmp_path / "src.wav", seconds=4.0, seed=3)
    out = tmp_path / "labeled.wav"
    label_file(g, LabelRequest(source=src, output=out, purpose="test"))
    return out


def make_key(g: Guardian, *scopes: str, org: str = "Acme Studio") -> str:
    return create_api_key(g, name="test", organization=org, scopes=scopes).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
