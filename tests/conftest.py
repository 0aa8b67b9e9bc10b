import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from tests.helpers import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("model"))
