"""Schema migrations, and the whole label/verify/audit path on PostgreSQL."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from guardian.app import (
    EnrollRequest,
    LabelRequest,
    Verdict,
    create_challenge,
    enroll,
    forget,
    init_keys,
    label_file,
    open_guardian,
    require,
    show_consent,
    verify_audit,
    verify_file,
)
from guardian.app._consent_voice import spoken_consent
from guardian.config import Settings
from guardian.policy import Action, PolicyRequest
from guardian.store import make_engine, migrate
from guardian.store.db import current_revision, head_revision
from tests.app.conftest import NAME, ORG, SLT, slt_samples, write_wav
from tests.conftest import at_revision, postgres_schema, write_clip


def test_fresh_database_is_migrated_to_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    migrate(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"signing_key", "label", "fingerprint_posting", "audit_entry"} <= tables


def test_existing_home_upgrades_in_place_and_keeps_data(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h", database_url=None, master_key=None)
    settings.home.mkdir(parents=True)
    old = make_engine(settings.resolved_database_url)
    with at_revision(old, "0001") as conn:  # a home created by the first release
        conn.execute(
            text(
                "INSERT INTO audit_entry (seq, at, action, details_json, prev_hash,"
                " entry_hash, kid, signature) VALUES (1, 't', 'old', '{}', '', '',"
                " 'k', 's')"
            )
        )
    assert current_revision(old) == "0001"
    assert "wm_tag" not in {c["name"] for c in inspect(old).get_columns("label")}
    old.dispose()
    g = open_guardian(settings)
    assert current_revision(g.engine) == head_revision()
    assert "wm_tag" in {c["name"] for c in inspect(g.engine).get_columns("label")}
    with g.engine.connect() as conn:
        assert conn.execute(text("SELECT action FROM audit_entry")).scalar_one() == "old"


@pytest.mark.postgres
def test_label_verify_audit_on_postgresql(tmp_path: Path) -> None:
    with postgres_schema() as url:
        g = open_guardian(Settings(home=tmp_path / "h", database_url=url, master_key=None))
        assert g.engine.dialect.name == "postgresql"
        clip = write_clip(tmp_path / "c.wav")
        out = tmp_path / "c.labeled.flac"
        label_file(g, LabelRequest(source=clip, output=out, purpose="pg"))
        assert verify_file(g, out).verdict is Verdict.VERIFIED
        # Consent, vault, policy and erasure on the same server.
        challenge = create_challenge(g, name=NAME, organization=ORG)
        consent = write_wav(
            tmp_path / "consent.wav", spoken_consent(SLT, challenge.phrase, challenge.code)
        )
        request = EnrollRequest(
            challenge_id=challenge.challenge_id,
            consent=consent,
            samples=slt_samples(),
            purposes=("pg",),
        )
        voice = enroll(g, request).voice_id
        assert require(g, PolicyRequest(Action.SYNTHESIZE, voice, "pg", ORG))
        assert show_consent(g, voice).record.body["subject"]["name"] == NAME
        assert forget(g, voice).receipt.body["voices"] == [voice]
        assert verify_audit(g)
        g.engine.dispose()


def test_database_file_is_not_world_readable_under_a_permissive_umask(settings: Settings) -> None:
    old = os.umask(0o022)
    try:
        g = open_guardian(settings)
        init_keys(g)
        g.engine.dispose()
    finally:
        os.umask(old)
    for path in settings.home.glob("guardian.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_quick_revision_reads_agree_with_alembic(tmp_path: Path) -> None:
    """``migrate`` compares revisions without loading Alembic; its answers are Alembic's."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from guardian.store.db import _alembic_config

    assert head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    assert current_revision(engine) is None
    migrate(engine)
    with engine.connect() as conn:
        assert current_revision(engine) == MigrationContext.configure(conn).get_current_revision()
