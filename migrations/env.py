"""Alembic environment. `cutout db upgrade` (cutout.db.upgrade) passes in its connection,
which holds the migration lock; `alembic` run by hand connects with sqlalchemy.url.

target_metadata is the models' metadata, so `alembic revision --autogenerate` drafts a
migration from a change to cutout/schema.py, and `alembic check` (run by the tests) finds
any drift between the two.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

from cutout.config import Settings
from cutout.db import normalise_url
from cutout.schema import Base

config = context.config
target_metadata = Base.metadata
if not config.get_main_option("sqlalchemy.url"):
    # `alembic` by hand, with alembic.ini: the database is CUTOUT_DATABASE_URL, as everywhere.
    config.set_main_option("sqlalchemy.url", normalise_url(Settings.from_env().require("database_url").database_url))


def _configure(**kwargs):
    # compare_server_default: a changed default is drift too. render_as_batch lets the same
    # migrations run on SQLite (the embedded demo).
    context.configure(target_metadata=target_metadata, compare_type=True, compare_server_default=True, **kwargs)


def run_migrations_offline():
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection):
    applied = []  # (step, heads after it) for each revision run now
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite",
               on_version_apply=lambda ctx, step, heads, run_args: applied.append((step, set(heads))))
    with context.begin_transaction():
        context.run_migrations()
        _refresh_ranking(connection, applied)


def _refresh_ranking(connection, applied):
    """Recompute every garment's standing (cutout.ranking.refresh_all) once the schema is at head,
    when a revision applied now sets REFRESHES_RANKING (it changed what the ranking stores).

    Here and not in the revision: the ranking code writes the head's columns, so a revision
    that called it would fail as soon as a later revision added one (0003 did, on any database
    with history). Short of head (`upgrade 0006` with a later revision on disk) the standing
    is left for the upgrade that reaches it."""
    upgraded = [step for step, _ in applied if step.is_upgrade]
    if not any(getattr(step.up_revision.module, "REFRESHES_RANKING", False) for step in upgraded):
        return
    if applied[-1][1] != set(context.script.get_heads()):
        return
    from sqlalchemy.orm import Session

    from cutout.ranking import refresh_all

    refresh_all(Session(bind=connection))


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
