"""Where promoted bundles live, so that every worker on every machine runs the same model.

A store is a prefix in object storage (``s3://bucket/prefix/``; by default the studio
bucket's ``models/``) or a local folder (one machine; the demo and tests). Promotion publishes
a bundle under ``<store>/<version>/`` with ``MANIFEST.json`` (the SHA-256 of every file)
written last, and the database then records its location and the manifest's own hash.

A worker fetches a version into its local cache once: each file is checked against the
manifest, the manifest against the database, and the weights against the version's name
(which is their hash); only then is the folder moved into place, so a half-downloaded or
tampered bundle is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from cutout.config import DEFAULT_MODEL_STORE, Settings
from cutout.errors import OperationalError

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"


class ModelStoreError(OperationalError, ValueError):
    """A bundle in the store cannot be used (missing, incomplete or not what the database says)."""


def store_of(settings: Settings) -> str:
    """CUTOUT_MODEL_STORE, else the bucket's models/ prefix (or folder), else ./model-store."""
    if settings.model_store:
        return settings.model_store
    if settings.bucket and settings.bucket.startswith("file://"):
        return str(Path(settings.bucket[len("file://"):]) / "models")
    if settings.bucket:
        return f"s3://{settings.bucket}/models/"
    return str(DEFAULT_MODEL_STORE)


def _split_s3(location: str) -> tuple[str, str]:
    bucket, _, prefix = location[len("s3://"):].partition("/")
    if not bucket:
        raise ModelStoreError(f"{location!r} names no bucket; use s3://BUCKET/PREFIX/")
    return bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_of(bundle: Path) -> bytes:
    files = {p.relative_to(bundle).as_posix(): _sha256(p.read_bytes())
             for p in sorted(Path(bundle).rglob("*")) if p.is_file() and p.name != MANIFEST}
    return json.dumps({"files": files}, indent=1, sort_keys=True).encode()


def publish(bundle: Path, version: str, store: str, endpoint_url: str | None = None) -> tuple[str, str]:
    """Put a bundle in the store under its version; (its location, the manifest's SHA-256)."""
    from cutout.storage import S3Storage

    manifest = manifest_of(bundle)
    if store.startswith("s3://"):
        bucket, prefix = _split_s3(store)
        storage = S3Storage(bucket, endpoint_url)
        for name in json.loads(manifest)["files"]:
            storage.put(f"{prefix}{version}/{name}", (Path(bundle) / name).read_bytes(), "application/octet-stream")
        storage.put(f"{prefix}{version}/{MANIFEST}", manifest, "application/json")  # last: the bundle is whole
        return f"s3://{bucket}/{prefix}{version}/", _sha256(manifest)
    target = Path(store) / version
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        shutil.copytree(bundle, partial, dirs_exist_ok=True)
        (partial / MANIFEST).write_bytes(manifest)
        partial.rename(target)  # workers never see half a bundle
    if not (target / MANIFEST).exists():  # published before bundles had manifests
        (target / MANIFEST).write_bytes(manifest_of(target))
    return str(target), _sha256((target / MANIFEST).read_bytes())


def fetch(location: str, manifest_sha256: str | None, cache: Path, endpoint_url: str | None = None) -> Path:
    """A local folder holding the bundle at `location`, downloaded and verified once per cache."""
    from cutout.bundle import version as bundle_version
    from cutout.storage import NotFound, S3Storage

    if not location.startswith("s3://"):
        return Path(location)
    bucket, prefix = _split_s3(location)
    version = prefix.rstrip("/").rsplit("/", 1)[-1]
    target = Path(cache) / version
    if (target / MANIFEST).exists():
        return target
    storage = S3Storage(bucket, endpoint_url)
    try:
        manifest = storage.get(prefix + MANIFEST)
    except NotFound:
        raise ModelStoreError(f"{location} has no {MANIFEST}: not a published bundle") from None
    if manifest_sha256 and _sha256(manifest) != manifest_sha256:
        raise ModelStoreError(f"{location}{MANIFEST} is not the one the database recorded at promotion")
    Path(cache).mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=cache))
    try:
        for name, digest in json.loads(manifest)["files"].items():
            data = storage.get(prefix + name)
            if _sha256(data) != digest:
                raise ModelStoreError(f"{location}{name} does not match its manifest")
            (partial / name).parent.mkdir(parents=True, exist_ok=True)
            (partial / name).write_bytes(data)
        if version != bundle_version(partial):
            raise ModelStoreError(f"the weights at {location} are not version {version}")
        (partial / MANIFEST).write_bytes(manifest)  # marks the cached copy complete
        try:
            os.rename(partial, target)
        except OSError:  # another process of this machine got there first: theirs is as good
            if not (target / MANIFEST).exists():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("model %s fetched from %s into %s", version, location, target)
    return target
