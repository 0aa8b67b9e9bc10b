"""Monitoring on the real fleet: the producer's, a worker's and the queue exporter's
Prometheus ports show their figures moving while a garment goes through, and the worker's
JSON log names the shot on every line of its work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo import synthetic
from tests.helpers import free_port
from tests.integration.conftest import ROOT, Worker, wait_for
from tests.integration.test_fleet import all_done

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict:
    """{(sample name, frozenset of labels): value} from a /metrics page."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_move_and_json_logs_name_the_shot(fleet_env, bucket, pg_url, tmp_path):
    worker_port, producer_port, queue_port = free_port(), free_port(), free_port()
    env = {**fleet_env, "CUTOUT_QUEUE": f"cutout-monitoring-{uuid.uuid4().hex[:8]}", "CUTOUT_LOG_FORMAT": "json"}

    def start(args, port, log):
        return subprocess.Popen([sys.executable, "-m", "cutout.cli", *args], env={**env, "CUTOUT_METRICS_PORT": str(port)},
                                cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)

    producer_log = tmp_path / "producer.log"
    processes = [start(["produce", "--interval", "1"], producer_port, producer_log),
                 start(["queue-metrics"], queue_port, tmp_path / "queue.log")]
    worker = None
    try:
        before_producer = wait_for(lambda: _try_scrape(producer_port), timeout=60, what="the producer's metrics")
        wait_for(lambda: _try_scrape(queue_port), timeout=60, what="the queue's metrics")
        gid = synthetic.upload_garment(bucket, f"metrics-{uuid.uuid4().hex[:6]}", seed=12)
        # No worker yet: the three views wait on the broker, and the exporter sees them.
        wait_for(lambda: value(scrape(queue_port), "cutout_queue_depth", queue=env["CUTOUT_QUEUE"]) == 3,
                 timeout=60, what="three messages waiting")

        worker = Worker({**env, "CUTOUT_METRICS_PORT": str(worker_port)}, tmp_path / "worker.log")
        before_worker = scrape(worker_port)
        wait_for(lambda: all_done(pg_url, gid, 3), what="three shots done")
        worker_after = wait_for(lambda: (s := scrape(worker_port)) and
                                value(s, "cutout_shots_total", outcome="done") >= 3 and s, timeout=30,
                                what="the worker's counters")
        assert value(worker_after, "cutout_shots_total", outcome="done") - \
            value(before_worker, "cutout_shots_total", outcome="done") == 3
        assert value(worker_after, "cutout_stage_seconds_count", stage="first_pass") >= 3
        assert value(worker_after, "cutout_shot_seconds_count") >= 3
        assert any(name == "cutout_model_loaded" and v == 1 for (name, _), v in worker_after.items())
        assert value(scrape(queue_port), "cutout_queue_depth", queue=env["CUTOUT_QUEUE"]) == 0

        producer_after = scrape(producer_port)
        for name, labels in [("cutout_producer_registered_total", {"kind": "shot"}),
                             ("cutout_producer_enqueued_total", {"task": "segment"})]:
            moved = value(producer_after, name, **labels) - value(before_producer, name, **labels)
            assert moved >= 3, (name, moved)
        assert value(producer_after, "cutout_producer_sweep_seconds_count") >= 1
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        if worker is not None:
            worker.stop()

    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert lines, "the worker logs JSON"
    done = [line for line in lines if "confidence" in line["message"] and gid in line["message"]]
    assert len(done) == 3 and all(f"shot {line['shot_id']} " in line["message"] for line in done), done
    producer_lines = [json.loads(line) for line in producer_log.read_text().splitlines() if line.startswith("{")]
    assert any(line["message"].startswith("sweep:") for line in producer_lines)


def _try_scrape(port):
    try:
        return scrape(port)
    except OSError:
        time.sleep(0.5)
        return None
