"""Schema migrations, and the whole label/verify/audit path on PostgreSQL."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from guardian.app import (
    LabelRequest,
    Verdict,
    init_keys,
    label_file,
    open_guardian,
    verify_audit,
    verify_file,
)
from guardian.config import Settings
from guardian.store import make_engine, migrate
from guardian.store.db import current_revision, head_revision
from tests.conftest import write_clip


def test_fresh_database_is_migrated_to_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    migrate(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"signing_key", "label", "fingerprint_hash", "audit_entry"} <= tables


def test_existing_home_upgrades_in_place_and_keeps_data(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h", database_url=None, master_key=None)
    g = open_guardian(settings)
    init_keys(g)
    g.engine.dispose()
    # Simulate a home from before versioning: drop the alembic stamp.
    raw = create_engine(settings.resolved_database_url)
    with raw.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    raw.dispose()
    again = open_guardian(settings)
    assert current_revision(again.engine) == head_revision()
    assert verify_audit(again)


def _postgres_url() -> str | None:
    url = os.environ.get("GUARDIAN_TEST_POSTGRES_URL")
    if url is None and os.environ.get("GUARDIAN_REQUIRE_POSTGRES"):
        pytest.fail("GUARDIAN_REQUIRE_POSTGRES is set but no server URL was given")
    return url


@pytest.mark.postgres
def test_label_verify_audit_on_postgresql(tmp_path: Path) -> None:
    base = _postgres_url()
    if base is None:
        pytest.skip("set GUARDIAN_TEST_POSTGRES_URL to run against PostgreSQL (.ci/run does)")
    schema = f"t_{secrets.token_hex(4)}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}?options=-csearch_path%3D{schema}"
    try:
        g = open_guardian(Settings(home=tmp_path / "h", database_url=url, master_key=None))
        assert g.engine.dialect.name == "postgresql"
        clip = write_clip(tmp_path / "c.wav")
        out = tmp_path / "c.labeled.flac"
        label_file(g, LabelRequest(source=clip, output=out, purpose="pg"))
        assert verify_file(g, out).verdict is Verdict.VERIFIED
        assert verify_audit(g)
        g.engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
