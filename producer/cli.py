"""`cutout produce`."""

from __future__ import annotations

import json

import click



@click.command()
@click.option("--once", is_flag=True, help="One sweep, print its summary as JSON, exit.")
@click.option("--interval", type=float, help="Seconds between sweeps (default CUTOUT_POLL_SECONDS).")
@click.pass_obj
def produce(settings, once, interval):
    """Watch the bucket: register new shots and cutouts, enqueue each new shot exactly once."""
    from dataclasses import replace

    from producer.watch import Producer

    if interval is not None:
        settings = replace(settings, poll_seconds=interval)
    producer = Producer(settings)
    if once:
        click.echo(json.dumps(producer.sweep_once()))
    else:
        producer.run_forever()
