"""Model identity: what a model version is called, which one is current, and how versions
are registered and promoted. The only module that answers these questions.

A *stage* is a directory with ``model.json`` (architecture, normalisation, tuned threshold,
training and evaluation figures) and ``model.weights.h5``. A *bundle* holds ``first/`` and
optionally ``second/``; ``CUTOUT_MODEL`` and the model store hold bundles.

A version names the weights, not the files: ``<name>-<hash of the weight arrays>`` for a
stage; a bundle's version adds ``+<second stage's hash>`` when the second pass runs and
``-tta`` when flip test-time augmentation is on, so results of different set-ups never
share a key. No TensorFlow here: h5py reads the arrays.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cutout.db import insert
from cutout.schema import ModelVersion

log = logging.getLogger(__name__)

META = "model.json"
WEIGHTS = "model.weights.h5"


def weights_digest(directory: Path) -> str:
    """A hash of the layer weights alone: the same model hashes the same whether or not the
    file also carries optimizer state, and whatever HDF5 put around the arrays."""
    import h5py

    h = hashlib.sha256()
    with h5py.File(Path(directory) / WEIGHTS, "r") as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in sorted(n for n in names if not n.startswith("optimizer")):
            h.update(name.encode())
            h.update(f[name][()].tobytes())
    return h.hexdigest()


def stage_meta(directory: Path) -> dict:
    path = Path(directory) / META
    if not path.exists():
        raise FileNotFoundError(f"no {META} in {directory}: not a cutout model directory")
    return json.loads(path.read_text())


def stage_version(directory: Path) -> str:
    """Stable across machines, different for every retrain."""
    return f"{stage_meta(directory)['name']}-{weights_digest(directory)[:10]}"


def combine(first: str, second: str | None = None, tta: bool = False) -> str:
    """A bundle's version from its stages' versions, as the segmenter runs it."""
    version = first
    if second is not None:
        version += "+" + second.rsplit("-", 1)[1]
    return version + ("-tta" if tta else "")


def bundle_stages(path: Path) -> tuple[Path, Path | None]:
    """(first, second or None) stage directories of a bundle or of a lone first-pass stage."""
    path = Path(path)
    if (path / META).exists():
        return path, None
    first = path / "first"
    if not (first / META).exists():
        raise FileNotFoundError(f"{path} holds neither {META} nor first/{META}: set CUTOUT_MODEL to a model directory")
    second = path / "second"
    return first, (second if (second / META).exists() else None)


def bundle_version(path: Path, second_pass: bool = True, tta: bool = False) -> str:
    first, second = bundle_stages(path)
    return combine(stage_version(first), stage_version(second) if second is not None and second_pass else None, tta)


def current(session: Session) -> tuple[str, str | None] | None:
    """(location, manifest SHA-256) of the promoted bundle, or None while nothing was promoted."""
    row = session.execute(select(ModelVersion.location, ModelVersion.params)
                          .where(ModelVersion.is_current.is_(True))).first()
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
    stages = dict(zip(("first", "second"), bundle_stages(Path(source or location))))
    metas = {stage: stage_meta(d) for stage, d in stages.items() if d is not None}
    params = {stage: {k: v for k, v in meta.items() if k not in ("training", "evaluation")} for stage, meta in metas.items()}
    session.execute(insert(session, ModelVersion).values(
        version=version, location=str(location), params=params, release_threshold=release_threshold(params),
        metrics={stage: meta.get("evaluation", {}) for stage, meta in metas.items()},
    ).on_conflict_do_nothing(index_elements=["version"]))
    return session.execute(select(ModelVersion.id).where(ModelVersion.version == version)).scalar_one()


def promote(session: Session, bundle: Path, store: str, holdout: dict, endpoint_url: str | None = None) -> tuple[str, str]:
    """Publish a bundle to the model store and make it the current model, with its holdout
    figures; every worker switches to it at its next model check. (version, location)."""
    from cutout.model_store import publish

    version = bundle_version(bundle)
    location, digest = publish(bundle, version, str(store), endpoint_url)
    register(session, version, location, source=bundle)
    session.execute(update(ModelVersion).where(ModelVersion.version != version).values(is_current=False))
    row = session.execute(select(ModelVersion).where(ModelVersion.version == version)).scalar_one()
    row.location, row.is_current, row.promoted_at = location, True, datetime.now(timezone.utc)
    row.params = {**row.params, "manifest_sha256": digest}
    row.metrics = {**row.metrics, "holdout": holdout}
    log.info("promoted %s to %s (%s)", version, location, holdout)
    return version, location
