"""Shared fixtures: a fresh Guardian home per test, and generated clips."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Connection, Engine

from guardian.app import Guardian, open_guardian
from guardian.audio import Audio, OutputFormat, encode_bytes, speechlike
from guardian.config import Settings, get_settings
from guardian.watermark import Detection, Payload

# Timing is measured by benchmarks, not by tests: no per-example deadline on a busy box.
hypothesis_settings.register_profile("guardian", deadline=None)
hypothesis_settings.load_profile("guardian")


@pytest.fixture(scope="session")
def tiny_watermark_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small, untrained model of the real architecture, made by the project itself.

    Provenance tests use it so that they do not depend on the shipped weights; its
    threshold is calibrated on unwatermarked audio, so it never claims a watermark.
    """
    from guardian.watermark import ArchConfig, EmbedConfig, WatermarkModel, calibrate, write_card
    from guardian.watermark._model import build_detector, build_generator, state_bytes

    torch.manual_seed(0)
    arch = ArchConfig(n_filters=4, dimension=8, lstm=1)
    gen, det = build_generator(arch), build_detector(arch)
    root = tmp_path_factory.mktemp("wm")
    weights = root / "tiny.pt"
    weights.write_bytes(state_bytes(gen, det))
    model = WatermarkModel("tiny-test", arch, EmbedConfig(), gen, det, weights_sha256="")
    negatives = [Audio(speechlike(3.0, seed=s)[:, None], 16000) for s in range(100, 106)]
    write_card(
        root / "tiny.yaml",
        model_id="tiny-test",
        arch=arch,
        embed=EmbedConfig(),
        weights_file=weights,
        threshold=calibrate(model, negatives),
    )
    return root / "tiny.yaml"


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_watermark_card: Path
) -> Iterator[None]:
    """No test may touch the real ~/.guardian or inherit a master key.

    Every consent subject of the tests is a synthetic voice (festival's slt and kal), so
    the deployment setting that lets synthetic consent through is on; the tests of the
    synthetic-speech check turn it off."""
    monkeypatch.setenv("GUARDIAN_WATERMARK_MODEL", str(tiny_watermark_card))
    monkeypatch.setenv("GUARDIAN_ALLOW_SYNTHETIC_CONSENT", "true")
    monkeypatch.setenv("GUARDIAN_HOME", str(tmp_path / "env-home"))
    monkeypatch.delenv("GUARDIAN_MASTER_KEY", raising=False)
    monkeypatch.delenv("GUARDIAN_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path, tiny_watermark_card: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=None,
        master_key=None,
        watermark_model=str(tiny_watermark_card),
    )


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


def wrong_bit_confidences(found: Detection, payload: Payload) -> list[float]:
    """The confidence of each bit ``found`` read wrong (the payload tests allow at most one,
    and never a clear one: the registry search flips the least confident bits)."""
    read = zip(found.bits, payload.bits(), found.bit_confidence, strict=True)
    return [conf for bit, want, conf in read if bit != want]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL for a fresh schema on the test PostgreSQL server, dropped afterwards.

    Skips without ``GUARDIAN_TEST_POSTGRES_URL``, and fails instead where
    ``GUARDIAN_REQUIRE_POSTGRES`` says the server must be there (``.ci/run``).
    """
    from sqlalchemy import create_engine, text

    base = os.environ.get("GUARDIAN_TEST_POSTGRES_URL")
    if base is None:
        if os.environ.get("GUARDIAN_REQUIRE_POSTGRES"):
            pytest.fail("GUARDIAN_REQUIRE_POSTGRES is set but no server URL was given")
        pytest.skip("set GUARDIAN_TEST_POSTGRES_URL to run against PostgreSQL (.ci/run does)")
    schema = f"t_{secrets.token_hex(4)}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def at_revision(engine: Engine, revision: str) -> Iterator[Connection]:
    """A connection in a transaction on ``engine``, its schema migrated up to
    ``revision`` only, as an older release left it; ``migrate`` then upgrades it."""
    from alembic import command

    from guardian.store.db import _alembic_config

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        yield conn


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Poll ``url``/readyz until the server started as ``proc`` answers 200 (3 min at
    most); fail with its log if it exits first."""
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.5)
