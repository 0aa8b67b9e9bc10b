"""Event-driven intake on moto (S3 notifications delivered to SQS, over HTTP): an upload is
registered and enqueued through its notification with no sweep; a notification lost while
the producer was down is caught by the reconciliation sweep, which on a known bucket writes
nothing and draws no id."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import boto3
import pytest
from sqlalchemy import select, text

from cutout import db, naming
from cutout.db import session_scope
from cutout.schema import Shot
from demo import synthetic
from tests.integration.conftest import ROOT, run_cli, wait_for


@pytest.fixture
def notified(fleet_env, empty_db, s3_endpoint):
    """A bucket of its own whose ObjectCreated events go to an SQS queue, and an env using them."""
    from cutout.storage import S3Storage

    db.upgrade(empty_db)
    name = f"events-{uuid.uuid4().hex[:8]}"
    storage = S3Storage(name, s3_endpoint)
    storage.client.create_bucket(Bucket=name)
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    storage.client.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    env = {**fleet_env, "CUTOUT_DATABASE_URL": empty_db, "CUTOUT_BUCKET": name, "CUTOUT_S3_ENDPOINT_URL": s3_endpoint,
           "CUTOUT_EVENTS_QUEUE_URL": queue_url, "CUTOUT_QUEUE": f"events-{uuid.uuid4().hex[:6]}",
           "CUTOUT_POLL_SECONDS": "3600"}  # no sweep but the first, at start: only events can register
    return env, storage, sqs, queue_url


def shots(url):
    with session_scope(url) as s:
        return {row.key: row.enqueued_at for row in s.execute(select(Shot.key, Shot.enqueued_at))}


def rejected(url):
    from cutout.schema import Rejection

    with session_scope(url) as s:
        return dict(s.execute(select(Rejection.key, Rejection.reason)).all())


def start_producer(env):
    return subprocess.Popen([sys.executable, "-m", "cutout.cli", "produce"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_an_upload_reaches_the_queue_through_its_notification(notified):
    env, storage, _, _ = notified
    url = env["CUTOUT_DATABASE_URL"]
    producer = start_producer(env)
    try:
        time.sleep(3)  # past the start-up sweep of the empty bucket
        gid = synthetic.upload_garment(storage, "event-1", seed=3, views=("Front",), references=(), size=(96, 64))
        uploaded = time.monotonic()
        key = naming.shot_key(gid, "Front")
        wait_for(lambda: shots(url).get(key) is not None, timeout=60, what="the announced shot enqueued")
        print(f"upload to enqueued through the notification: {time.monotonic() - uploaded:.2f} s")
        storage.put(f"shots/{gid}_Left.png", b"not even a png", "image/png")
        wait_for(lambda: rejected(url), timeout=60, what="the misnamed key recorded")
        assert "Left" in rejected(url)[f"shots/{gid}_Left.png"]
    finally:
        producer.terminate()
        producer.wait(30)
    assert producer.returncode == 0, producer.stderr.read()[-2000:]


def test_a_lost_notification_is_caught_by_reconciliation_which_costs_nothing_when_all_is_known(notified):
    env, storage, sqs, queue_url = notified
    url = env["CUTOUT_DATABASE_URL"]
    gid = synthetic.upload_garment(storage, "event-lost", seed=4, views=("Front", "Back"), references=(), size=(96, 64))
    sqs.purge_queue(QueueUrl=queue_url)  # the producer was down and the notifications are gone
    producer = start_producer(env)
    try:
        wait_for(lambda: len([k for k, at in shots(url).items() if gid in k and at]) == 2, timeout=60,
                 what="reconciliation at start")
    finally:
        producer.terminate()
        producer.wait(30)
    with session_scope(url) as s:
        before = s.execute(text("SELECT last_value FROM shots_id_seq")).scalar_one()
    for _ in range(5):
        run_cli(env, "produce", "--once")
    with session_scope(url) as s:
        after = s.execute(text("SELECT last_value FROM shots_id_seq")).scalar_one()
    assert after == before, "sweeps over known keys draw no ids"


def test_minio_notifications_on_a_redis_list_reach_the_queue(fleet_env, empty_db, s3_endpoint):
    """MinIO's Redis target (access format, as compose configures it), played by pushing its
    exact event shape onto a real Redis list: the shot is registered and enqueued without a
    sweep, and the event leaves the list (and its processing list) only once registered."""
    import json

    import redis

    from cutout.storage import S3Storage
    from tests.integration.conftest import REDIS_URL

    db.upgrade(empty_db)
    name = f"minio-{uuid.uuid4().hex[:8]}"
    storage = S3Storage(name, s3_endpoint)
    storage.client.create_bucket(Bucket=name)
    events = f"cutout-test-events-{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(REDIS_URL)
    env = {**fleet_env, "CUTOUT_DATABASE_URL": empty_db, "CUTOUT_BUCKET": name, "CUTOUT_S3_ENDPOINT_URL": s3_endpoint,
           "CUTOUT_EVENTS_QUEUE_URL": f"{REDIS_URL}?list={events}", "CUTOUT_QUEUE": f"minio-{uuid.uuid4().hex[:6]}",
           "CUTOUT_POLL_SECONDS": "3600"}
    producer = start_producer(env)
    try:
        time.sleep(3)  # past the start-up sweep of the empty bucket
        gid = synthetic.upload_garment(storage, "minio-1", seed=5, views=("Back",), references=(), size=(96, 64))
        key = naming.shot_key(gid, "Back")
        head = storage.client.head_object(Bucket=name, Key=key)
        client.rpush(events, json.dumps([{"Event": [{
            "eventVersion": "2.0", "eventSource": "minio:s3", "eventName": "s3:ObjectCreated:Put",
            "s3": {"bucket": {"name": name}, "object": {"key": key, "size": head["ContentLength"],
                                                         "eTag": head["ETag"].strip('"')}}}],
            "EventTime": "2026-11-29T21:00:00.000Z"}]))
        pushed = time.monotonic()
        wait_for(lambda: shots(empty_db).get(key) is not None, timeout=30, what="the announced shot enqueued")
        print(f"MinIO event to enqueued: {time.monotonic() - pushed:.2f} s")
        wait_for(lambda: client.llen(events) == 0 and client.llen(f"{events}:processing") == 0, timeout=10,
                 what="the event acknowledged")
    finally:
        producer.terminate()
        producer.wait(30)
        client.delete(events, f"{events}:processing")
    assert producer.returncode == 0, producer.stderr.read()[-2000:]
