"""Shared fixtures: a fresh Guardian home per test, and generated clips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from guardian.app import Guardian, open_guardian
from guardian.audio import Audio, OutputFormat, encode_bytes, speechlike
from guardian.config import Settings, get_settings


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test may touch the real ~/.guardian or inherit a master key."""
    monkeypatch.setenv("GUARDIAN_HOME", str(tmp_path / "env-home"))
    monkeypatch.delenv("GUARDIAN_MASTER_KEY", raising=False)
    monkeypatch.delenv("GUARDIAN_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=None, master_key=None)


@pytest.fixture
def g(settings: Settings) -> Iterator[Guardian]:
    guardian = open_guardian(settings)
    yield guardian
    guardian.engine.dispose()


def write_clip(
    path: Path,
    *,
    seconds: float = 4.0,
    seed: int = 1,
    rate: int = 16000,
    fmt: OutputFormat = OutputFormat.WAV,
) -> Path:
    samples = speechlike(seconds, sample_rate=rate, seed=seed)
    path.write_bytes(encode_bytes(Audio(samples[:, None], rate), fmt))
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.wav")


def tree_bytes(root: Path) -> bytes:
    """Every file under ``root`` concatenated, for plaintext scans."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def stereo(samples: np.ndarray) -> np.ndarray:
    return np.stack([samples, 0.8 * samples], axis=1)
