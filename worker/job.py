"""What happens to one shot: the body of the worker's tasks, kept out of Celery so that the
embedded demo and the tests run exactly the same code.

One transaction claims the shot and reads everything the job needs (the shot, its reference
cutout); the work runs outside any transaction; one transaction records the outcome.

Every step is safe to repeat: a shot already done for this model and content is skipped,
outputs are overwritten in place under deterministic keys, and the segmentation row is
inserted with ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import numpy as np
from sqlalchemy import select

from cutout import imageio, lifecycle, naming
from cutout.db import insert, session_scope
from cutout.metrics import dice
from cutout.schema import Reference, Segmentation, Shot, ShotStatus
from cutout.storage import NotFound
from worker import metrics
from worker.resources import Resources

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """What the job needs of the database, read in the claiming transaction."""

    key: str
    etag: str
    garment_id: str
    view: str
    reference: tuple[str, str] | None  # (key, etag) of the view's reference cutout


def _reference_of(session, garment_id: str, view: str) -> tuple[str, str] | None:
    row = session.execute(select(Reference.key, Reference.etag).where(
        Reference.garment_id == garment_id, Reference.view == view)).first()
    return None if row is None else (row.key, row.etag)


def _claim(session, shot_id: int, model_version_id: int, token: str, lease_seconds: float) -> Claimed | str:
    """The shot's job, claimed for this task (lifecycle.claim), or why not: "missing",
    "already-done" (this model did it for this content) or "busy" (another live task holds it,
    whatever duplicates the queue delivers)."""
    shot = session.get(Shot, shot_id)
    if shot is None:
        log.warning("shot %s does not exist (database reset?); nothing to do", shot_id)
        return "missing"
    done = session.execute(select(Segmentation.id).where(
        Segmentation.shot_id == shot_id, Segmentation.model_version_id == model_version_id,
        Segmentation.shot_etag == shot.etag)).first()
    if done is not None:
        if shot.status != ShotStatus.DONE:
            lifecycle.done(session, shot_id)
        return "already-done"
    if not lifecycle.claim(session, shot_id, token, lease_seconds):  # the loaded row's fields used below stay
        log.info("shot %s is held by another task until its lease ends; leaving it alone", shot_id)
        return "busy"
    return Claimed(shot.key, shot.etag, shot.garment_id, shot.view, _reference_of(session, shot.garment_id, shot.view))


def extend_lease(res: Resources, shot_id: int, token: str, seconds: float) -> None:
    """Keep holding the shot while this task waits `seconds` for its retry (and then runs)."""
    until = datetime.now(timezone.utc) + timedelta(seconds=seconds + res.settings.lease_seconds)
    with session_scope(res.url) as session:
        lifecycle.extend_lease(session, shot_id, token, until)


def mark_failed(res: Resources, shot_id: int, reason: str) -> None:
    with session_scope(res.url) as session:
        lifecycle.fail_shot(session, shot_id, reason)
    metrics.FAILURES.labels(metrics.failure_kind(reason)).inc()
    log.warning("shot %s failed: %s", shot_id, reason)


def _reference_dice(res: Resources, reference: tuple[str, str] | None, mask: np.ndarray):
    """(Dice, reference ETag, problem) of a mask against the view's reference cutout, if any."""
    if reference is None:
        return None, None, None
    key, etag = reference
    try:
        truth = imageio.decode_reference(res.storage.get(key), mask.shape, res.settings.max_pixels)
    except (imageio.BadImage, NotFound) as exc:
        return None, etag, f"reference {key} unusable: {exc}"
    return dice(mask, truth), etag, None


def _outputs(rgb: np.ndarray, prediction) -> dict[str, Callable[[], tuple[bytes, str]]]:
    """Each output's encoder, to run one after another while the previous ones upload."""
    return {
        "first_mask": lambda: (imageio.encode_png(prediction.first_mask), "image/png"),
        "mask": lambda: (imageio.encode_png(prediction.mask), "image/png"),
        "cutout": lambda: (imageio.encode_png(imageio.rgba_cutout(rgb, prediction.mask)), "image/png"),
        "overlay": lambda: (imageio.encode_jpeg(imageio.overlay(rgb, prediction.mask)), "image/jpeg"),
    }


