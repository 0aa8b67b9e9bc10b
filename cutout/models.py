"""The model registry: which versions the database knows, which one is current, and how a
bundle is registered and promoted. The only module that answers "which model now"; a
bundle's version string is cutout.bundle's.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cutout import bundle
from cutout.db import insert
from cutout.schema import ModelVersion, Segmentation

log = logging.getLogger(__name__)


def current_row(session: Session) -> ModelVersion | None:
    """The promoted version's row, or None while nothing was promoted."""
    return session.execute(select(ModelVersion).where(ModelVersion.is_current.is_(True))).scalar_one_or_none()


def in_service(session: Session) -> int | None:
    """The id of the version the fleet runs now: the promoted one, else (nothing promoted,
    workers run CUTOUT_MODEL) the version of the newest segmentation; None before any."""
    row = current_row(session)
    if row is not None:
        return row.id
    return session.execute(select(Segmentation.model_version_id)
                           .order_by(Segmentation.id.desc()).limit(1)).scalar_one_or_none()


def current(session: Session) -> tuple[str, str | None] | None:
    """(location, manifest SHA-256) of the promoted bundle, or None while nothing was promoted."""
    row = current_row(session)
    return None if row is None else (row.location, (row.params or {}).get("manifest_sha256"))


def local_bundle(promoted: tuple[str, str | None] | None, settings) -> Path:
    """The local folder of the bundle to run: the promoted one (`current()`; fetched from the
    model store into this machine's cache once), else CUTOUT_MODEL. Called outside any
    transaction: a first fetch downloads the whole bundle."""
    from cutout.model_store import fetch

    if promoted is None:
        return Path(settings.model_dir)
    location, digest = promoted
    if not location.startswith("s3://") and not Path(location).exists():
        log.warning("the promoted model %s is not on this machine; using %s (set CUTOUT_MODEL_STORE to an "
                    "s3:// store every machine reaches)", location, settings.model_dir)
        return Path(settings.model_dir)
    return fetch(location, digest, settings.model_cache, settings.s3_endpoint_url)


def release_threshold(params: dict | None) -> float | None:
    """The release rule's threshold in a version's params (its last stage's), if it has one."""
    params = params or {}
    stage = params.get("second") or params.get("first") or {}
    return (stage.get("release") or {}).get("min_predicted_dice")


def register(session: Session, version: str, location: str | Path, source: Path | None = None) -> int:
    """Record a version (idempotent) with each stage's parameters and validation figures, read
    from the local folder `source` (default: `location` itself); its id."""
    stages = dict(zip(("first", "second"), bundle.stages(Path(source or location))))
    metas = {stage: bundle.stage_meta(d) for stage, d in stages.items() if d is not None}
    params = {stage: {k: v for k, v in meta.items() if k not in ("training", "evaluation")} for stage, meta in metas.items()}
    session.execute(insert(session, ModelVersion).values(
        version=version, location=str(location), params=params, release_threshold=release_threshold(params),
        metrics={stage: meta.get("evaluation", {}) for stage, meta in metas.items()},
    ).on_conflict_do_nothing(index_elements=["version"]))
    return session.execute(select(ModelVersion.id).where(ModelVersion.version == version)).scalar_one()


def promote(session: Session, path: Path, store: str, holdout: dict, endpoint_url: str | None = None) -> tuple[str, str]:
    """Publish a bundle to the model store and make it the current model, with its holdout
    figures; every worker switches to it at its next model check. (version, location)."""
    from cutout.model_store import publish

    version = bundle.version(path)
    location, digest = publish(path, version, str(store), endpoint_url)
    register(session, version, location, source=path)
    session.execute(update(ModelVersion).where(ModelVersion.version != version).values(is_current=False))
    row = session.execute(select(ModelVersion).where(ModelVersion.version == version)).scalar_one()
    row.location, row.is_current, row.promoted_at = location, True, datetime.now(timezone.utc)
    row.params = {**row.params, "manifest_sha256": digest}
    row.metrics = {**row.metrics, "holdout": holdout}
    log.info("promoted %s to %s (%s)", version, location, holdout)
    return version, location
