"""A non-editable install works: the wheel carries the default model, the migrations and the
demo's samples, and finds them as package data from anywhere."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy: setuptools writes build/ beside the sources it builds.
    source = tmp_path_factory.mktemp("source") / "cutout"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "demo-output", "runs",
                                                                "__pycache__", "*.egg-info", ".pytest_cache"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
                   check=True, capture_output=True, timeout=600)
    wheel, = dist.glob("cutout-*.whl")
    return wheel


def test_the_wheel_carries_model_migrations_and_samples(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("cutout/migrations/env.py", "cutout/migrations/script.py.mako",
                 "cutout/migrations/versions/0001_initial.py",
                 "cutout/segmentation/default_model/first/model.json",
                 "cutout/segmentation/default_model/first/model.weights.h5",
                 "cutout/segmentation/default_model/README.md",
                 "demo/samples/ccp/images/0007.jpg", "demo/samples/ccp/labels/0007.png",
                 "demo/samples/ccp/labels.txt", "demo/samples/ccp/NOTICE.md",
                 "producer/sweep.py", "worker/job.py", "trainer/training.py",
                 "cutout/migrations/versions/0002_reviews.py", "review/templates/queue.html",
                 "review/templates/garment.html", "review/static/style.css"):
        assert name in names, name
    assert not any(n.startswith(("tests/", "bench/", "migrations/")) for n in names)


def test_an_installed_copy_migrates_and_finds_its_model_from_elsewhere(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from cutout import config, db; "
            "db.upgrade(db.sqlite_url('cutout.db')); "
            "print(db.migrations_dir()); print(config.DEFAULT_MODEL_DIR); "
            "from cutout import bundle; print(bundle.version(config.DEFAULT_MODEL_DIR))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    migrations, model, version = out.stdout.split()
    assert migrations.startswith(str(site)) and model.startswith(str(site))
    from cutout import bundle, config

    assert version == bundle.version(config.DEFAULT_MODEL_DIR), "the same model as in the checkout"
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(tmp_path / "cutout.db").execute("SELECT name FROM sqlite_master")}
    assert {"shots", "segmentations", "model_versions", "alembic_version"} <= tables
