"""Operational errors end a command with one line naming the problem and the setting; a bug
keeps its traceback, and --debug shows it for both."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutout.errors import describe
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def run(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CUTOUT_")}
    return subprocess.run([sys.executable, "-m", "cutout.cli", *args], env={**clean, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, env, words", [
    (["report", "needs-cutout"], {}, "set CUTOUT_DATABASE_URL"),
    (["report", "needs-cutout"], {"CUTOUT_DATABASE_URL": "postgresql://u:secret@127.0.0.1:{port}/x"},
     "check CUTOUT_DATABASE_URL"),
    (["db", "upgrade"], {"CUTOUT_DATABASE_URL": "postgresql://u:secret@127.0.0.1:{port}/x"}, "check CUTOUT_DATABASE_URL"),
    (["users", "list"], {"CUTOUT_DATABASE_URL": "postgresql://u:secret@127.0.0.1:{port}/x"}, "check CUTOUT_DATABASE_URL"),
])
def test_an_unreachable_or_missing_service_is_one_readable_line(args, env, words):
    port = str(free_port())  # nothing listens there
    out = run(*args, **{k: v.format(port=port) for k, v in env.items()})
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) <= 2 and words in lines[0] and "Traceback" not in out.stderr, out.stderr
    assert "secret" not in out.stderr, "passwords never reach the terminal"
    debug = run("--debug", *args, **{k: v.format(port=port) for k, v in env.items()})
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_describe_names_the_setting_for_each_service():
    import botocore.exceptions
    import kombu.exceptions

    from cutout.config import ConfigError

    assert "CUTOUT_S3_ENDPOINT_URL" in describe(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"))
    assert "AWS_ACCESS_KEY_ID" in describe(botocore.exceptions.NoCredentialsError())
    missing = botocore.exceptions.ClientError({"Error": {"Code": "NoSuchBucket"}}, "ListObjectsV2")
    assert "CUTOUT_BUCKET" in describe(missing)
    assert "CUTOUT_BROKER_URL" in describe(kombu.exceptions.OperationalError("Connection refused"))
    assert describe(ConfigError("CUTOUT_X=1 is wrong")).startswith("configuration:")
    assert describe(ZeroDivisionError()) is None, "a bug keeps its traceback"


def test_tensorflow_starts_without_its_native_noise_unless_debugging():
    code = "from cutout.segmentation import runtime; print(runtime.configure())"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CUTOUT_", "TF_CPP"))}
    quiet = subprocess.run([sys.executable, "-c", code], env=clean, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stdout.strip() in ("cpu", "gpu")
    native = [line for line in quiet.stderr.splitlines() if line[:5] in ("I0000", "E0000", "W0000") or "absl" in line]
    assert native == [], native
    loud = subprocess.run([sys.executable, "-c", code], env={**clean, "CUTOUT_DEBUG": "1"}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0  # (what TensorFlow prints then depends on the machine)


def test_a_wrong_data_folder_is_said_before_tensorflow_starts(tmp_path):
    out = run("evaluate", str(tmp_path))
    assert out.returncode == 1 and "needs images/ and masks/ or cutouts/" in out.stderr
    assert "TensorFlow" not in out.stderr, "the folder is checked first"


def test_a_misspelled_sqlite_file_is_named_not_created(tmp_path):
    out = run("report", "needs-cutout", CUTOUT_DATABASE_URL=f"sqlite:///{tmp_path}/typo.db")
    assert out.returncode == 1 and "typo.db, which does not exist" in out.stderr and "PostgreSQL" not in out.stderr
    assert not (tmp_path / "typo.db").exists(), "nothing was created"
