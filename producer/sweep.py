"""The producer's sweep: register what is in the bucket, and hand due work to the queue exactly once.

Registration is an upsert per page of listed keys, so running it twice, or from two
producers at once, changes nothing. Enqueueing claims one shot at a time with a conditional
UPDATE, commits, and only then sends: two producers can never both send the same shot, and
a producer killed between commit and send leaves a claimed-but-unsent shot that a later
sweep re-sends once the queue is empty (the worker's claim turns any duplicate away).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import Callable

from sqlalchemy import and_, func, select, update

from cutout import lifecycle
from cutout.db import insert, session_scope
from cutout.naming import CUTOUTS_PREFIX, SHOTS_PREFIX, BadKey, parse_key
from cutout.schema import Garment, Reference, Rejection, Segmentation, Shot
from cutout.storage import Storage

log = logging.getLogger(__name__)
PAGE = 500


@dataclass
class SweepResult:
    seen: int = 0
    shots: int = 0  # new or re-uploaded
    references: int = 0  # new or replaced
    rejected: int = 0  # newly rejected
    rejected_keys: list[str] = field(default_factory=list)


def _pages(iterable, size=PAGE):
    it = iter(iterable)
    while page := list(islice(it, size)):
        yield page


def register(url: str, storage: Storage) -> SweepResult:
    """List shots/ and cutouts/ completely and upsert what is new or changed."""
    result = SweepResult()
    for prefix in (SHOTS_PREFIX, CUTOUTS_PREFIX):
        register_objects(url, storage.bucket, storage.list(prefix), result)
    return result


def register_objects(url: str, bucket: str, objects, result: SweepResult | None = None) -> SweepResult:
    """Register these objects (from a listing or from the store's notifications), page by page."""
    result = result or SweepResult()
    for page in _pages(objects):
        result.seen += len(page)
        with session_scope(url) as session:
            _register_page(session, bucket, page, result)
    return result


def _unknown(session, model, bucket: str, rows: list[dict]) -> list[dict]:
    """The rows of a page not yet registered in `model`'s table with this ETag. Known ones are
    left out before any INSERT: a reconciliation sweep over a bucket of known keys then writes
    nothing and draws no id from a sequence."""
    if not rows:
        return rows
    known = dict(session.execute(select(model.key, model.etag).where(
        model.bucket == bucket, model.key.in_([row["key"] for row in rows]))).all())
    return [row for row in rows if known.get(row["key"]) != row["etag"]]


def _register_page(session, bucket, page, result: SweepResult) -> None:
    shots, references, rejections = [], [], []
    for obj in page:
        try:
            parsed = parse_key(obj.key)
        except BadKey as exc:
            rejections.append({"bucket": bucket, "key": obj.key, "etag": obj.etag, "reason": str(exc)})
            continue
        row = {"bucket": bucket, "key": obj.key, "etag": obj.etag, "size_bytes": obj.size,
               "garment_id": parsed.garment_id, "view": parsed.view}
        (shots if parsed.kind == "shot" else references).append(row)
    shots = _unknown(session, Shot, bucket, shots)
    references = _unknown(session, Reference, bucket, references)
    rejections = _unknown(session, Rejection, bucket, rejections)
    garments = {row["garment_id"] for row in shots + references}
    if garments:
        session.execute(insert(session, Garment).values([{"id": g} for g in sorted(garments)])
                        .on_conflict_do_nothing(index_elements=["id"]))
    if shots:
        # Same key, new content (a re-shoot): back to pending so it is segmented again.
        changed = set(_upsert_changed(session, Shot, shots, ("etag", "size_bytes"), lifecycle.RESHOT))
        result.shots += len(changed)
        lifecycle.registered(session, {row["garment_id"] for row in shots if row["key"] in changed})
    if references:
        result.references += len(_upsert_changed(session, Reference, references, ("etag", "size_bytes"),
                                                 {"updated_at": func.now()}))
    if rejections:
        keys = _upsert_changed(session, Rejection, rejections, ("etag", "reason"), {})
        result.rejected += len(keys)
        result.rejected_keys += keys
        newly = set(keys)
        for row in rejections:
            if row["key"] in newly:
                log.warning("rejected %s: %s", row["key"], row["reason"])


def _upsert_changed(session, model, rows, copied, updates) -> list[str]:
    """Insert new objects; on an existing (bucket, key) update only when the ETag changed.
    Returns the keys inserted or changed."""
    stmt = insert(session, model).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["bucket", "key"],
        set_={**{c: stmt.excluded[c] for c in copied}, **updates},
        where=model.etag != stmt.excluded.etag,
    ).returning(model.key)
    return session.execute(stmt).scalars().all()


