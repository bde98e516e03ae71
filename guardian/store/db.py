"""Engine creation and in-place schema upgrades with Alembic."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event, inspect, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from guardian.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config() -> Config:
    """Alembic runs on the connection Guardian hands it; no URL goes through its config
    (whose parser would also choke on ``%`` in URLs)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use the umask, often
    0644); its WAL and shared-memory files copy the database file's mode."""
    try:
        database = make_url(url).database
    except (SQLAlchemyError, ValueError):
        return
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return
    except OSError as e:
        raise ConfigError(f"cannot create the database {path}: {e.strerror or e}") from e
    os.close(fd)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout."""
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        _private_sqlite_file(url)
    connect_args = {"timeout": 30} if is_sqlite else {}
    try:
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not is_sqlite)
    except (SQLAlchemyError, ImportError, ValueError) as e:
        raise ConfigError(f"cannot use database URL ({type(e).__name__}: {e})") from e
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            # Deleted rows (erased ciphertexts, challenge secrets) are zeroed, not left in
            # free pages: defence in depth on top of crypto-shredding.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

    return engine


_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(?:\"([^\"]+)\"|None)", re.MULTILINE)


def head_revision() -> str | None:
    """The newest revision in ``migrations/versions``: the one no other revision follows.

    Read from the files' ``revision``/``down_revision`` lines rather than through Alembic,
    whose import and script loading cost more than the rest of opening a home; the tests
    hold it equal to Alembic's own answer.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        for key, value in _REVISION.findall(path.read_text()):
            if value:
                (revisions if key == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory  # a merge (tuple parents) or no migrations

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision (None for an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision; a no-op when already there."""
    try:
        if current_revision(engine) == head_revision():
            return
        from alembic import command  # only when there is something to upgrade

        cfg = _alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as e:
        raise ConfigError(
            f"cannot open or upgrade the database: {e.__class__.__name__}: {e}"
        ) from e


def lock_writes(session: Session) -> None:
    """Take the database-wide write lock for the rest of ``session``'s transaction.

    Every write transaction (and every audit head update) starts with this, so writers in
    several processes take turns and the audit hash chain never forks. SQLite: ``BEGIN
    IMMEDIATE``, which must be the first statement of the transaction (it waits up to the
    busy timeout). PostgreSQL: ``SELECT ... FOR UPDATE`` of the one ``audit_lock`` row,
    held until commit or rollback.
    """
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("SELECT id FROM audit_lock WHERE id = 1 FOR UPDATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
