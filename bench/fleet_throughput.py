"""The fleet against its own workers: N studio shots (1152x1728, three views a garment) go
through the real services (PostgreSQL, Redis, moto's S3 over HTTP, a real `celery -A worker
worker` with W processes and its default threads: each child its share of the cores), and
the fleet's shots per second is compared with W / (one shot's time in this process, the same
job on the same services, one TensorFlow thread), measured in the same run. A ratio near 1 means nothing in the task path
(connections, model checks, uploads) holds the workers back.

Then the latency a studio sees: shots uploaded one by one at --load of the rate the fleet just
achieved, found by the real producer sweeping every --poll seconds (as often as a bucket's
notifications would announce them), and each shot's time from its upload to its recorded
result; the median and the 95th percentile are printed.

    python bench/fleet_throughput.py [--shots 200] [--workers 2] [--latency-shots 60] [--load 0.7] [--poll 1]
                                     [--admin-url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from cutout import db, imageio, naming  # noqa: E402
from cutout.config import Settings  # noqa: E402
from cutout.db import session_scope  # noqa: E402
from cutout.schema import Shot, ShotStatus  # noqa: E402
from cutout.storage import S3Storage  # noqa: E402
from demo import synthetic  # noqa: E402
from tests.helpers import free_port, scratch_database  # noqa: E402


_PHOTOS: dict[str, bytes] = {}


def put_shot(storage, key: str) -> None:
    """A studio view under `key` (a few distinct photos, the same bytes for the same view)."""
    if not _PHOTOS:
        _PHOTOS.update({view: imageio.encode_png(synthetic.studio_shot(i, view)[0]) for i, view in enumerate(naming.VIEWS)})
    storage.put(key, _PHOTOS[naming.parse_key(key).view], "image/png")


def upload_keys(shots: int, tag: str) -> list[str]:
    """Keys of `shots` views of garments named after `tag`, three views a garment."""
    return [naming.shot_key(synthetic.garment_id(f"{tag}-{n // 3}"), naming.VIEWS[n % 3]) for n in range(shots)]


def upload(storage, shots: int, tag: str) -> list[str]:
    """shots studio views, each its own object."""
    keys = upload_keys(shots, tag)
    for key in keys:
        put_shot(storage, key)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--solo", type=int, default=12, help="Shots timed in this process first.")
    parser.add_argument("--latency-shots", type=int, default=60, help="Shots uploaded one by one for the latency.")
    parser.add_argument("--load", type=float, default=0.7, help="Their arrival rate, as a share of the fleet's.")
    parser.add_argument("--poll", type=float, default=1.0, help="Seconds between the producer's sweeps meanwhile.")
    parser.add_argument("--admin-url", default=os.environ.get("CUTOUT_TEST_PG_ADMIN_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--broker", default=os.environ.get("CUTOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=(port := free_port()), verbose=False)
    server.start()
    try:
        with scratch_database(args.admin_url, "cutout_bench") as url:
            run(args, url, port)
    finally:
        server.stop()


def run(args, url: str, port: int) -> None:
    env = {**os.environ, "CUTOUT_DATABASE_URL": url, "CUTOUT_BROKER_URL": args.broker,
           "CUTOUT_QUEUE": f"cutout-bench-{uuid.uuid4().hex[:8]}", "CUTOUT_BUCKET": "studio",
           "CUTOUT_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "TF_CPP_MIN_LOG_LEVEL": "2"}
    worker = None
    try:
        db.upgrade(url)
        storage = S3Storage("studio", env["CUTOUT_S3_ENDPOINT_URL"])
        storage.client.create_bucket(Bucket="studio")

        # 1. One shot's time in this process: the worker's job, the same services, one thread.
        os.environ.update({k: v for k, v in env.items() if k.startswith("CUTOUT_")})
        os.environ.pop("CUTOUT_TF_THREADS", None)
        from producer import sweep
        from worker import job
        from worker.resources import Resources

        res = Resources(replace(Settings.from_env(), tf_threads=1))

        def in_process(tag: str) -> tuple[float, list[int]]:
            """Median seconds of one shot through the worker's job in this process."""
            upload(storage, args.solo, tag)
            sweep.register(url, storage)
            with session_scope(url) as s:
                ids = s.execute(select(Shot.id).where(Shot.status == ShotStatus.PENDING).order_by(Shot.id)).scalars().all()
            job.segment_shot(res, ids[0])  # loads the model (the first time): not part of a shot's time
            times = []
            for shot_id in ids[1:]:
                t = time.perf_counter()
                assert job.segment_shot(res, shot_id) == "done"
                times.append(time.perf_counter() - t)
            return statistics.median(times), ids

        before, ids = in_process("solo")
        print(f"in-process: {before * 1000:.0f} ms per shot (median of {len(ids) - 1}, one TensorFlow thread); "
              f"{args.workers} processes could do {args.workers / before:.2f} shots/s")

        # 2. The fleet: a real worker with W processes; the producer enqueues all N at once.
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", env["CUTOUT_QUEUE"],
                                   "--concurrency", str(args.workers), "--loglevel", "WARNING",
                                   "-n", f"bench-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle"],
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        upload(storage, args.shots, "fleet")
        sweep.register(url, storage)
        from cutout.queue import SEGMENT_SHOT, make_celery

        app = make_celery(Settings.from_env(), "bench-producer")
        # Warm-up: each child loads the model on its first shot; the clock starts once one per
        # child is done (what a long-running fleet never pays again).
        started = None
        sent = sweep.enqueue_shots(url, lambda i: app.send_task(SEGMENT_SHOT, args=[i], queue=env["CUTOUT_QUEUE"]), 300)
        total = sent
        deadline = time.monotonic() + 60 + 10 * total * before
        while time.monotonic() < deadline:
            with session_scope(url) as s:
                done = s.execute(select(func.count()).where(Shot.status == ShotStatus.DONE, Shot.key.like("shots/%"))
                                 ).scalar_one() - len(ids)
            if started is None and done >= args.workers:
                started, base, services_before = time.perf_counter(), done, service_cpu()
            if done >= total:
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"only {done} of {total} shots done before the deadline")
        elapsed = time.perf_counter() - started
        services = {k: v - services_before.get(k, 0.0) for k, v in service_cpu().items()}
        achieved = (total - base) / elapsed
        print(f"fleet: {total} shots, {args.workers} worker processes: {achieved:.2f} shots/s "
              f"({total - base} shots in {elapsed:.1f} s after warm-up)")
        if args.latency_shots:
            latency(args, url, storage, args.load * achieved, deadline_s=60 + 10 * args.latency_shots * before)
        worker.terminate()
        worker.wait(60)
        worker = None
        # This machine's speed drifts by several per cent within minutes (shared hosts): time
        # the same job again after the fleet and set the fleet against the mean of both.
        after, ids_after = in_process("solo-after")
        per_shot = (before + after) / 2
        ideal = args.workers / per_shot
        print(f"in-process again after the fleet: {after * 1000:.0f} ms per shot; mean {per_shot * 1000:.0f} ms, "
              f"{args.workers} processes could do {ideal:.2f} shots/s")
        print(f"ratio achieved / ideal: {achieved / ideal:.2f} (the fleet should keep >= 0.9 of it)")
        # The services share these cores here (a fleet's bucket and database run elsewhere):
        # what they took during the fleet's run, and the ratio against what they left.
        cores = len(os.sched_getaffinity(0))
        share = min(0.99, sum(services.values()) / (cores * elapsed))
        print(f"the services on these {cores} cores during the fleet's run: "
              + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in services.items())
              + f" of {cores * elapsed:.0f} core-seconds ({share:.0%}); ratio against what they left the workers: "
              f"{achieved / (ideal * (1 - share)):.2f}")
        print_stages(url, set(ids[1:]) | set(ids_after[1:]), set(ids) | set(ids_after))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)


