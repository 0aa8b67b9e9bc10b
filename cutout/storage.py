"""Object storage: S3 (AWS, MinIO, moto; boto3 with an optional endpoint URL) or a local
folder standing in for a bucket (the embedded demo). Both list, get and put by key."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

from cutout.config import ConfigError


@dataclass(frozen=True)
class StoredObject:
    key: str
    etag: str
    size: int


class NotFound(KeyError):
    pass


class Storage(Protocol):
    bucket: str

    def list(self, prefix: str) -> Iterator[StoredObject]: ...
    def get(self, key: str) -> bytes: ...
    def put(self, key: str, data: bytes, content_type: str) -> None: ...


class S3Storage:
    def __init__(self, bucket: str, endpoint_url: str | None = None, client=None):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        # Standard retry mode retries throttling and 5xx with backoff inside boto3 itself.
        self.client = client or boto3.client(
            "s3", endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60),
        )

    def list(self, prefix: str) -> Iterator[StoredObject]:
        # The whole prefix every sweep: UUID keys carry no time order, so no StartAfter watermark.
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield StoredObject(obj["Key"], obj["ETag"].strip('"'), obj["Size"])

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise NotFound(key) from None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)


class LocalStorage:
    """A folder laid out like the bucket. ETags are MD5s, as S3's are for single-part uploads."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.bucket = f"file://{self.root.resolve()}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key escapes the storage folder: {key!r}")
        return path

    def list(self, prefix: str) -> Iterator[StoredObject]:
        base = self.root / prefix
        # A folder prefix ("cutouts/") that is not there yet holds nothing: walking its parent
        # instead would walk (and stat) the whole bucket.
        folder = base if base.is_dir() or prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                data = path.read_bytes()
                yield StoredObject(key, hashlib.md5(data).hexdigest(), len(data))

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(key) from None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One temporary file per writer, process and thread: the worker uploads from threads.
        tmp = path.with_name(path.name + f".tmp{os.getpid()}-{threading.get_ident()}")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a reader never sees half a file


def storage_from_settings(settings) -> Storage:
    if not settings.bucket:
        raise ConfigError("not configured: set CUTOUT_BUCKET (an S3 bucket name, or file:///path)")
    if settings.bucket.startswith("file://"):
        return LocalStorage(Path(settings.bucket[len("file://"):]))
    return S3Storage(settings.bucket, settings.s3_endpoint_url)
