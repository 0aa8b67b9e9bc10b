"""A studio's first days with cutout, on the real services: every day G new garments (three
views each) are uploaded to the bucket; a real producer registers and enqueues them and a real
Celery worker segments them; the report decides what is released; the cutout team (simulated
from the garments' truth: a view is approved when its mask is right, Dice >= 0.95, else
corrected with the hand cutout) reviews everything the report gives it, through the review
page's own actions; every night the trainer retrains on the corrections (promoting only what
its gate allows) and refits the release rule on the day's reviews. Each day prints what was
released and how much of it was truly right, against the live precision and interval the
fleet itself reported; a plot of the days goes to --out.

The garments come from CCP's validation photos in one studio look (trainer.studio.LOOKS, none
of which any training composite uses), or, with --synthetic, from demo.synthetic (small and
fast: the integration suite runs one day and one night of it). A further --studio-holdout
garments of the same look are never reviewed nor trained on: every morning the model in service
is scored on them against the truth, as a worker runs it (the "holdout Dice" of each day).

    python bench/loop.py --ccp ../shared/data/ccp [--look charcoal] [--days 3] [--garments 50]
                         [--retrain-minutes 20] [--replay runs/replay] [--out runs/loop]

Last line: loop: day D released X/G (P%), true precision T, live L [lo, hi], mode M, holdout Dice H
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from sqlalchemy import and_, func, select  # noqa: E402

from cutout import db, imageio, naming, release  # noqa: E402
from cutout.config import Settings  # noqa: E402
from cutout.db import session_scope  # noqa: E402
from cutout.metrics import dice  # noqa: E402
from cutout.schema import ModelVersion, Reference, Segmentation, Shot, ShotStatus  # noqa: E402
from cutout.storage import S3Storage  # noqa: E402
from tests.helpers import free_port, scratch_database  # noqa: E402

log = logging.getLogger("loop")


@dataclass(frozen=True)
class Garment:
    name: str  # where it came from (a CCP photo id, or a synthetic seed)
    id: str  # its UUID in the bucket
    photos: dict  # view -> HxWx3 uint8 RGB
    truth: dict  # view -> HxW bool


def ccp_garments(ccp: Path, look_name: str, count: int, seed: int = 7):
    """count * days garments of the look from CCP's validation photos, in a fixed order: one photo
    a garment, its three views three composites of it (as `cutout studio-data --views`)."""
    from trainer.studio import LOOKS, compose, photo_ids, read_ccp

    look = LOOKS[look_name]
    ids = photo_ids(ccp, "val")
    for photo_id in ids[:count]:
        photo = read_ccp(ccp, photo_id)
        photos, truth = {}, {}
        for v, view in enumerate(naming.VIEWS):
            rgb, mask, _ = compose(photo, np.random.default_rng([seed, int(photo_id), v]), look=look)
            photos[view], truth[view] = rgb, mask > 127
        yield Garment(photo_id, str(uuid.uuid5(uuid.NAMESPACE_URL, f"cutout-loop/{look_name}/{photo_id}")), photos, truth)


def synthetic_garments(count: int, size=(432, 288)):
    from demo import synthetic

    for n in range(count):
        photos, truth = {}, {}
        for view in naming.VIEWS:
            rgba, mask = synthetic.studio_shot(5000 + n, view, size=size)
            photos[view], truth[view] = rgba[:, :, :3], mask > 127
        yield Garment(f"synthetic-{n}", synthetic.garment_id(f"loop-{n}"), photos, truth)


@dataclass
class Day:
    number: int
    garments: int = 0
    version: str = ""
    mode_before: str = ""
    would_release: int = 0
    would_right: int = 0
    released: int = 0
    released_right: int = 0
    audited: int = 0
    reviewed: int = 0
    approved_views: int = 0
    corrected_views: int = 0
    right_garments: int = 0
    view_dice: list = field(default_factory=list)
    views: list = field(default_factory=list)  # per view: truth Dice, confidence, signals (for offline study)
    studio_holdout: dict = field(default_factory=dict)  # the in-service model on the fixed truth holdout
    live_before: dict = field(default_factory=dict)  # the in-service model's evidence the day's releases relied on
    live: dict = field(default_factory=dict)  # ... and after the day's reviews (what tomorrow relies on)
    night: dict = field(default_factory=dict)

    @property
    def true_precision(self) -> float | None:
        """Of what was released (in shadow mode: of what would have been), the share truly right."""
        if self.released:
            return self.released_right / self.released
        return self.would_right / self.would_release if self.would_release else None

    @property
    def interval_holds(self) -> bool | None:
        """Whether the interval the day started with held the day's true precision."""
        p, live = self.true_precision, self.live_before
        if p is None or not live.get("reviewed"):
            return None
        return live["low"] - 1e-9 <= p <= live["high"] + 1e-9


