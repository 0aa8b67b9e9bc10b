"""New objects as the store announces them: S3 event notifications delivered to an SQS queue
(AWS; moto in the tests). The producer registers and enqueues what an event names at once,
without listing the bucket; its periodic reconciliation sweep stays the safety net for
events lost while it was down (SQS keeps them for days; a purge or a misconfiguration does not)."""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote_plus

from cutout.storage import StoredObject

log = logging.getLogger(__name__)


def objects_in(body: str) -> list[StoredObject]:
    """The created objects an S3 notification names (none for s3:TestEvent or anything else)."""
    try:
        records = json.loads(body).get("Records", [])
    except (ValueError, AttributeError):
        log.warning("ignored a notification that is not S3 event JSON: %.200s", body)
        return []
    found = []
    for record in records:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        obj = record.get("s3", {}).get("object", {})
        if "key" in obj:
            # S3 URL-encodes keys in events (a space arrives as "+").
            found.append(StoredObject(unquote_plus(obj["key"]), str(obj.get("eTag", "")).strip('"'), int(obj.get("size", 0))))
    return found


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
