import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from tests.helpers import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("model"))


@pytest.fixture
def sqlite_url(tmp_path):
    """A migrated SQLite database: the embedded demo's stand-in for PostgreSQL."""
    from cutout import db

    url = db.sqlite_url(tmp_path / "cutout.db")
    db.upgrade(url)
    return url
