"""`cutout demo`: the whole path on a few sample garments, in one process when no services
are configured (SQLite file, a local folder as the bucket, Celery eager); against the
configured database, bucket and workers when there are.

The demo plays every part (studio, producer, worker, cutout team), so it lives beside the
services rather than in one of them: it may import them all, and none imports it."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import click
import numpy as np

from cutout import db, naming
from cutout.config import Settings
from demo import synthetic
from producer import sweep
from trainer.studio import compose, read_ccp

log = logging.getLogger(__name__)
SAMPLES = Path(__file__).resolve().parent / "samples" / "ccp"
CCP_SAMPLES = ("0007", "0017", "0024", "0689")
WITH_REFERENCE = ("0017",)


def upload_samples(storage) -> dict[str, str]:
    """Put the sample garments in the bucket as the studio and the cutout team would: each CCP
    sample person as a studio-style garment in its three views (trainer.studio's composites,
    the same on every machine), the hand cutout of one view, and one drawn synthetic garment.
    Returns each garment's UUID with the sample it was made from."""
    garments = {}
    for sample in CCP_SAMPLES:
        photo = read_ccp(SAMPLES, sample)
        shots = {view: compose(photo, np.random.default_rng([0, int(sample), v]))[:2] for v, view in enumerate(naming.VIEWS)}
        gid = synthetic.upload_views(storage, synthetic.garment_id(f"ccp-{sample}"), shots,
                                     references=("Front",) if sample in WITH_REFERENCE else ())
        garments[gid] = f"CCP sample {sample}"
    garments[synthetic.upload_garment(storage, "studio-1", seed=1)] = "drawn garment"
    return garments


def _eager_sender(task):
    def send(item_id: int) -> None:
        # apply() without propagation runs the task's retries inline, one after another,
        # until it succeeds or gives up (.delay() with eager propagation would raise Retry
        # after the first attempt and leave the shot half done).
        result = task.apply(args=[item_id], throw=False)
        if result.failed():
            raise result.result
    return send


def _wait_for_workers(url: str, timeout: float) -> None:
    from sqlalchemy import func, select

    from cutout.db import session_scope
    from cutout.schema import Shot, ShotStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(url) as session:
            busy = session.execute(select(func.count()).select_from(Shot)
                                   .where(Shot.status.in_((ShotStatus.PENDING, ShotStatus.PROCESSING)))).scalar_one()
        if not busy:
            return
        time.sleep(1)
    raise click.ClickException(f"workers did not finish within {timeout:.0f} s; is `celery -A worker worker` running?")


def _review_instructions(settings: Settings) -> str:
    """How to look at these results on the review page, with the settings this run used."""
    import secrets
    import shlex
    import sys

    cutout = shlex.quote(sys.argv[0]) if sys.argv[0].endswith("cutout") else "cutout"
    key = settings.secret_key or secrets.token_urlsafe(32)
    return "\n".join([
        "", "To review these garments in a browser (approve, correct, see the model history):",
        f"  export CUTOUT_DATABASE_URL={shlex.quote(settings.database_url)} CUTOUT_BUCKET={shlex.quote(settings.bucket)}"
        f" CUTOUT_SECRET_KEY={key}",
        f"  {cutout} users add $USER      # asks for a password (10 characters or more)",
        f"  {cutout} review serve         # then open http://127.0.0.1:8080/ and log in",
    ])


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-output"), show_default=True,
              help="Folder for the embedded database and bucket (masks, cutouts, overlays under bucket/results/).")
@click.option("--timeout", default=600.0, show_default=True, help="With real workers: how long to wait for them.")
@click.pass_obj
def demo(settings, out, timeout):
    """Run the whole path on the shipped sample garments and print the report."""
    from cutout.release import Rule
    from cutout.report import format_table, needs_cutout
    from cutout.storage import storage_from_settings

    out.mkdir(parents=True, exist_ok=True)
    embedded = not (settings.database_url and settings.bucket and settings.broker_url)
    if not settings.database_url:
        settings = replace(settings, database_url=db.sqlite_url(out / "cutout.db"))
    if not settings.bucket:
        settings = replace(settings, bucket=f"file://{(out / 'bucket').resolve()}")
    click.echo(f"database: {settings.database_url}\nbucket:   {settings.bucket}\n"
               f"queue:    {'Celery eager, in this process' if embedded else settings.broker_url}", err=True)
    db.upgrade(settings.database_url)
    storage = storage_from_settings(settings)
    garments = upload_samples(storage)
    found = sweep.register(settings.database_url, storage)
    click.echo(f"registered: {found.shots} shots, {found.references} reference cutouts", err=True)

    if embedded:
        from worker import tasks
        from worker.app import app, start_process
        from worker.resources import Resources

        app.conf.task_always_eager = True
        start_process(Resources(settings))  # this process is the worker, with these settings
        started = time.monotonic()
        sent = sweep.enqueue_shots(settings.database_url, _eager_sender(tasks.segment_shot), settings.requeue_after_seconds)
        sweep.enqueue_scoring(settings.database_url, _eager_sender(tasks.score_segmentation))
        click.echo(f"segmented {sent} shots in {time.monotonic() - started:.1f} s", err=True)
    else:
        from cutout.queue import SCORE_SEGMENTATION, SEGMENT_SHOT, make_celery

        app = make_celery(settings, "cutout-demo")
        sweep.enqueue_shots(settings.database_url, lambda i: app.send_task(SEGMENT_SHOT, args=[i]), settings.requeue_after_seconds)
        _wait_for_workers(settings.database_url, timeout)
        sweep.enqueue_scoring(settings.database_url, lambda i: app.send_task(SCORE_SEGMENTATION, args=[i]))

    report = needs_cutout(settings.database_url, Rule.from_settings(settings), include_all=True)
    report["garments"] = [g for g in report["garments"] if g["garment_id"] in garments]
    click.echo(format_table(report, names=garments).replace("Worst first:", "The sample garments, worst first:", 1))
    click.echo("\nThe samples' garment ids:\n" + "\n".join(f"  {name:16} {gid}" for gid, name in garments.items()))
    if settings.bucket.startswith("file://"):
        results = Path(settings.bucket[len("file://"):]) / naming.RESULTS_PREFIX
        click.echo(f"\nmasks, cutouts and overlays: {results}/<model-version>/")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    click.echo(_review_instructions(settings))
