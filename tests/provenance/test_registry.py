"""The registry's fingerprint look-up against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from guardian.provenance import Registry
from guardian.provenance import fingerprint as fp
from guardian.store import (
    FingerprintClip,
    FingerprintPosting,
    Label,
    SigningKey,
    make_engine,
    migrate,
)
from guardian.store.models import KeyRole, KeyStatus
from tests.conftest import at_revision, postgres_schema
from tests.provenance.test_fingerprint import RATE, speech_like


def _plan(engine: Engine, explain: str) -> str:
    # the statement Registry.by_fingerprints sends
    stmt = select(FingerprintPosting.hash, FingerprintPosting.clip, FingerprintPosting.frame).where(
        col(FingerprintPosting.hash).in_([1, 2, 3])
    )
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        return " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {sql}"))


def test_the_hash_look_up_reads_the_postings_table_by_its_key_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    migrate(engine)
    plan = _plan(engine, "EXPLAIN QUERY PLAN")
    assert "SEARCH fingerprint_posting USING PRIMARY KEY (hash=?)" in plan
    with engine.connect() as conn:  # no rowid: the table is the (hash, clip, frame) B-tree
        (sql,) = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'fingerprint_posting'"
        ).one()
    assert "WITHOUT ROWID" in sql


def test_the_hash_look_up_is_an_index_only_scan_on_postgresql() -> None:
    with postgres_schema() as url:
        engine = make_engine(url)
        migrate(engine)
        with engine.begin() as conn:
            # rows without their clip: this private schema drops the foreign key (its
            # owner may; disabling the key's system triggers needs a superuser)
            (fk,) = conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid = 'fingerprint_posting'::regclass"
            ).one()
            conn.exec_driver_sql(f'ALTER TABLE fingerprint_posting DROP CONSTRAINT "{fk}"')
            conn.exec_driver_sql(
                "INSERT INTO fingerprint_posting (hash, clip, frame) "
                "SELECT g, mod(g, 97), mod(g, 600) FROM generate_series(1, 20000) g"
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) fingerprint_posting")  # as autovacuum does
        plan = _plan(engine, "EXPLAIN")
        engine.dispose()
    assert "Index Only Scan using fingerprint_posting_pkey" in plan


def _label(label_id: str, fingerprint: fp.Fingerprint) -> Label:
    return Label(
        id=label_id,
        manifest_id=f"urn:c2pa:{label_id}",
        content_sha256="0" * 64,
        fingerprint=fingerprint.to_bytes(),
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        duration_s=4.0,
        sample_rate=RATE,
        channels=1,
        format="wav",
        signer_kid="k1",
        assertion_json="{}",
    )


def _signer(session: Session) -> None:
    session.add(
        SigningKey(
            kid="k1",
            role=KeyRole.SIGNER,
            status=KeyStatus.ACTIVE,
            public_pem="-",
            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    )
    session.flush()  # before the labels that name it


def _noisy(seed: int) -> fp.Fingerprint:
    clean = speech_like(seed)
    noise = np.random.default_rng(seed + 100).standard_normal(len(clean)).astype(np.float32)
    return fp.compute(clean + 0.002 * noise, RATE)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def registry_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    sqlite = nullcontext(f"sqlite:///{tmp_path / 'g.db'}")
    with postgres_schema() if request.param == "postgresql" else sqlite as url:
        engine = make_engine(url)
        migrate(engine)
        yield engine
        engine.dispose()


def test_each_clip_is_found_by_a_noisy_copy_and_unrelated_audio_by_none(
    registry_engine: Engine,
) -> None:
    registry = Registry()
    with Session(registry_engine) as s:
        _signer(s)
        for seed in range(10):
            fingerprint = fp.compute(speech_like(seed), RATE)
            registry.add(s, _label(f"lbl_{seed}", fingerprint), fingerprint)
            s.commit()
        # a label too short for a fingerprint takes no clip number and no index rows
        registry.add(s, _label("lbl_short", fp.compute(speech_like(10), RATE)), None)
        s.commit()
        assert len(s.exec(select(FingerprintClip)).all()) == 10
        for seed in range(10):
            found = registry.by_fingerprint(s, _noisy(seed))
            assert found is not None and found.label.id == f"lbl_{seed}"
        assert registry.by_fingerprint(s, fp.compute(speech_like(10), RATE)) is None
        assert registry.by_fingerprint(s, fp.compute(speech_like(50), RATE)) is None


def test_a_registry_of_the_previous_schema_is_found_after_the_upgrade(tmp_path: Path) -> None:
    """Migration 0006 moves the index rows that look-ups still read (a quarter of the hash
    values, where 0005 stored half) from ``fingerprint_hash`` to the compact table."""
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with at_revision(engine, "0005") as conn:
        conn.execute(
            text(
                "INSERT INTO signing_key (kid, role, status, public_pem, created_at) "
                "VALUES ('k1', 'SIGNER', 'ACTIVE', '-', '2026-01-01')"
            )
        )
        expected = set()
        for seed in range(3):
            fingerprint = fp.compute(speech_like(seed), RATE)
            conn.execute(
                text(
                    "INSERT INTO label (id, manifest_id, content_sha256, fingerprint, "
                    "created_at, duration_s, sample_rate, channels, format, signer_kid, "
                    "assertion_json) VALUES (:id, :m, :c, :f, '2026-01-01', 4.0, 16000, 1, "
                    "'wav', 'k1', '{}')"
                ),
                {"id": f"lbl_{seed}", "m": f"urn:{seed}", "c": "0", "f": fingerprint.to_bytes()},
            )
            hashes = fingerprint.hashes.tolist()
            old = [  # the rows 0005 stored: every new hash whose mixed top bit is zero
                (h, f)
                for f, h in enumerate(hashes)
                if h and (f == 0 or h != hashes[f - 1]) and (h * 2654435761) % 2**32 < 2**31
            ]
            conn.execute(
                text("INSERT INTO fingerprint_hash (hash, label_id, frame) VALUES (:h, :l, :f)"),
                [{"h": h, "l": f"lbl_{seed}", "f": f} for h, f in old],
            )
            assert set(fingerprint.index_keys()) < set(old)
            expected |= {(h, seed + 1, f) for h, f in fingerprint.index_keys()}
    migrate(engine)
    registry = Registry()
    with Session(engine) as s:
        rows = s.exec(select(FingerprintPosting)).all()
        assert {(r.hash, r.clip, r.frame) for r in rows} == expected
        for seed in range(3):
            found = registry.by_fingerprint(s, _noisy(seed))
            assert found is not None and found.label.id == f"lbl_{seed}"
