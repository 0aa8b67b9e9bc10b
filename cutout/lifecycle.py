"""A shot's life: every change of a shot's status happens here, and so does every other write
that changes its garment's standing (a review, a late score), each refreshing the standing
(cutout.ranking.refresh) in the same transaction, so no writer has to remember to.

    pending --send--> pending (sent) --claim--> processing --done--> done
       ^                                            |  \\--fail--> failed
       |                                            \\--lease runs out: sent again
       +-- re-shoot (new content), retry (failed), requeue (stuck)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, func, or_, select, update

from cutout import ranking
from cutout.schema import Segmentation, Shot, ShotStatus

# The claim columns of a shot no task holds (leaving processing, a shot lets go of its claim).
UNCLAIMED = {"claimed_by": None, "lease_until": None}
# A shot registered again with new content (a re-shoot): segmented afresh, its attempts reset.
RESHOT = {"status": ShotStatus.PENDING, "enqueued_at": None, "failure_reason": None, "attempts": 0,
          "updated_at": func.now()}


def _move(session, where, refresh: bool = True, **values) -> list:
    """Update the shots `where` selects; refresh their garments (unless the move cannot change
    their standing); the (id, key, garment_id) rows."""
    rows = session.execute(update(Shot).where(where).values(**values)
                           .returning(Shot.id, Shot.key, Shot.garment_id)
                           .execution_options(synchronize_session=False)).all()
    if refresh:
        ranking.refresh(session, {row.garment_id for row in rows})
    return rows


def _garments_of(session, model_version_id: int) -> set[str]:
    """Every garment this version segmented."""
    return set(session.execute(select(Shot.garment_id).join(Segmentation, Segmentation.shot_id == Shot.id)
                               .where(Segmentation.model_version_id == model_version_id)).scalars())


def registered(session, garment_ids) -> None:
    """Shots of these garments were registered or re-shot (producer.sweep upserts them with RESHOT)."""
    ranking.refresh(session, garment_ids)


def reviewed(session, review, garment_id: str, settings=None) -> None:
    """A person's decision on a view (a schema.Review): recorded, the garment's standing with it,
    and the reviewed model's evidence on this studio (it may start or stop releasing)."""
    session.add(review)
    session.flush()
    _evidence_changed(session, review.model_version_id, [garment_id], settings)


def scored(session, garment_id: str, model_version_id: int | None = None, settings=None) -> None:
    """A view's result was scored against a (new) reference cutout: its garment's standing
    follows, and so does its model's evidence (a correction's Dice decides its verdict)."""
    _evidence_changed(session, model_version_id, [garment_id], settings)


def rule_changed(session, model_version_id: int) -> None:
    """A version's release rule was fitted anew: every garment it segmented stands anew."""
    ranking.refresh(session, _garments_of(session, model_version_id))


def _evidence_changed(session, model_version_id: int | None, garment_ids, settings) -> None:
    """The standing of these garments, and the model's evidence and mode under the settings'
    policy (cutout.trust.Policy; its defaults without settings)."""
    from cutout import evidence

    if evidence.update_mode(session, model_version_id, *evidence.policy_for(settings)):
        # The version started or stopped releasing: every garment it segmented stands anew.
        garment_ids = set(garment_ids) | _garments_of(session, model_version_id)
    ranking.refresh(session, garment_ids)


def done(session, shot_id: int, etag: str | None = None) -> bool:
    """The shot is segmented; with `etag`, only if that is still its content (a re-upload
    meanwhile has reset it to pending). Whether it moved."""
    where = Shot.id == shot_id if etag is None else and_(Shot.id == shot_id, Shot.etag == etag)
    return bool(_move(session, where, status=ShotStatus.DONE, failure_reason=None,
                      finished_at=datetime.now(timezone.utc), **UNCLAIMED))


def fail(session, where, reason: str) -> list:
    """Give up on the shots `where` selects, with the reason a person will read."""
    return _move(session, where, status=ShotStatus.FAILED, failure_reason=reason[:2000],
                 finished_at=datetime.now(timezone.utc), **UNCLAIMED)


def fail_shot(session, shot_id: int, reason: str) -> None:
    fail(session, Shot.id == shot_id, reason)


def claim(session, shot_id: int, token: str, lease_seconds: float) -> bool:
    """Take the shot for this task (token) for lease_seconds, in one conditional UPDATE: a shot
    another live task holds is left alone, so no shot is ever processed twice at once. The
    holder itself (a retry, or its own message redelivered) takes it again at once."""
    now = datetime.now(timezone.utc)
    free = or_(Shot.status != ShotStatus.PROCESSING, Shot.claimed_by.is_(None), Shot.claimed_by == token,
               Shot.lease_until.is_(None), Shot.lease_until < now)
    # A sent shot (pending) and a claimed one both stand as waiting, so the claim is not worth a
    # refresh on the worker's hot path; whatever the claim took, done or failed refreshes it.
    return bool(_move(session, and_(Shot.id == shot_id, free), refresh=False, status=ShotStatus.PROCESSING,
                      attempts=Shot.attempts + 1, started_at=now, failure_reason=None, claimed_by=token,
                      lease_until=now + timedelta(seconds=lease_seconds)))


def extend_lease(session, shot_id: int, token: str, until: datetime) -> None:
    """Keep holding a claimed shot (its task waits for a retry); the status does not change."""
    session.execute(update(Shot).where(Shot.id == shot_id, Shot.claimed_by == token).values(lease_until=until))


def lapsed(now: datetime, cutoff: datetime):
    """Processing shots whose claim's lease ran out: their worker died or passed its hard time
    limit, so nobody can still be running them."""
    return and_(Shot.status == ShotStatus.PROCESSING, or_(
        Shot.lease_until < now, and_(Shot.lease_until.is_(None), Shot.started_at < cutoff)))


def due(now: datetime, cutoff: datetime, queue_empty: bool):
    """Shots the producer should send: pending and never sent (or, when the queue is empty,
    sent before `cutoff`: the message was lost), and lapsed ones."""
    unsent = or_(Shot.enqueued_at.is_(None), Shot.enqueued_at < cutoff) if queue_empty else Shot.enqueued_at.is_(None)
    return or_(and_(Shot.status == ShotStatus.PENDING, unsent), lapsed(now, cutoff))


def sent(shot_id: int, due_now):
    """The claim the producer commits before sending a due shot (its standing stays waiting):
    a statement, so the producer runs it in its own transaction and can undo it."""
    return update(Shot).where(Shot.id == shot_id, due_now).values(
        status=ShotStatus.PENDING, enqueued_at=func.now(), **UNCLAIMED)


def unsent(shot_id: int):
    """Undo `sent` when the message could not be sent."""
    return update(Shot).where(Shot.id == shot_id).values(enqueued_at=None)


def retry(session, reason_contains: str = "") -> list:
    """Failed shots (whose reason contains the text) back to pending."""
    return _move(session, and_(Shot.status == ShotStatus.FAILED, Shot.failure_reason.contains(reason_contains)),
                 status=ShotStatus.PENDING, enqueued_at=None, failure_reason=None)


def requeue_stuck(session, cutoff: datetime) -> list:
    """Shots processing, or sent, before `cutoff` without finishing, back to pending."""
    stale = or_(and_(Shot.status == ShotStatus.PROCESSING, Shot.started_at < cutoff),
                and_(Shot.status == ShotStatus.PENDING, Shot.enqueued_at < cutoff))
    return _move(session, stale, status=ShotStatus.PENDING, enqueued_at=None, **UNCLAIMED)
