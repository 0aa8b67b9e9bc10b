"""Real services: the machine's PostgreSQL and Redis, moto's S3 server over HTTP, and a real
Celery worker process. Each session gets its own database, bucket and queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import free_port, scratch_database

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("CUTOUT_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("CUTOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MARKER = "cutout-test-run"


def _own_redis_database(url: str) -> str:
    """The URL of a Redis database this run has to itself: the highest-numbered one that is
    empty, claimed with a marker key, so queues, bindings and notification lists never land in
    the database a deployment uses, and the run can empty it when it ends. The given URL
    when none is free (or Redis is not up yet: the tests that need it then say so)."""
    import redis

    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    try:
        for n in range(15, 0, -1):
            client = redis.Redis.from_url(f"{base}/{n}")
            holder = client.get(MARKER)
            if holder is not None and not _alive(int(holder)):
                client.flushdb()  # a run that died before it could empty its database
            if client.set(MARKER, os.getpid(), nx=True):
                if client.dbsize() == 1:
                    return f"{base}/{n}"
                client.delete(MARKER)  # someone else's data: not ours to empty
    except redis.RedisError:
        pass
    return url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


REDIS_URL = _own_redis_database(REDIS_SERVER)


def pytest_sessionfinish(session):
    """Leave nothing behind in Redis: the run's own database is emptied."""
    import redis

    if REDIS_URL == REDIS_SERVER:
        return
    try:
        client = redis.Redis.from_url(REDIS_URL)
        if client.get(MARKER) == str(os.getpid()).encode():
            client.flushdb()
    except redis.RedisError:
        pass



def pytest_collection_modifyitems(items):
    """Everything under tests/integration needs the services: marked so, whatever the file says."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def pg_url():
    from cutout import db

    with scratch_database(PG_ADMIN_URL, "cutout_test") as url:
        db.upgrade(url)
        yield url


@pytest.fixture
def empty_db():
    """A database of its own, not migrated, dropped after the test."""
    with scratch_database(PG_ADMIN_URL, "cutout_own") as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class GatedProxy:
    """An HTTP proxy in front of moto that can hold the first GET of a chosen key until the
    test releases it. The fleet under test talks to S3 through it, so a test knows for sure
    when a worker is inside a task (it claimed the shot and is downloading it) instead of
    polling for a state that may pass unseen."""

    def __init__(self, upstream: str):
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlparse

        self.gates: dict[str, dict] = {}
        self._lock = threading.Lock()
        target = urlparse(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "GET":
                    proxy._hold(self.path)
                upstream_conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream_conn.request(self.command, self.path, body=body, headers=headers)
                response = upstream_conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", response.getheader("Content-Length", str(len(data)))
                                 if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream_conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self, key: str) -> dict:
        """Hold the next GET whose path ends with `key`: returns its gate, whose "reached"
        event is set when a request is held and whose "release" event lets it through."""
        import threading

        gate = {"reached": threading.Event(), "release": threading.Event()}
        with self._lock:
            self.gates[key] = gate
        return gate

    def _hold(self, path: str) -> None:
        with self._lock:
            key = next((k for k in self.gates if path.split("?")[0].endswith(k)), None)
            gate = self.gates.pop(key) if key else None
        if gate is not None:
            gate["reached"].set()
            gate["release"].wait(300)

    def stop(self):
        for gate in self.gates.values():
            gate["release"].set()
        self.server.shutdown()


@pytest.fixture(scope="session")
def s3_proxy(s3_endpoint):
    proxy = GatedProxy(s3_endpoint)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def bucket(s3_endpoint):
    from cutout.storage import S3Storage

    name = f"studio-{uuid.uuid4().hex[:8]}"
    storage = S3Storage(name, s3_endpoint)
    storage.client.create_bucket(Bucket=name)
    return storage


@pytest.fixture
def own_bucket(s3_endpoint):
    """A bucket of the test's own: nothing it puts there reaches another test's sweep."""
    from cutout.storage import S3Storage

    storage = S3Storage(f"own-{uuid.uuid4().hex[:8]}", s3_endpoint)
    storage.client.create_bucket(Bucket=storage.bucket)
    return storage


@pytest.fixture(scope="session")
def fleet_env(pg_url, bucket, s3_proxy, tiny_model):
    """The environment every process of the fleet under test gets; S3 through the gated proxy."""
    queue = f"cutout-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CUTOUT_DATABASE_URL": pg_url,
        "CUTOUT_BROKER_URL": REDIS_URL,
        "CUTOUT_QUEUE": queue,
        "CUTOUT_BUCKET": bucket.bucket,
        "CUTOUT_S3_ENDPOINT_URL": s3_proxy.url,
        "CUTOUT_MODEL": str(tiny_model),
        "CUTOUT_TF_THREADS": "1",
        "CUTOUT_MAX_PIXELS": "30000000",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    }
    yield env
    import redis

    redis.Redis.from_url(REDIS_URL).delete(queue)


def run_cli(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutout.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=True)


class Worker:
    def __init__(self, env, log_path: Path):
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", env["CUTOUT_QUEUE"],
             "--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO", "-n", f"test-{uuid.uuid4().hex[:6]}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, cwd=ROOT, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while "ready." not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        kids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                kids.append(int(stat.parent.name))
        return kids

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="session")
def worker(fleet_env, tmp_path_factory):
    w = Worker(fleet_env, tmp_path_factory.mktemp("worker") / "worker.log")
    yield w
    w.stop()


def wait_for(predicate, timeout=180, interval=0.3, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
