"""The commands that belong to the shared package: database, reports, shots and the queue's metrics."""

from __future__ import annotations

import json

import click



@click.group()
def db():
    """Database schema (Alembic migrations under migrations/)."""


@db.command()
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def upgrade(settings, revision):
    """Migrate CUTOUT_DATABASE_URL to REVISION (under a lock: concurrent runs wait their turn)."""
    from cutout import db as database

    settings.require("database_url")
    database.upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@click.group()
def report():
    """Reports for the cutout team."""


@report.command("needs-cutout")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--min-confidence", type=float,
              help="Release views at or above this confidence, overriding each model's own release rule "
                   "(default CUTOUT_MIN_CONFIDENCE, else the rule).")
@click.option("--min-dice", type=float, help="Default CUTOUT_MIN_DICE.")
@click.option("--max-height-spread", type=click.FloatRange(min=0),
              help="Hold back a garment whose views' mask heights differ by more than this, as log(tallest / "
                   "shortest) (default CUTOUT_MAX_HEIGHT_SPREAD, else 0.35).")
@click.option("--max-size-spread", type=click.FloatRange(min=0),
              help="Hold back a garment whose views' mask sizes for their height (area / height²) differ by more "
                   "than this, as log(largest / smallest) (default CUTOUT_MAX_SIZE_SPREAD, else 0.30).")
@click.option("--all", "include_all", is_flag=True, help="List every garment: also those waiting, reviewed and released.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many garments (a page); default all.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many garments first.")
@click.pass_obj
def needs_cutout(settings, fmt, min_confidence, min_dice, max_height_spread, max_size_spread, include_all, limit, offset):
    """Which garments are released and which need a person to cut them out (worst first, with why)."""
    from cutout.release import Rule
    from cutout.report import format_csv, format_table, needs_cutout as build

    settings.require("database_url")
    rule = Rule.from_settings(settings, min_confidence, min_dice, max_height_spread, max_size_spread)
    data = build(settings.database_url, rule, include_all, limit=limit, offset=offset)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "csv":
        click.echo(format_csv(data), nl=False)
    else:
        click.echo(format_table(data))


@click.group()
def shots():
    """Operations on shots."""


@shots.command()
@click.option("--reason", default="", help="Only shots whose failure reason contains this text.")
@click.pass_obj
def retry(settings, reason):
    """Put failed shots back to pending, so the producer's next sweep enqueues them again."""
    from cutout import lifecycle
    from cutout.db import session_scope

    settings.require("database_url")
    with session_scope(settings.database_url) as session:
        n = len(lifecycle.retry(session, reason))
    click.echo(f"{n} failed shots back to pending")


@shots.command()
@click.option("--stuck", is_flag=True, required=True,
              help="Shots processing, or sent, longer ago than --older-than without finishing.")
@click.option("--older-than", type=click.IntRange(min=1),
              help="Seconds; default a claim's lease (CUTOUT_TASK_SOFT_TIME_LIMIT + 90: the hard time limit and a "
                   "margin), past which no worker can still be running it, so a requeued shot is never processed "
                   "twice at once.")
@click.pass_obj
def requeue(settings, stuck, older_than):
    """Put stuck shots back to pending: their worker died (OOM, lost node) or their message was
    lost. The producer's next sweep sends them again. (The producer does this by itself for
    shots whose lease ran out, and for lost messages once the queue is empty.)"""
    from datetime import datetime, timedelta, timezone

    from cutout import lifecycle
    from cutout.db import session_scope

    settings.require("database_url")
    older_than = older_than or settings.lease_seconds
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than)
    with session_scope(settings.database_url) as session:
        garments = lifecycle.requeue_stuck(session, cutoff)
    click.echo(f"{len(garments)} stuck shots (older than {older_than} s) back to pending; "
               "the producer's next sweep sends them")


@click.command("queue-metrics")
@click.option("--port", type=click.IntRange(1, 65535), help="Default CUTOUT_METRICS_PORT.")
@click.pass_obj
def queue_metrics(settings, port):
    """Serve the segmentation queue's depth (cutout_queue_depth) to Prometheus until stopped:
    what an autoscaler or an alert watches. Measured at every scrape."""
    import signal
    import threading

    from cutout.monitoring import serve_queue_depth

    settings.require("broker_url")
    port = port or settings.metrics_port
    if not port:
        raise click.UsageError("give --port or set CUTOUT_METRICS_PORT")
    serve_queue_depth(settings, port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
