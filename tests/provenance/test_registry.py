"""The registry's look-up by fingerprint hash, as each database plans it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import col, select

from guardian.store import FingerprintHash, make_engine, migrate
from tests.conftest import postgres_schema


def _plan(engine: Engine, explain: str) -> str:
    # the statement Registry.by_fingerprints sends
    stmt = select(FingerprintHash.hash, FingerprintHash.label_id, FingerprintHash.frame).where(
        col(FingerprintHash.hash).in_([1, 2, 3])
    )
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        return " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {sql}"))


def test_the_hash_look_up_reads_the_postings_index_alone(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    migrate(engine)
    plan = _plan(engine, "EXPLAIN QUERY PLAN")
    assert "USING COVERING INDEX ix_fingerprint_hash_postings" in plan


def test_the_hash_look_up_is_an_index_only_scan_on_postgresql() -> None:
    with postgres_schema() as url:
        engine = make_engine(url)
        migrate(engine)
        with engine.begin() as conn:
            # rows without their label: this private schema drops the foreign key (its
            # owner may; disabling the key's system triggers needs a superuser)
            (fk,) = conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid = 'fingerprint_hash'::regclass"
            ).one()
            conn.exec_driver_sql(f'ALTER TABLE fingerprint_hash DROP CONSTRAINT "{fk}"')
            conn.exec_driver_sql(
                "INSERT INTO fingerprint_hash (hash, label_id, frame) "
                "SELECT g, 'lbl_' || mod(g, 97), mod(g, 600) FROM generate_series(1, 20000) g"
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) fingerprint_hash")  # as autovacuum does
        plan = _plan(engine, "EXPLAIN")
        engine.dispose()
    assert "Index Only Scan using ix_fingerprint_hash_postings" in plan