def enqueue_shots(url: str, send: Callable[[int], None], requeue_after: float, *, queue_empty: bool = True,
                  max_attempts: int | None = None) -> int:
    """Send every due shot once; returns how many were sent.

    Due: pending and never sent; processing whose claim's lease ran out (its worker died, or
    passed its hard time limit: nobody can still be running it); or, when the queue is empty
    (`queue_empty`), pending and sent more than ``requeue_after`` seconds ago: its message was
    lost (Redis restarted without persistence, or the producer died between claim and send).
    While the queue holds a backlog nothing pending is sent again, so a backlog never grows
    by its own duplicates.

    A shot whose lease ran out `max_attempts` times (a photo that kills or stalls its worker
    each time) is failed with the reason instead of being sent again.
    """
    now = datetime.now(timezone.utc)
    cutoff = now - timedelta(seconds=requeue_after)
    if max_attempts:
        _fail_exhausted(url, and_(lifecycle.lapsed(now, cutoff), Shot.attempts >= max_attempts), max_attempts)
    due = lifecycle.due(now, cutoff, queue_empty)
    with session_scope(url) as session:
        ids = session.execute(select(Shot.id).where(due).order_by(Shot.id)).scalars().all()
    return sum(_claim_and_send(url, shot_id, send, claim=lifecycle.sent(shot_id, due), release=lifecycle.unsent(shot_id))
               for shot_id in ids)


def _fail_exhausted(url: str, which, max_attempts: int) -> None:
    with session_scope(url) as session:
        rows = lifecycle.fail(session, which, f"its worker died or passed the time limit on each of {max_attempts} "
                                              "attempts (a photo too large for the worker's memory?)")
    for row in rows:
        log.warning("gave up on %s after %d attempts", row.key, max_attempts)


def _claim_and_send(url, item_id, send, claim, release) -> int:
    """Commit the claim, then send; undo the claim if the send fails. 1 if sent, else 0."""
    with session_scope(url) as session:
        if not session.execute(claim).rowcount:
            return 0  # another producer got there first
    try:
        send(item_id)
    except Exception:
        with session_scope(url) as session:
            session.execute(release)
        raise
    return 1


def enqueue_scoring(url: str, send: Callable[[int], None]) -> int:
    """Ask for Dice on segmentations whose reference arrived (or changed) after they were made.

    The model is not run again: the scoring task compares the stored mask with the reference.
    """
    pending = and_(
        Segmentation.shot_etag == Shot.etag,
        Segmentation.dice_reference_etag.is_distinct_from(Reference.etag),
        Segmentation.score_requested_etag.is_distinct_from(Reference.etag),
    )
    query = (select(Segmentation.id, Reference.etag)
             .join(Shot, Shot.id == Segmentation.shot_id)
             .join(Reference, and_(Reference.garment_id == Shot.garment_id, Reference.view == Shot.view))
             .where(pending))
    with session_scope(url) as session:
        rows = session.execute(query).all()
    return sum(
        _claim_and_send(url, seg_id, send,
                        claim=update(Segmentation)
                        .where(Segmentation.id == seg_id, Segmentation.score_requested_etag.is_distinct_from(etag))
                        .values(score_requested_etag=etag),
                        release=update(Segmentation).where(Segmentation.id == seg_id).values(score_requested_etag=None))
        for seg_id, etag in rows
    )
