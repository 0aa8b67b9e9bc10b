"""What happens to one shot: the body of the worker's tasks, kept out of Celery so that the
embedded demo and the tests run exactly the same code.

Every step is safe to repeat: a shot already done for this model and content is skipped,
outputs are overwritten in place under deterministic keys, and the segmentation row is
inserted with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select, update

from cutout import imageio, naming
from cutout.config import Settings
from cutout.db import insert, session_scope
from cutout.metrics import dice
from cutout.schema import ModelVersion, Reference, Segmentation, Shot
from cutout.storage import NotFound, storage_from_settings

log = logging.getLogger(__name__)


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying with backoff: the network, S3 or the database hiccuped."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError
    from sqlalchemy.exc import InterfaceError, OperationalError

    return (BotoConnectionError, HTTPClientError, OperationalError, InterfaceError, ConnectionError, TimeoutError)


class ModelUnavailable(RuntimeError):
    """The worker cannot load its model: a deployment problem, not the shot's. The shot stays queued."""


@dataclass
class Context:
    """Per-process resources, built lazily so nothing is created in a Celery parent before fork."""

    settings: Settings
    pid: int = field(default_factory=os.getpid)
    _storage: object = None
    _segmenter: object = None
    _segmenter_location: Path | None = None
    _model_checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.settings.require("database_url").database_url

    @property
    def storage(self):
        if self._storage is None:
            self._storage = storage_from_settings(self.settings)
        return self._storage

    def segmenter(self):
        """The model to use now: the promoted one if the database names one, else CUTOUT_MODEL.

        Checked at most every model_check_seconds, so a newly promoted model is picked up by
        running workers without a restart.
        """
        with self._lock:
            now = time.monotonic()
            if self._segmenter is None or now - self._model_checked > self.settings.model_check_seconds:
                self._model_checked = now
                wanted = self._current_model_location()
                if self._segmenter is None or wanted != self._segmenter_location:
                    self._segmenter = self._load(wanted)
                    self._segmenter_location = wanted
            return self._segmenter

    def _current_model_location(self) -> Path:
        with session_scope(self.url) as session:
            location = session.execute(
                select(ModelVersion.location).where(ModelVersion.is_current.is_(True))
            ).scalar_one_or_none()
        if location and Path(location).exists():
            return Path(location)
        return Path(self.settings.model_dir)

    def _load(self, location: Path):
        from dataclasses import replace

        from cutout import tfsetup
        from cutout.segment import Segmenter

        tfsetup.configure(self.settings.device, self.settings.tf_threads)
        segmenter = Segmenter.from_settings(replace(self.settings, model_dir=location))
        with session_scope(self.url) as session:
            session.execute(
                insert(session, ModelVersion).values(
                    version=segmenter.version, location=str(location),
                    params={"first": segmenter.first.meta.to_json() | {"training": None},
                            "second": segmenter.second.meta.to_json() | {"training": None} if segmenter.second else None},
                    metrics={"first": segmenter.first.meta.evaluation,
                             "second": segmenter.second.meta.evaluation if segmenter.second else None},
                ).on_conflict_do_nothing(index_elements=["version"])
            )
        log.info("model %s loaded from %s", segmenter.version, location)
        return segmenter


_context: Context | None = None


def context() -> Context:
    """This process's Context; a forked child gets a fresh one, never its parent's."""
    global _context
    if _context is None or _context.pid != os.getpid():
        _context = Context(Settings.from_env())
    return _context


def mark_failed(url: str, shot_id: int, reason: str) -> None:
    with session_scope(url) as session:
        session.execute(update(Shot).where(Shot.id == shot_id).values(
            status="failed", failure_reason=reason[:2000], finished_at=datetime.now(timezone.utc)))
    log.warning("shot %s failed: %s", shot_id, reason)


def _model_version_id(session, version: str) -> int:
    return session.execute(select(ModelVersion.id).where(ModelVersion.version == version)).scalar_one()


def _reference_dice(ctx: Context, garment_id: str, view: str, mask) -> tuple[float | None, str | None, str | None]:
    """(Dice, reference ETag, problem) against the view's reference cutout, if one exists."""
    with session_scope(ctx.url) as session:
        ref = session.execute(select(Reference.key, Reference.etag).where(
            Reference.garment_id == garment_id, Reference.view == view)).first()
    if ref is None:
        return None, None, None
    try:
        truth = imageio.decode_png(ctx.storage.get(ref.key), ctx.settings.max_pixels, want="cutout")
    except (imageio.BadImage, NotFound) as exc:
        return None, ref.etag, f"reference {ref.key} unusable: {exc}"
    if truth.shape != mask.shape:
        return None, ref.etag, f"reference {ref.key} is {truth.shape[1]}x{truth.shape[0]}, the shot {mask.shape[1]}x{mask.shape[0]}"
    return dice(mask, truth), ref.etag, None