class Studio:
    """The fleet's services for the loop: a scratch database, a bucket on moto's S3 server, a
    Redis queue of its own, and real producer and worker processes."""

    def __init__(self, args, url: str, endpoint: str, workdir: Path):
        self.args, self.url, self.workdir = args, url, workdir
        self.bucket = f"loop-{uuid.uuid4().hex[:8]}"
        self.queue = f"cutout-loop-{uuid.uuid4().hex[:8]}"
        self.storage = S3Storage(self.bucket, endpoint)
        self.storage.client.create_bucket(Bucket=self.bucket)
        self.env = {**os.environ, "CUTOUT_DATABASE_URL": url, "CUTOUT_BROKER_URL": args.broker, "CUTOUT_QUEUE": self.queue,
                    "CUTOUT_BUCKET": self.bucket, "CUTOUT_S3_ENDPOINT_URL": endpoint, "CUTOUT_MODEL": str(args.model),
                    "CUTOUT_MODEL_CHECK_SECONDS": "1", "CUTOUT_POLL_SECONDS": "1",
                    "CUTOUT_MODEL_CACHE": str(workdir / "model-cache"), "TF_CPP_MIN_LOG_LEVEL": "2",
                    "PYTHONUNBUFFERED": "1"}
        if args.tf_threads:
            self.env["CUTOUT_TF_THREADS"] = str(args.tf_threads)
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("CUTOUT_")})
        self.settings = replace(Settings.from_env(), holdout_percent=args.holdout_percent,
                                min_training_pairs=args.min_training_pairs, retrain_budget_minutes=args.retrain_minutes,
                                replay_data=args.replay, model_cache=workdir / "model-cache-trainer")
        self.processes = []

    def start(self):
        logs = self.workdir
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", self.queue, "--concurrency",
             str(self.args.workers), "--loglevel", "WARNING", "-n", f"loop-{uuid.uuid4().hex[:6]}@%h",
             "--without-gossip", "--without-mingle"], env=self.env, cwd=ROOT,
            stdout=open(logs / "worker.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True))
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "cutout.cli", "produce", "--interval", "1"], env=self.env, cwd=ROOT,
            stdout=open(logs / "producer.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True))
        from review import users

        users.add_user(self.url, "loop-team", "loop-team-password")
        with session_scope(self.url) as s:
            from cutout.schema import User

            self.user_id = s.execute(select(User.id).where(User.name == "loop-team")).scalar_one()

    def stop(self):
        import signal

        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        import redis

        redis.Redis.from_url(self.args.broker).delete(self.queue)

    def _alive(self):
        for proc in self.processes:
            if proc.poll() is not None:
                raise SystemExit(f"loop: a fleet process stopped (exit {proc.returncode}); see {self.workdir}")

    def wait(self, what: str, predicate, timeout: float):
        deadline = time.monotonic() + timeout
        while not predicate():
            self._alive()
            if time.monotonic() > deadline:
                raise SystemExit(f"loop: timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(1)

    # A day.

    def upload(self, garments: list[Garment]) -> None:
        for g in garments:
            for view, rgb in g.photos.items():
                rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
                self.storage.put(naming.shot_key(g.id, view), imageio.encode_png(rgba), "image/png")

    def settled(self, ids: list[str]) -> bool:
        with session_scope(self.url) as s:
            open_ = s.execute(select(func.count()).where(Shot.garment_id.in_(ids), Shot.status.not_in(
                [ShotStatus.DONE, ShotStatus.FAILED]))).scalar_one()
            known = s.execute(select(func.count()).where(Shot.garment_id.in_(ids))).scalar_one()
        return known == len(ids) * len(naming.VIEWS) and open_ == 0

    def masks(self, ids: list[str]) -> dict:
        """(garment, view) -> (mask, model version, confidence, signals) of the newest segmentation
        of each view."""
        with session_scope(self.url) as s:
            rows = s.execute(select(Shot.garment_id, Shot.view, Segmentation.mask_key, ModelVersion.version,
                                    Segmentation.confidence, Segmentation.confidence_parts)
                             .join(Segmentation, and_(Segmentation.shot_id == Shot.id, Segmentation.shot_etag == Shot.etag))
                             .join(ModelVersion, ModelVersion.id == Segmentation.model_version_id)
                             .where(Shot.garment_id.in_(ids))
                             .order_by(Segmentation.created_at, Segmentation.id)).all()
        out = {}
        for garment_id, view, key, version, confidence, parts in rows:
            mask = cv2.imdecode(np.frombuffer(self.storage.get(key), np.uint8), cv2.IMREAD_UNCHANGED)
            out[(garment_id, view)] = (mask > 127, version, confidence, parts)
        return out

    def standing(self, ids: list[str]) -> dict:
        """garment -> (status, reasons) as the report ranks it now."""
        from cutout import ranking

        rule = release.Rule.from_settings(self.settings)
        with session_scope(self.url) as s:
            rows = s.execute(ranking.garments(rule, ranking.Filters(garment_ids=tuple(ids)))).mappings().all()
        return {r["garment_id"]: (r["status"], {k for k in release.REASON_KINDS if r[k]}) for r in rows}

    def in_service(self) -> dict:
        from cutout import models

        with session_scope(self.url) as s:
            version_id = models.in_service(s)
            row = s.get(ModelVersion, version_id) if version_id is not None else None
            if row is None:
                return {}
            return {"version": row.version, "releasing": bool(row.releasing), "threshold": row.release_threshold,
                    **(row.evidence or {})}

    def review(self, garment: Garment, masks: dict, day: Day) -> None:
        """The team's decisions on one garment, through the review page's own action."""
        from werkzeug.datastructures import FileStorage

        from review import actions

        for view in naming.VIEWS:
            mask = masks[(garment.id, view)][0]
            if dice(mask, garment.truth[view]) >= release.GOOD_DICE:
                actions.decide(self.settings, self.storage, garment.id, view, "approve", self.user_id)
                day.approved_views += 1
            else:
                cut = imageio.rgba_cutout(np.dstack([garment.photos[view], np.full(mask.shape, 255, np.uint8)]),
                                          np.where(garment.truth[view], 255, 0).astype(np.uint8))
                upload = FileStorage(io.BytesIO(imageio.encode_png(cut)), filename=f"{view}.png")
                actions.decide(self.settings, self.storage, garment.id, view, "correct", self.user_id, upload)
                day.corrected_views += 1

    def scored(self, ids: list[str], expected: int) -> bool:
        """Every reference of these garments is registered and each view scored against it."""
        with session_scope(self.url) as s:
            references = s.execute(select(func.count()).select_from(Reference)
                                   .where(Reference.garment_id.in_(ids))).scalar_one()
            unscored = s.execute(
                select(func.count()).select_from(Shot)
                .join(Reference, and_(Reference.garment_id == Shot.garment_id, Reference.view == Shot.view))
                .join(Segmentation, and_(Segmentation.shot_id == Shot.id, Segmentation.shot_etag == Shot.etag))
                .where(Shot.garment_id.in_(ids), func.coalesce(Segmentation.dice_reference_etag, "") != Reference.etag)
            ).scalar_one()
        return references == expected and unscored == 0

    def write_holdout(self, garments: list[Garment]) -> None:
        """The fixed studio holdout: garments of the look that no one reviews and nothing trains
        on, kept as a labelled folder to score each day's model on against the truth."""
        self.holdout = self.workdir / "studio-holdout"
        (self.holdout / "images").mkdir(parents=True, exist_ok=True)
        (self.holdout / "masks").mkdir(exist_ok=True)
        for g in garments:
            for view in naming.VIEWS:
                name = f"{g.id}_{view}"
                cv2.imwrite(str(self.holdout / "images" / f"{name}.png"), cv2.cvtColor(g.photos[view], cv2.COLOR_RGB2BGR))
                cv2.imwrite(str(self.holdout / "masks" / f"{name}.png"), g.truth[view].astype(np.uint8) * 255)

    def score_holdout(self) -> dict:
        """The model in service on the fixed studio holdout, run as a worker runs it."""
        from cutout import models
        from trainer.data import find_pairs
        from trainer.evaluate import worker_dice

        if not getattr(self, "holdout", None):
            return {}
        with session_scope(self.url) as s:
            promoted = models.current(s)
        scored = worker_dice(self.settings, models.local_bundle(promoted, self.settings), find_pairs(self.holdout))
        table = release.garment_table(scored["views"])
        return {"mean_dice": round(scored["mean_dice"], 4), "garments": len(table),
                "right": sum(g["dice"] >= release.GOOD_DICE for g in table.values())}

    def run_day(self, number: int, garments: list[Garment]) -> Day:
        day = Day(number, len(garments))
        day.studio_holdout = self.score_holdout()
        service = self.in_service()
        day.mode_before = "releasing" if service.get("releasing") else "shadow"
        day.live_before = service
        ids = [g.id for g in garments]
        started = time.monotonic()
        self.upload(garments)
        self.wait(f"day {number}'s {len(ids) * 3} shots", lambda: self.settled(ids), 600 + 20 * len(ids))
        log.info("day %d: %d shots segmented in %.0f s", number, len(ids) * 3, time.monotonic() - started)
        masks = self.masks(ids)
        standing = self.standing(ids)
        day.version = next(iter({m[1] for m in masks.values()}), "")
        to_team = []
        for g in garments:
            views = [dice(masks[(g.id, v)][0], g.truth[v]) for v in naming.VIEWS]
            day.view_dice += views
            day.views += [{"garment": g.id, "photo": g.name, "view": v, "dice": round(d, 5),
                           "predicted": masks[(g.id, v)][2], "signals": masks[(g.id, v)][3]}
                          for v, d in zip(naming.VIEWS, views)]
            right = min(views) >= release.GOOD_DICE
            day.right_garments += right
            status, reasons = standing[g.id]
            would = reasons <= {"check"}
            day.would_release += would
            day.would_right += would and right
            if status == "released":
                day.released += 1
                day.released_right += right
            else:
                day.audited += would and day.mode_before == "releasing"
                to_team.append(g)
        for g in to_team:
            self.review(g, masks, day)
        day.reviewed = len(to_team)
        expected = len(to_team) * len(naming.VIEWS)  # the team's references: one per view it saw
        self.wait(f"day {number}'s references scored", lambda: self.scored(ids, expected), 600 + 5 * len(ids))
        day.live = self.in_service()
        return day

    def night(self, day: Day) -> None:
        """The trainer's nightly tasks, in the beat schedule's order."""
        from cutout import evidence
        from trainer.retrain import retrain

        started = time.monotonic()
        summary = retrain(self.settings, epochs=self.args.epochs, patience=self.args.patience)
        rule = evidence.refit_in_service(self.settings)
        after = self.in_service()
        day.night = {"outcome": summary.get("outcome"), "training": summary.get("training"),
                     "holdout": summary.get("holdout"), "replay": summary.get("replay"),
                     "holdout_dice": {k: summary[k]["holdout_mean_dice"] for k in ("current", "candidate") if k in summary},
                     # on the holdout views whose reference a person drew (what the gate compares)
                     "drawn_dice": {k: summary[k]["drawn_mean_dice"] for k in ("current", "candidate") if k in summary},
                     "refused": summary.get("promotion", {}).get("refused"), "rule": rule,
                     "current_rule": summary.get("current_rule"), "in_service": after,
                     "minutes": round((time.monotonic() - started) / 60, 1)}
        # The in-service model's holdout Dice after the night (the workers pick a promoted model up
        # by themselves, within CUTOUT_MODEL_CHECK_SECONDS).
        scored = day.night["holdout_dice"]
        day.night["in_service_dice"] = scored.get("candidate" if summary.get("outcome") == "promoted" else "current")


def _live(live: dict) -> str:
    if not live.get("reviewed"):
        return "none yet"
    return f"{live['precision']:.3f} [{live['low']:.3f}, {live['high']:.3f}] on {live['reviewed']} garments"


def line(day: Day) -> str:
    p = day.true_precision
    live = day.live
    share = day.released / day.garments if day.garments else 0.0
    holds = {True: "it holds the true precision", False: "it MISSED the true precision", None: "nothing to compare"}[
        day.interval_holds]
    return (f"day {day.number}: model {day.version} ({day.mode_before}): released {day.released}/{day.garments} "
            f"({share:.0%}), {day.released_right} right; would release {day.would_release}, {day.would_right} right; "
            f"true precision {'n/a' if p is None else f'{p:.3f}'}; audited {day.audited}; team reviewed {day.reviewed} "
            f"({day.approved_views} views approved, {day.corrected_views} corrected); garments right "
            f"{day.right_garments}/{day.garments}, median view Dice {np.median(day.view_dice):.4f}; "
            f"live precision the day started with {_live(day.live_before)}: {holds}; after the day's reviews "
            f"{_live(live)}, now {'releasing' if live.get('releasing') else 'shadow'}"
            + (f"; studio holdout (truth, never reviewed): mean Dice {day.studio_holdout['mean_dice']:.4f}, "
               f"{day.studio_holdout['right']}/{day.studio_holdout['garments']} garments right"
               if day.studio_holdout else ""))


def night_line(day: Day) -> str:
    n = day.night
    dice_text = (" vs ".join(f"{k} {v:.4f} ({n['drawn_dice'][k]:.4f} where a person drew the reference)"
                             for k, v in n["holdout_dice"].items()) or "not scored")
    refused = f" ({'; '.join(n['refused'])})" if n.get("refused") else ""
    rule = n["rule"] or {}
    service = n["in_service"]
    return (f"night {day.number}: retrain on {n['training']} views + {n.get('replay') or 0} replayed, holdout "
            f"{n['holdout']} views: {dice_text}: {n['outcome']}{refused}; rule: {rule.get('reason', '-')}; "
            f"in service {service.get('version')} ({'releasing' if service.get('releasing') else 'shadow'}); "
            f"{n['minutes']} min")


def plot(days: list[Day], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([d.number for d in days])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(x - 0.2, [d.released / d.garments for d in days], 0.4, label="released")
    left.bar(x + 0.2, [d.would_release / d.garments for d in days], 0.4, label="would release (rule)", alpha=0.6)
    left.plot(x, [d.right_garments / d.garments for d in days], "k.-", label="garments right (truth)")
    left.set(xlabel="day", ylabel="share of the day's garments", ylim=(0, 1), xticks=x, title="What the fleet let out")
    left.legend(fontsize=8)
    labelled = False
    for d in days:
        live = d.live_before
        if live.get("reviewed"):
            right.errorbar(d.number - 0.1, live["precision"], yerr=[[live["precision"] - live["low"]],
                                                                    [live["high"] - live["precision"]]], fmt="o",
                           color="C0", capsize=4, label=None if labelled else "live estimate the day relied on, 95 %")
            labelled = True
        if d.true_precision is not None:
            right.plot(d.number + 0.1, d.true_precision, "s", color="C3",
                       label="true precision (released, or would-be)" if d.number == days[0].number else None)
    right.axhline(0.95, color="grey", lw=0.8, ls="--")
    right.set(xlabel="day", ylabel="precision", ylim=(0, 1.02), xticks=x, title="Live precision against the truth")
    right.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ccp", type=Path, help="CCP with labels/ (validation photos become the garments)")
    source.add_argument("--synthetic", action="store_true", help="demo.synthetic garments (small, fast)")
    parser.add_argument("--look", default="charcoal")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--garments", type=int, default=50, help="new garments a day")
    parser.add_argument("--model", type=Path, default=Settings().model_dir, help="the bundle in service on day 1")
    parser.add_argument("--retrain-minutes", type=float, default=20.0, help="fitting budget a night, both stages")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--replay", type=Path, help="labelled folder replayed beside the studio's corrections")
    parser.add_argument("--holdout-percent", type=int, default=20, help="the trainer's frozen holdout")
    parser.add_argument("--studio-holdout", type=int, default=10,
                        help="garments of the look never reviewed nor trained on: each day's model is scored on them")
    parser.add_argument("--min-training-pairs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tf-threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "loop")
    parser.add_argument("--admin-url", default=os.environ.get("CUTOUT_TEST_PG_ADMIN_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--broker", default=os.environ.get("CUTOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("werkzeug", "botocore", "trainer", "cutout", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)

    total = args.days * args.garments + args.studio_holdout
    garments = list(ccp_garments(args.ccp, args.look, total) if args.ccp else synthetic_garments(total))
    if len(garments) < total:
        raise SystemExit(f"loop: {len(garments)} garments, {total} needed (days x garments + studio holdout)")
    garments, held = garments[:args.days * args.garments], garments[args.days * args.garments:]
    log.info("%d garments made (%s)", total, f"CCP validation photos, look {args.look}" if args.ccp else "synthetic")

    from moto.server import ThreadedMotoServer

    os.environ.update(AWS_ACCESS_KEY_ID="loop", AWS_SECRET_ACCESS_KEY="loop", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=(port := free_port()), verbose=False)
    server.start()
    days: list[Day] = []
    try:
        with scratch_database(args.admin_url, "cutout_loop") as url:
            db.upgrade(url)
            studio = Studio(args, url, f"http://127.0.0.1:{port}", args.out)
            studio.write_holdout(held)
            studio.start()
            try:
                for number in range(1, args.days + 1):
                    day = studio.run_day(number, garments[(number - 1) * args.garments:number * args.garments])
                    days.append(day)
                    print(line(day), flush=True)
                    if number < args.days:
                        studio.night(day)
                        print(night_line(day), flush=True)
            finally:
                studio.stop()
    finally:
        server.stop()
    plot(days, args.out / "loop.png")
    (args.out / "loop.json").write_text(json.dumps([{**d.__dict__, "view_dice": None,
                                                      "true_precision": d.true_precision} for d in days],
                                                    indent=1, default=str))
    last = days[-1]
    in_service_dice = last.studio_holdout.get("mean_dice")
    p = last.true_precision
    live = last.live_before if last.live_before.get("reviewed") else last.live
    estimate = "n/a" if live.get("precision") is None else f"{live['precision']:.3f}"
    print(f"plot: {args.out / 'loop.png'}")
    print(f"loop: day {last.number} released {last.released}/{last.garments} ({last.released / last.garments:.0%}), "
          f"true precision {'n/a' if p is None else f'{p:.3f}'}, live "
          f"{estimate} "
          f"[{live.get('low', 0):.3f}, {live.get('high', 1):.3f}], mode "
          f"{last.mode_before}, holdout Dice "
          f"{'n/a' if in_service_dice is None else f'{in_service_dice:.4f}'}")


if __name__ == "__main__":
    main()
