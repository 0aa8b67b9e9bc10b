"""New objects as the store announces them: S3 event notifications delivered to an SQS queue
(AWS; moto in the tests), or MinIO's bucket notifications pushed onto a Redis list (its Redis
target in "access" format; the compose stack). The producer registers and enqueues what an
event names at once, without listing the bucket; its periodic reconciliation sweep stays the
safety net for events lost while it was down or never sent."""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote_plus

from cutout.storage import StoredObject

log = logging.getLogger(__name__)


def _records(body: str) -> list[dict]:
    """The event records of one notification: S3's {"Records": [...]}, or MinIO's access
    format [{"Event": [...], "EventTime": ...}, ...]."""
    message = json.loads(body)
    if isinstance(message, list):
        return [record for entry in message for record in entry.get("Event", [])]
    return message.get("Records", [])


def objects_in(body: str) -> list[StoredObject]:
    """The created objects a notification names (none for s3:TestEvent or anything else)."""
    try:
        records = _records(body)
    except (ValueError, AttributeError, TypeError):
        log.warning("ignored a notification that is not S3 event JSON: %.200s", body)
        return []
    found = []
    for record in records:
        # S3 names it "ObjectCreated:Put", MinIO "s3:ObjectCreated:Put".
        if not str(record.get("eventName", "")).removeprefix("s3:").startswith("ObjectCreated"):
            continue
        obj = record.get("s3", {}).get("object", {})
        if "key" in obj:
            # S3 URL-encodes keys in events (a space arrives as "+").
            found.append(StoredObject(unquote_plus(obj["key"]), str(obj.get("eTag", "")).strip('"'), int(obj.get("size", 0))))
    return found


def events_from_settings(settings):
    """The notification source CUTOUT_EVENTS_QUEUE_URL names: redis://…?list=KEY (MinIO's
    Redis target) or an SQS queue URL."""
    url = settings.events_queue_url
    if url.startswith(("redis://", "rediss://")):
        return RedisListEvents(url)
    return SqsEvents(url, settings.s3_endpoint_url)


class SqsEvents:
    def __init__(self, queue_url: str, endpoint_url: str | None = None, client=None):
        import boto3

        self.queue_url = queue_url
        self.client = client or boto3.client("sqs", endpoint_url=endpoint_url)

    def receive(self, wait_seconds: float) -> tuple[list[StoredObject], list[str]]:
        """(objects announced, receipt handles to acknowledge once they are registered)."""
        response = self.client.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=max(0, min(20, int(wait_seconds))))
        objects, handles = [], []
        for message in response.get("Messages", []):
            handles.append(message["ReceiptHandle"])
            objects += objects_in(message.get("Body", ""))
        return objects, handles

    def acknowledge(self, handles: list[str]) -> None:
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start:start + 10])]
            self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)


class RedisListEvents:
    """MinIO's Redis notification target ("access" format) RPUSHes each event onto a list. An
    event is moved to KEY:processing while it is registered and removed only after, so one
    taken by a producer that then died goes back on the list when a producer starts again."""

    def __init__(self, url: str, client=None):
        import redis
        from urllib.parse import parse_qs, urlsplit, urlunsplit

        parts = urlsplit(url)
        key = parse_qs(parts.query).get("list", [""])[0]
        if not key:
            from cutout.config import ConfigError

            raise ConfigError(f"CUTOUT_EVENTS_QUEUE_URL={parts._replace(netloc=parts.hostname or '').geturl()!r} "
                              "names no list: add ?list=KEY (MinIO's MINIO_NOTIFY_REDIS_KEY_…)")
        self.key, self.processing = key, f"{key}:processing"
        self.client = client or redis.Redis.from_url(urlunsplit(parts._replace(query="")))
        while self.client.lmove(self.processing, self.key, "RIGHT", "LEFT") is not None:
            pass  # left by a producer that died before registering them

    def receive(self, wait_seconds: float) -> tuple[list[StoredObject], list[bytes]]:
        """(objects announced, the events to acknowledge once they are registered)."""
        first = self.client.blmove(self.key, self.processing, max(0.1, wait_seconds), "LEFT", "RIGHT")
        if first is None:
            return [], []
        handles = [first]
        while len(handles) < 100 and (more := self.client.lmove(self.key, self.processing, "LEFT", "RIGHT")) is not None:
            handles.append(more)
        objects = [obj for handle in handles for obj in objects_in(handle.decode("utf-8", "replace"))]
        return objects, handles

    def acknowledge(self, handles: list[bytes]) -> None:
        pipe = self.client.pipeline()
        for handle in handles:
            pipe.lrem(self.processing, 1, handle)
        pipe.execute()