def process_shot(ctx: Context, shot_id: int) -> str:
    """Segment one shot and record the result. Returns what happened, for logs and tests."""
    timings = {}
    try:
        segmenter = ctx.segmenter()  # load (or refresh) before claiming, so the claim is short
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailable(f"cannot load the model: {exc}") from exc
    with session_scope(ctx.url) as session:
        shot = session.get(Shot, shot_id)
        if shot is None:
            log.warning("shot %s does not exist (database reset?); nothing to do", shot_id)
            return "missing"
        model_id = _model_version_id(session, segmenter.version)
        done = session.execute(select(Segmentation.id).where(
            Segmentation.shot_id == shot_id, Segmentation.model_version_id == model_id,
            Segmentation.shot_etag == shot.etag)).first()
        if done is not None:
            shot.status, shot.failure_reason = "done", None
            return "already-done"
        shot.status, shot.attempts = "processing", shot.attempts + 1
        shot.started_at, shot.failure_reason = datetime.now(timezone.utc), None
        key, etag, garment_id, view = shot.key, shot.etag, shot.garment_id, shot.view

    t = time.perf_counter()
    try:
        data = ctx.storage.get(key)
    except NotFound:
        mark_failed(ctx.url, shot_id, f"{key} is no longer in the bucket")
        return "failed"
    timings["download_s"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        rgb = imageio.decode_png(data, ctx.settings.max_pixels, want="photo")
    except imageio.BadImage as exc:
        mark_failed(ctx.url, shot_id, f"bad input: {exc}")
        return "failed"
    timings["decode_s"] = time.perf_counter() - t

    result = segmenter.segment(rgb)
    timings.update(result.timings)

    t = time.perf_counter()
    keys = naming.result_keys(segmenter.version, garment_id, view)
    outputs = {
        "first_mask": (imageio.encode_png(result.first_mask), "image/png"),
        "mask": (imageio.encode_png(result.mask), "image/png"),
        "cutout": (imageio.encode_png(imageio.rgba_cutout(rgb, result.mask)), "image/png"),
        "overlay": (imageio.encode_jpeg(imageio.overlay(rgb, result.mask)), "image/jpeg"),
    }
    timings["encode_s"] = time.perf_counter() - t
    t = time.perf_counter()
    for name, (blob, content_type) in outputs.items():
        ctx.storage.put(keys[name], blob, content_type)
    timings["upload_s"] = time.perf_counter() - t

    score, ref_etag, problem = _reference_dice(ctx, garment_id, view, result.mask)
    parts = dict(result.confidence_parts)
    if problem:
        parts["reference_problem"] = problem
    with session_scope(ctx.url) as session:
        session.execute(insert(session, Segmentation).values(
            shot_id=shot_id, model_version_id=model_id, shot_etag=etag,
            width=rgb.shape[1], height=rgb.shape[0],
            first_mask_key=keys["first_mask"], mask_key=keys["mask"], cutout_key=keys["cutout"], overlay_key=keys["overlay"],
            threshold_first=result.threshold_first, threshold_second=result.threshold_second,
            confidence=float(result.confidence), confidence_parts=parts,
            dice=score, dice_reference_etag=ref_etag, score_requested_etag=ref_etag,
            timings={k: round(v, 4) for k, v in timings.items()},
        ).on_conflict_do_nothing(index_elements=["shot_id", "model_version_id", "shot_etag"]))
        # Only the content we processed is done: a re-upload meanwhile has reset the row to pending.
        session.execute(update(Shot).where(Shot.id == shot_id, Shot.etag == etag).values(
            status="done", failure_reason=None, finished_at=datetime.now(timezone.utc)))
    log.info("shot %s %s: confidence %.3f%s", shot_id, key, result.confidence,
             f", Dice {score:.4f}" if score is not None else "")
    return "done"


def score_segmentation(ctx: Context, segmentation_id: int) -> float | None:
    """Dice of an existing mask against the view's (new) reference, without re-running the model."""
    with session_scope(ctx.url) as session:
        row = session.execute(
            select(Segmentation.mask_key, Shot.garment_id, Shot.view)
            .join(Shot, Shot.id == Segmentation.shot_id).where(Segmentation.id == segmentation_id)).first()
    if row is None:
        return None
    mask = imageio.decode_png(ctx.storage.get(row.mask_key), ctx.settings.max_pixels, want="cutout")
    score, ref_etag, problem = _reference_dice(ctx, row.garment_id, row.view, mask)
    with session_scope(ctx.url) as session:
        seg = session.get(Segmentation, segmentation_id)
        seg.dice, seg.dice_reference_etag = score, ref_etag
        parts = dict(seg.confidence_parts or {})
        parts.pop("reference_problem", None)
        if problem:
            parts["reference_problem"] = problem
        seg.confidence_parts = parts
    return score