def latency(args, url: str, storage, rate: float, deadline_s: float) -> None:
    """Upload --latency-shots shots at `rate` a second while the real producer sweeps every
    --poll seconds, and print upload-to-result seconds: median and 95th percentile."""
    import threading

    from cutout.schema import Segmentation
    from producer.watch import Producer

    producer = Producer(Settings.from_env())
    stop = threading.Event()

    def produce():
        while not stop.wait(args.poll):
            producer.sweep_once()

    sweeper = threading.Thread(target=produce, daemon=True)
    sweeper.start()
    uploaded = {}
    try:
        start = time.time()
        for n, key in enumerate(upload_keys(args.latency_shots, "latency")):
            time.sleep(max(0.0, start + n / rate - time.time()))
            put_shot(storage, key)
            uploaded[key] = time.time()
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            with session_scope(url) as s:
                rows = s.execute(select(Shot.key, func.min(Segmentation.created_at), func.min(Shot.created_at))
                                 .join(Segmentation, Segmentation.shot_id == Shot.id)
                                 .where(Shot.key.in_(list(uploaded))).group_by(Shot.key)).all()
            if len(rows) == len(uploaded):
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"latency: only {len(rows)} of {len(uploaded)} shots done before the deadline")
    finally:
        stop.set()
        sweeper.join(30)
    seconds = sorted(done.timestamp() - uploaded[key] for key, done, _ in rows)
    found = [registered.timestamp() - uploaded[key] for key, _, registered in rows]
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
    print(f"latency: {len(seconds)} shots arriving at {rate:.2f}/s ({args.load:.0%} of the fleet's rate), "
          f"the producer sweeping every {args.poll:g} s: upload to result median {statistics.median(seconds):.2f} s, "
          f"95th percentile {p95:.2f} s, longest {seconds[-1]:.2f} s; upload to registered median "
          f"{statistics.median(found):.2f} s")


def service_cpu() -> dict[str, float]:
    """CPU seconds used so far by this process (moto's server runs in it) and by this machine's
    PostgreSQL and Redis processes (read from Linux's /proc; absent elsewhere)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = {"moto and this bench": usage.ru_utime + usage.ru_stime}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        service = {"postgres": "PostgreSQL", "redis-server": "Redis"}.get(name)
        if service:
            used[service] = used.get(service, 0.0) + (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def print_stages(url: str, solo: set[int], not_fleet: set[int]) -> None:
    """Where a shot's time went, in this process and in the fleet: the worker's own timings
    (median ms per stage), so a gap in the ratio points at its stage."""
    from cutout.schema import Segmentation

    with session_scope(url) as s:
        rows = s.execute(select(Shot.id, Segmentation.timings).join(Segmentation, Segmentation.shot_id == Shot.id)).all()
    groups = {"in-process": [t for i, t in rows if i in solo], "fleet": [t for i, t in rows if i not in not_fleet]}
    stages = sorted({k for _, t in rows for k in t}, key=lambda k: -statistics.median(t.get(k, 0) for _, t in rows))
    print("median ms per stage  " + "  ".join(f"{name:>10}" for name in groups))
    for stage in stages:
        print(f"  {stage:<18} " + "  ".join(f"{statistics.median(t.get(stage, 0) for t in group) * 1000:10.1f}"
                                          for group in groups.values()))


if __name__ == "__main__":
    main()
