"""Worker plumbing that needs no services: bounded metric labels, the shared metrics folder, thread shares."""


def test_failure_reasons_become_a_few_bounded_labels():
    from worker.metrics import failure_kind

    assert failure_kind("bad input: truncated PNG (no IEND chunk)") == "bad input"
    assert failure_kind("timed out after 120 s") == "timed out"
    assert failure_kind("internal error: ValueError('x')") == "internal error"
    assert failure_kind("shots/x_Front.png is no longer in the bucket") == "missing object"
    assert failure_kind("its worker died or passed the time limit on each of 3 attempts") == "its worker died"


def test_the_worker_s_metrics_folder_is_removed_when_its_process_exits(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import os, cutout.monitoring as m; m.prepare_multiprocess(9); "
            "folder = os.environ[m.MULTIPROC_ENV]; pid = os.fork()\n"
            "if pid == 0: sys.exit(0)  # runs the hooks it inherited\n"
            "os.waitpid(pid, 0); print(folder, os.path.isdir(folder))")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out = subprocess.run([sys.executable, "-c", "import sys\n" + code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == "True", "a child's exit leaves the shared folder alone"
    assert not os.path.exists(out[0]) and not list(tmp_path.iterdir()), "the owner's exit removes it"


def test_each_pool_child_takes_its_share_of_the_cores():
    from cutout.config import Settings
    from worker.app import child_threads

    assert child_threads(Settings(), processes=2, cores=2) == 1, "two children on two cores: one thread each"
    assert child_threads(Settings(), processes=2, cores=8) == 4
    assert child_threads(Settings(), processes=16, cores=8) == 1, "never below one"
    assert child_threads(Settings(tf_threads=3), processes=2, cores=2) == 3, "CUTOUT_TF_THREADS wins"
    assert child_threads(Settings(), processes=None, cores=8) == 0, "no pool (the demo, tests): TensorFlow decides"


def test_the_queue_exporter_says_the_broker_is_down_instead_of_failing_the_scrape(caplog):
    from prometheus_client import CollectorRegistry, generate_latest

    from cutout.config import Settings
    from cutout.monitoring import QueueDepth
    from tests.helpers import free_port

    registry = CollectorRegistry()
    registry.register(QueueDepth(Settings(broker_url=f"redis://127.0.0.1:{free_port()}/0"), ["cutout"]))
    page = generate_latest(registry).decode()
    assert "cutout_queue_broker_up 0.0" in page and 'cutout_queue_depth{queue="cutout"}' not in page
    assert any("queue depth not measured" in r.getMessage() and "\n" not in r.getMessage() for r in caplog.records)
