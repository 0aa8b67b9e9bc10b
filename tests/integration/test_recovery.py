"""Recovery on real services: a whole worker (main process and children, as the OOM killer
or a lost node leaves it) dies mid-shot, and PostgreSQL goes away for longer than any retry
ladder. In both cases every shot ends done, exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from cutout import db, imageio, naming
from demo import synthetic
from tests.helpers import assert_standings_current, free_port
from tests.integration.conftest import Worker, run_cli, wait_for
from tests.integration.test_fleet import all_done, segmentations_of, shots_of

pytestmark = pytest.mark.integration
SOFT_LIMIT = 30  # a claim's lease is then 30 + 60 + 30 = 120 s, as the worker computes it


@pytest.fixture
def own_queue(fleet_env):
    """The fleet's environment on a queue of its own: only the workers this test starts take it."""
    import redis

    env = {**fleet_env, "CUTOUT_QUEUE": f"cutout-recovery-{uuid.uuid4().hex[:8]}",
           "CUTOUT_TASK_SOFT_TIME_LIMIT": str(SOFT_LIMIT), "CUTOUT_RETRY_CAP_SECONDS": "2"}
    yield env
    redis.Redis.from_url(env["CUTOUT_BROKER_URL"]).delete(env["CUTOUT_QUEUE"])


def test_a_dead_worker_node_s_shot_is_done_once_its_lease_ran_out(own_queue, bucket, s3_proxy, pg_url, tmp_path):
    gid = synthetic.garment_id(f"node-{uuid.uuid4().hex[:6]}")
    key = naming.shot_key(gid, "Front")
    bucket.put(key, imageio.encode_png(synthetic.studio_shot(22, "Front")[0]), "image/png")
    first = Worker(own_queue, tmp_path / "first.log")
    gate = s3_proxy.hold(key)
    try:
        run_cli(own_queue, "produce", "--once")
        assert gate["reached"].wait(180), "the worker never started the shot"
        os.killpg(first.proc.pid, signal.SIGKILL)  # main process and children at once
        first.proc.wait(30)
        killed = time.monotonic()
    finally:
        gate["release"].set()
    assert shots_of(pg_url, gid)["Front"][0] == "processing"

    second = Worker(own_queue, tmp_path / "second.log")
    try:
        def recovered():
            run_cli(own_queue, "produce", "--once")  # what the producer does every CUTOUT_POLL_SECONDS
            return all_done(pg_url, gid, 1)

        shots = wait_for(recovered, timeout=240, interval=5, what="the dead worker's shot done")
        took = time.monotonic() - killed
    finally:
        second.stop()
    status, reason, _, attempts = shots["Front"]
    assert status == "done", reason
    assert attempts == 2 and len(segmentations_of(pg_url, gid)) == 1
    lease = SOFT_LIMIT + 90
    assert took >= lease - 15, "never sent again while the first claim's lease could still be running it"
    assert took <= lease + 60, "back within the lease and one sweep, as docs/operations.md documents"
    print(f"recovered {took:.0f} s after the kill (lease {lease} s)")


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (initdb in a temporary folder, a free port), so
    that stopping it for the outage never touches the machine's. Run as `postgres` under root
    (the server refuses root), as the current user otherwise."""

    def __init__(self, folder):
        bindir = _bindir()
        self.ctl = os.path.join(bindir, "pg_ctl")
        self.data = os.path.join(folder, "data")
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        os.makedirs(folder, exist_ok=True)
        if self.as_user:
            shutil.chown(folder, "postgres")
        self._run(os.path.join(bindir, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.options = f"-p {self.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args):
        subprocess.run([*self.as_user, *args], check=True, timeout=120, capture_output=True)

    def start(self):
        self._run(self.ctl, "-D", self.data, "-o", self.options, "-w", "-l", self.data + ".log", "start")

    def stop(self):
        self._run(self.ctl, "-D", self.data, "-m", "fast", "-w", "stop")


def _bindir() -> str:
    found = shutil.which("initdb") and os.path.dirname(shutil.which("initdb"))
    if not found and os.path.isdir("/usr/lib/postgresql"):
        versions = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: int(v) if v.isdigit() else 0)
        found = versions and f"/usr/lib/postgresql/{versions[-1]}/bin"
    if not found or not os.path.exists(os.path.join(found, "initdb")):
        pytest.skip("needs PostgreSQL's initdb and pg_ctl to run a cluster of the test's own")
    return found


@pytest.fixture
def private_pg():
    import tempfile

    # Not under pytest's temporary folder: that is the test user's alone, and the server runs as postgres.
    folder = tempfile.mkdtemp(prefix="cutout-pg-")
    cluster = PrivatePostgres(folder)
    cluster.start()
    db.upgrade(cluster.url)
    yield cluster
    db.dispose_all()
    try:
        cluster.stop()
    except subprocess.CalledProcessError:
        pass  # already stopped by a failed test
    shutil.rmtree(folder, ignore_errors=True)


def test_a_database_outage_longer_than_any_retry_ladder_strands_nothing(own_queue, bucket, s3_proxy, private_pg,
                                                                         tmp_path):
    own_queue = {**own_queue, "CUTOUT_DATABASE_URL": private_pg.url}
    pg_url = private_pg.url
    gids = [synthetic.garment_id(f"outage-{i}-{uuid.uuid4().hex[:6]}") for i in range(4)]
    for i, gid in enumerate(gids):
        bucket.put(naming.shot_key(gid, "Front"), imageio.encode_png(synthetic.studio_shot(40 + i, "Front")[0]),
                   "image/png")
    worker = Worker(own_queue, tmp_path / "worker.log")
    gate = s3_proxy.hold(naming.shot_key(gids[0], "Front"))
    try:
        run_cli(own_queue, "produce", "--once")
        assert gate["reached"].wait(180), "the worker never started the first shot"
        private_pg.stop()  # the first shot is claimed and in flight; three wait in the queue
        try:
            gate["release"].set()
            # Retries every <= 2 s here: 40 s is twenty of them, three times the old ladder of six.
            time.sleep(40)
        finally:
            private_pg.start()
        db.dispose_all()  # this process's pooled connections died with the server
        done = wait_for(lambda: all(all_done(pg_url, g, 1) for g in gids), timeout=180, interval=1,
                        what="every shot done after the outage")
    finally:
        gate["release"].set()
        worker.stop()
    assert done
    log = worker.log()
    assert "database unreachable" in log and "retry" in log, "the outage was met by retries, not by luck"
    for gid in gids:
        status, reason, _, _ = shots_of(pg_url, gid)["Front"]
        assert status == "done", reason
        assert len(segmentations_of(pg_url, gid)) == 1
    assert_standings_current(pg_url)