def _write_outputs(res: Resources, rgb: np.ndarray, prediction, keys: dict[str, str], timings: dict) -> None:
    """Encode the four outputs and put them in the bucket, each upload started as soon as its
    file is encoded: the uploads wait on the network together, and while they do the child
    encodes the next file. Against a remote bucket four PUTs in a row cost four round trips of
    a core's idle time a shot. Returns when every upload has finished; raises the first upload's
    error after the others have ended (a retry then writes the same keys again)."""
    uploads, encoding = [], 0.0
    started = time.perf_counter()
    for name, encode in _outputs(rgb, prediction).items():
        t = time.perf_counter()
        blob, content_type = encode()
        encoding += time.perf_counter() - t
        uploads.append(res.uploads.submit(res.storage.put, keys[name], blob, content_type))
    futures.wait(uploads)
    for upload in uploads:
        upload.result()
    timings["encode_s"] = encoding
    # The uploads' time beyond the encoding they overlapped: what the shot waited for the bucket.
    timings["upload_s"] = time.perf_counter() - started - encoding


def segment_shot(res: Resources, shot_id: int, token: str | None = None) -> str:
    """Segment one shot and record the result. Returns what happened, for logs and tests.
    token: who claims the shot (the Celery task id, the same across its retries)."""
    model = res.model()  # load (or refresh) before claiming, so the claim is short
    token = token or uuid.uuid4().hex
    with session_scope(res.url) as session:
        job = _claim(session, shot_id, model.version_id, token, res.settings.lease_seconds)
    if isinstance(job, str):
        return job

    timings = {}
    started = t = time.perf_counter()
    try:
        data = res.storage.get(job.key)
    except NotFound:
        mark_failed(res, shot_id, f"{job.key} is no longer in the bucket")
        return "failed"
    timings["download_s"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        rgb, note = imageio.decode_photo(data, res.settings.max_pixels)
    except imageio.BadImage as exc:
        mark_failed(res, shot_id, f"bad input: {exc}")
        return "failed"
    timings["decode_s"] = time.perf_counter() - t

    prediction = model.segmenter.segment(rgb)
    timings.update(prediction.timings)

    keys = naming.result_keys(model.version, job.garment_id, job.view)
    _write_outputs(res, rgb, prediction, keys, timings)

    score, ref_etag, problem = _reference_dice(res, job.reference, prediction.mask)
    parts = dict(prediction.confidence_parts)
    if problem:
        parts["reference_problem"] = problem
    if note:
        parts["input_note"] = note
        log.warning("shot %s %s: %s", shot_id, job.key, note)
    with session_scope(res.url) as session:
        session.execute(insert(session, Segmentation).values(
            shot_id=shot_id, model_version_id=model.version_id, shot_etag=job.etag,
            width=rgb.shape[1], height=rgb.shape[0],
            first_mask_key=keys["first_mask"], mask_key=keys["mask"], cutout_key=keys["cutout"], overlay_key=keys["overlay"],
            threshold_first=prediction.threshold_first, threshold_second=prediction.threshold_second,
            confidence=float(prediction.confidence), confidence_parts=parts,
            dice=score, dice_reference_etag=ref_etag, score_requested_etag=ref_etag,
            timings={k: round(v, 4) for k, v in timings.items()}, run_settings=model.segmenter.run_settings,
        ).on_conflict_do_nothing(index_elements=["shot_id", "model_version_id", "shot_etag"]))
        # Only the content we processed is done: a re-upload meanwhile has reset the row to pending.
        lifecycle.done(session, shot_id, job.etag)
    metrics.shot_done(timings, time.perf_counter() - started)
    log.info("shot %s %s: confidence %.3f%s", shot_id, job.key, prediction.confidence,
             f", Dice {score:.4f}" if score is not None else "")
    return "done"


def score_segmentation(res: Resources, segmentation_id: int) -> float | None:
    """Dice of an existing mask against the view's (new) reference, without re-running the model."""
    with session_scope(res.url) as session:
        row = session.execute(
            select(Segmentation.mask_key, Shot.garment_id, Shot.view)
            .join(Shot, Shot.id == Segmentation.shot_id).where(Segmentation.id == segmentation_id)).first()
        reference = None if row is None else _reference_of(session, row.garment_id, row.view)
    if row is None:
        return None
    mask = imageio.decode_png(res.storage.get(row.mask_key), res.settings.max_pixels, want="cutout")
    score, ref_etag, problem = _reference_dice(res, reference, mask)
    with session_scope(res.url) as session:
        seg = session.get(Segmentation, segmentation_id)
        seg.dice, seg.dice_reference_etag = score, ref_etag
        parts = {k: v for k, v in (seg.confidence_parts or {}).items() if k != "reference_problem"}
        if problem:
            parts["reference_problem"] = problem
        seg.confidence_parts = parts
        lifecycle.scored(session, row.garment_id, seg.model_version_id, res.settings)
    return score
