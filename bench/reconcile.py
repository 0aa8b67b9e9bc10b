"""The reconciliation sweep at scale: a bucket of N shot keys (default 100,000, a garment's
three views each), all registered already and done; then the time of the producer's sweep
(list every key, leave the known ones out, enqueue what is due) that must find nothing new,
enqueue nothing and draw no id from the shots' sequence.

    python bench/reconcile.py [--keys 100000] [--store folder|moto] [--admin-url postgresql://postgres@127.0.0.1:5432/test]

--store folder (default) is the local-folder bucket; --store moto is moto's S3 server over
HTTP in a process of its own. moto fills and lists a bucket far slower than S3 or MinIO do
(it slows as the bucket grows), so its listing share is an upper bound; the database share
is what the producer itself costs, and is the same for any store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from cutout import db, naming  # noqa: E402
from cutout.db import session_scope  # noqa: E402
from cutout.storage import LocalStorage, S3Storage  # noqa: E402
from producer import sweep  # noqa: E402
from tests.helpers import free_port, scratch_database  # noqa: E402


def fill_moto(stack: ExitStack, keys: list[str]) -> S3Storage:
    """moto's S3 server in a process of its own (stopped with the stack), holding `keys`."""
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.callback(server.terminate)
    time.sleep(3)
    storage = S3Storage("studio", f"http://127.0.0.1:{port}")
    storage.client.create_bucket(Bucket="studio")
    with ThreadPoolExecutor(8) as pool:
        for n, _ in enumerate(pool.map(lambda k: storage.put(k, b"x", "image/png"), keys), 1):
            if n % 10_000 == 0:
                print(f"uploaded {n:,} / {len(keys):,} keys", file=sys.stderr, flush=True)
    return storage


def fill_folder(stack: ExitStack, keys: list[str]) -> LocalStorage:
    """A folder bucket (removed with the stack) holding `keys`."""
    folder = Path(tempfile.mkdtemp(prefix="cutout-bench-bucket-"))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    storage = LocalStorage(folder)
    for key in keys:
        storage.put(key, b"x", "image/png")
    return storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", choices=["folder", "moto"], default="folder")
    parser.add_argument("--admin-url", default=os.environ.get("CUTOUT_TEST_PG_ADMIN_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    keys = [naming.shot_key(str(uuid.UUID(int=g, version=4)), view)
            for g in range(args.keys // 3 + 1) for view in naming.VIEWS][: args.keys]

    with ExitStack() as stack:
        url = stack.enter_context(scratch_database(args.admin_url, "cutout_bench"))
        db.upgrade(url)
        t = time.perf_counter()
        storage = (fill_moto if args.store == "moto" else fill_folder)(stack, keys)
        print(f"bucket: {len(keys):,} shot keys, {args.store} ({time.perf_counter() - t:.0f} s to fill)")

        t = time.perf_counter()
        first = sweep.register(url, storage)
        print(f"first sweep (registers everything): {time.perf_counter() - t:.1f} s, {first.shots:,} registered")
        with session_scope(url) as s:  # the steady state: every shot long done
            s.execute(text("UPDATE shots SET status = 'done', enqueued_at = now() - interval '1 day'"))

        def sequence():
            with session_scope(url) as s:
                return s.execute(text("SELECT last_value FROM shots_id_seq")).scalar_one()

        before = sequence()
        listing, totals = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            listed = sum(1 for _ in storage.list(naming.SHOTS_PREFIX))
            listing.append(time.perf_counter() - t)
            t = time.perf_counter()
            again = sweep.register(url, storage)
            resent = sweep.enqueue_shots(url, lambda _: None, 300, queue_empty=False)
            totals.append(time.perf_counter() - t)
            assert (again.shots, resent, listed) == (0, 0, len(keys)), (again, resent, listed)
        assert sequence() == before, "a reconciliation drew ids for known keys"
        total, lists = statistics.median(totals), statistics.median(listing)
        print(f"reconciliation sweep of {len(keys):,} known keys: {total:.1f} s (median of {args.runs}), "
              f"of which listing alone {lists:.1f} s and the database {max(0.0, total - lists):.1f} s; "
              f"0 registered, 0 enqueued, shots_id_seq unchanged at {before:,}")
        print(f"total {total * 1000:.0f} ms")


if __name__ == "__main__":
    main()
