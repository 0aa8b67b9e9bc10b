"""One engine per process, short-lived sessions, and the dialect-aware upsert.

Engines are created lazily, so a Celery worker makes its own in each child after fork.
PostgreSQL in production; SQLite only for the embedded demo.
"""

from __future__ import annotations

import os
import zlib
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from cutout.config import ConfigError

_engines: dict[tuple[int, str], object] = {}
# Any fixed 64-bit number that no other program on the database uses as an advisory lock key.
MIGRATION_LOCK = zlib.crc32(b"cutout:migrations")


def normalise_url(url: str) -> str:
    """postgresql:// means psycopg2 here (SQLAlchemy 2.1 would otherwise pick psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def engine_for(url: str):
    if not url:
        raise ConfigError("not configured: set CUTOUT_DATABASE_URL")
    url = normalise_url(url)
    # Keyed by pid: an engine inherited through fork must never be used by the child.
    key = (os.getpid(), url)
    if key not in _engines:
        if url.startswith("sqlite"):
            _require_sqlite_file(url)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
        _engines[key] = engine
    return _engines[key]


def _require_sqlite_file(url: str) -> None:
    """SQLite would quietly create a misspelled file, empty, and the first query would then fail
    as if the database were not migrated. Only `cutout db upgrade` (and the demo) create one."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:" and not Path(database).exists():
        raise ConfigError(f"CUTOUT_DATABASE_URL names the SQLite file {database}, which does not exist: "
                          "check the path (`cutout db upgrade` creates and migrates a new one)")


@contextmanager
def session_scope(url: str):
    """A transaction: commit on success, roll back on error, always close."""
    session = sessionmaker(engine_for(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def insert(session: Session, table):
    """INSERT that supports .on_conflict_do_nothing/update on PostgreSQL and SQLite alike."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def migrations_dir() -> Path:
    """The Alembic scripts: top-level migrations/ in the repository, package data when installed."""
    return Path(str(files("cutout.migrations")))


def alembic_config(url: str, connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection  # migrations/env.py runs on this connection
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to `revision`. On PostgreSQL, under an advisory lock held for the whole
    migration, so that two `cutout db upgrade` started at once (two migrate containers)
    run one after the other instead of racing; the second then finds nothing to do."""
    from alembic import command

    engine = create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
                connection.commit()
            try:
                command.upgrade(alembic_config(url, connection), revision)
                connection.commit()
            finally:
                if connection.dialect.name == "postgresql":
                    connection.rollback()
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                    connection.commit()
    finally:
        engine.dispose()


def dispose_all() -> None:
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"
