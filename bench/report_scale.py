"""The report at scale: N shots (three views per garment) with their segmentations, some
failed, some with references and reviews, generated in PostgreSQL; then the time of the
report's first page (what `cutout report needs-cutout --limit 50` and the review queue ask)
and of a filtered page, each the median of a few runs.

    python bench/report_scale.py [--shots 1000000] [--admin-url postgresql://postgres@127.0.0.1:5432/test] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from cutout import db, ranking  # noqa: E402
from cutout.ranking import Filters, GarmentStatus  # noqa: E402
from cutout.release import Rule  # noqa: E402
from cutout.report import needs_cutout  # noqa: E402
from tests.helpers import scratch_database  # noqa: E402

FILL = """
INSERT INTO model_versions (id, version, location, params, metrics, release_threshold, is_current)
VALUES (1, 'bench-model', '/m', '{}', '{}', 0.95, true);
INSERT INTO garments (id)
SELECT md5(g::text)::uuid::text FROM generate_series(1, :garments) g;
INSERT INTO shots (bucket, key, etag, size_bytes, garment_id, view, status, failure_reason)
SELECT 'studio', 'shots/' || md5(g::text)::uuid::text || '_' || v.view || '.png', 'e', 1000000,
       md5(g::text)::uuid::text, v.view,
       CASE WHEN g % 97 = 0 AND v.view = 'Back' THEN 'failed' WHEN g % 53 = 0 THEN 'pending' ELSE 'done' END,
       CASE WHEN g % 97 = 0 AND v.view = 'Back' THEN 'bad input: not a PNG' END
FROM generate_series(1, :garments) g CROSS JOIN (VALUES ('Front'), ('FrontRight'), ('Back')) v(view);
INSERT INTO segmentations (shot_id, model_version_id, shot_etag, width, height, first_mask_key, mask_key, cutout_key,
                           overlay_key, threshold_first, confidence, confidence_parts, dice, timings)
SELECT id, 1, 'e', 1152, 1728, 'f', 'm', 'c', 'o', 0.5,
       0.80 + 0.2 * ((id::bigint * 7919) % 1000) / 1000.0, '{}',
       CASE WHEN id % 10 = 0 THEN 0.90 + 0.1 * ((id::bigint * 104729) % 1000) / 1000.0 END, '{}'
FROM shots WHERE status = 'done';
INSERT INTO users (id, name, password_hash) VALUES (1, 'bench', '!disabled');
INSERT INTO reviews (shot_id, shot_etag, user_id, decision)
SELECT id, 'e', 1, CASE WHEN id % 2 = 0 THEN 'approved' ELSE 'needs_manual_cut' END FROM shots WHERE id % 31 = 0;
"""


def analyse(url: str) -> None:
    with db.engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def timed(fn, repeat: int) -> float:
    fn()  # warm the caches, as a page in use is
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="Keep the generated database.")
    args = parser.parse_args()

    with scratch_database(args.admin_url, "cutout_bench", keep=args.keep) as url:
        db.upgrade(url)
        garments = args.shots // 3
        started = time.perf_counter()
        with db.engine_for(url).begin() as conn:
            for statement in FILL.strip().split(";\n"):
                conn.execute(text(statement), {"garments": garments})
        print(f"generated {garments * 3:,} shots of {garments:,} garments with segmentations, failures, "
              f"references' Dice and reviews in {time.perf_counter() - started:.1f} s")
        analyse(url)  # statistics, as a database in use has them
        started = time.perf_counter()
        with db.session_scope(url) as session:  # what migration 0003 does for a database that has history
            ranking.refresh_all(session)
        print(f"every garment's standing computed (garment_states) in {time.perf_counter() - started:.1f} s")
        analyse(url)
        first = timed(lambda: needs_cutout(url, Rule(), limit=50), args.repeat)
        report = needs_cutout(url, Rule(), limit=50)
        print(f"counts: {report['counts']}")
        print(f"first page (50 of {report['total']:,} that need a person): {first * 1000:.0f} ms")
        later = timed(lambda: needs_cutout(url, Rule(), limit=50, offset=100_000), args.repeat)
        print(f"page at offset 100,000: {later * 1000:.0f} ms")
        failed = timed(lambda: needs_cutout(url, Rule(), limit=50, filters=Filters(status=GarmentStatus.NEEDS_PERSON,
                                                                                        reason="failed")), args.repeat)
        print(f"first page filtered by reason (failed): {failed * 1000:.0f} ms")


if __name__ == "__main__":
    main()
