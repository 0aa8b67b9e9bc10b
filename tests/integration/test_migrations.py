"""The hand-written migrations and the SQLAlchemy models describe the same schema."""

import uuid

import psycopg2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from cutout import db
from cutout.schema import Base
from tests.integration.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_db():
    name = f"cutout_mig_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_migrations_match_the_models_and_round_trip(empty_db):
    db.upgrade(empty_db)
    engine = create_engine(db.normalise_url(empty_db))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff
    from alembic import command

    command.downgrade(db.alembic_config(empty_db), "base")
    db.upgrade(empty_db)
    engine.dispose()
