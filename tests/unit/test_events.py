"""What a store's notification names: S3's records (SQS) and MinIO's access format (Redis)."""

import json

import pytest

from producer.events import RedisListEvents, objects_in


def record(name, key, etag="abc", size=7):
    return {"eventName": name, "s3": {"bucket": {"name": "studio"}, "object": {"key": key, "eTag": etag, "size": size}}}


def test_s3_records_name_created_objects_only():
    body = json.dumps({"Records": [record("ObjectCreated:Put", "shots/a+b_Front.png", '"e1"'),
                                   record("ObjectRemoved:Delete", "shots/c_Front.png")]})
    (obj,) = objects_in(body)
    assert (obj.key, obj.etag, obj.size) == ("shots/a b_Front.png", "e1", 7)


def test_minio_access_format_is_read_the_same():
    body = json.dumps([{"Event": [record("s3:ObjectCreated:Put", "shots/x_Back.png", "e2", 9)],
                        "EventTime": "2026-11-29T21:00:00Z"}])
    (obj,) = objects_in(body)
    assert (obj.key, obj.etag, obj.size) == ("shots/x_Back.png", "e2", 9)


@pytest.mark.parametrize("body", ["not json", json.dumps({"Event": "s3:TestEvent"}), json.dumps([{"x": 1}]), "[1]"])
def test_anything_else_is_ignored(body):
    assert objects_in(body) == []


def test_a_redis_url_must_name_its_list():
    from cutout.config import ConfigError

    with pytest.raises(ConfigError, match=r"\?list=KEY"):
        RedisListEvents("redis://:secret@127.0.0.1:6379/0")
