"""Which garments need a person, in which order: computed in SQL, one page at a time, so the
report and the review page cost the same at a thousand shots and at a million.

Every write that changes a garment's standing (a shot registered or re-uploaded, segmented,
failed, retried or scored, a review) calls ``refresh`` for it in the same transaction: one
row per garment in ``garment_states`` then holds, free of report settings, what the ranking
needs (per view: the newest segmentation of the shot's current content, the newest review of
it). ``garments`` ranks those rows by the release rule (cutout.release) and returns, per
garment, the flags of the reasons it needs a person; cutout.report words those flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Numeric, and_, case, cast, delete, func, literal, or_, select, text, tuple_

from cutout.db import insert
from cutout.release import Rule
from cutout.trust import audit_draw
from cutout.naming import VIEWS
from cutout.schema import RESOLVING, Garment, GarmentState, ModelVersion, Review, Segmentation, Shot, ShotStatus

class GarmentStatus(StrEnum):
    """A garment's standing in the report, in report order."""

    NEEDS_PERSON = "needs a person"  # a view failed, doubts, disagrees, or a person asked for a manual cut
    WAITING = "waiting"  # a view is missing or still being processed
    REVIEWED = "reviewed"  # settled by the team's approvals or corrections
    RELEASED = "released"  # every view passes the release rule: needs nobody


STATUS_ORDER = tuple(GarmentStatus)


@dataclass(frozen=True)
class Filters:
    status: str | None = None  # one of STATUS_ORDER; None = every status
    reason: str | None = None  # one of release.REASON_KINDS
    model: str | None = None  # a view was segmented by this model version
    since: str | None = None  # ISO date: a view was segmented on or after it
    reviewed: bool | None = None  # somebody reviewed a view (of its current content)
    garment_ids: tuple[str, ...] | None = None


def _flag(condition):
    return case((condition, 1), else_=0)


def newest_reviews(where=None):
    """Per shot, its reviews of its current content numbered newest first (n = 1: the one that
    counts): shot_id, decision, segmentation_id, n. Reviews of an earlier content are left out:
    a re-shoot needs a new review."""
    query = (select(Review.shot_id, Review.decision, Review.segmentation_id,
                    func.row_number().over(partition_by=Review.shot_id,
                                           order_by=(Review.created_at.desc(), Review.id.desc())).label("n"))
             .join(Shot, and_(Shot.id == Review.shot_id, Shot.etag == Review.shot_etag)))
    return (query if where is None else query.where(where)).subquery()


def _views(garment_ids):
    """Per shot of these garments (None: of all): what its newest segmentation and review say."""
    mine = Shot.garment_id.in_(garment_ids) if garment_ids is not None else literal(True)
    newest = (select(Segmentation.shot_id, Segmentation.confidence, Segmentation.dice, Segmentation.created_at,
                     Segmentation.model_version_id,
                     Segmentation.confidence_parts["height_fraction"].as_float().label("height"),
                     Segmentation.confidence_parts["garment_fraction"].as_float().label("area"),
                     func.row_number().over(partition_by=Segmentation.shot_id,
                                            order_by=(Segmentation.created_at.desc(), Segmentation.id.desc())).label("n"))
              .join(Shot, and_(Shot.id == Segmentation.shot_id, Shot.etag == Segmentation.shot_etag)).where(mine)).subquery()
    review = newest_reviews(mine)
    reviewed = review.c.decision.is_not(None)
    settled = and_(reviewed, review.c.decision.in_(RESOLVING))
    open_ = ~settled
    done = and_(Shot.status == ShotStatus.DONE, newest.c.confidence.is_not(None))
    failed = and_(open_, Shot.status == ShotStatus.FAILED)
    open_done = and_(open_, done)
    rule = Rule().view_threshold(ModelVersion.release_threshold)  # the model's own: the standing is override-free
    return (select(Shot.garment_id, Shot.view, newest.c.created_at,
                   _flag(reviewed).label("reviewed"), _flag(settled).label("settled"), _flag(failed).label("failed"),
                   _flag(review.c.decision == "needs_manual_cut").label("manual"),
                   _flag(and_(open_, ~failed, ~done)).label("waiting"),
                   case((open_done, newest.c.confidence - rule)).label("margin"),
                   case((open_done, newest.c.confidence)).label("confidence"),
                   case((open_done, newest.c.dice)).label("dice"),
                   case((open_done, newest.c.height)).label("height"),
                   # view_size; an empty mask (height 0) has none, as there
                   case((and_(open_done, newest.c.height > 0),
                         newest.c.area / (newest.c.height * newest.c.height))).label("size"),
                   case((failed, 0.0), (open_done, func.coalesce(newest.c.dice, newest.c.confidence))).label("score"),
                   # a result of a model that has not earned releasing on this studio yet (cutout.trust)
                   _flag(and_(open_done, ModelVersion.releasing.is_not(True))).label("shadow"),
                   case((open_done, ModelVersion.version)).label("version"))
            .select_from(Shot)
            .outerjoin(newest, and_(newest.c.shot_id == Shot.id, newest.c.n == 1))
            .outerjoin(ModelVersion, ModelVersion.id == newest.c.model_version_id)
            .outerjoin(review, and_(review.c.shot_id == Shot.id, review.c.n == 1))
            .where(mine)).subquery()


def refresh(session, garment_ids) -> None:
    """Recompute the standing of these garments (call inside the transaction that changed them);
    None: of every garment (after a migration, or to repair)."""
    ids = sorted(set(garment_ids)) if garment_ids is not None else None
    if ids == []:
        return
    if ids is not None and session.bind.dialect.name == "postgresql":
        # One refresh per garment at a time, in id order (no deadlocks): a refresh that waited
        # then sees the other's committed rows, so concurrent workers never lose a view.
        session.execute(select(Garment.id).where(Garment.id.in_(ids)).order_by(Garment.id).with_for_update())
    v = _views(ids)
    rows = session.execute(select(
        v.c.garment_id, func.count(func.distinct(v.c.view)).label("views"), func.sum(v.c.waiting).label("waiting"),
        func.sum(v.c.failed).label("failed"), func.sum(v.c.manual).label("manual"),
        func.sum(v.c.settled).label("settled"), func.sum(v.c.reviewed).label("reviewed"),
        func.min(v.c.margin).label("min_margin"), func.min(v.c.confidence).label("min_confidence"),
        func.min(v.c.dice).label("min_dice"), func.max(v.c.height).label("max_height"),
        func.min(v.c.height).label("min_height"), func.max(v.c.size).label("max_size"),
        func.min(v.c.size).label("min_size"), func.round(cast(func.min(v.c.score), Numeric), 4).label("score"),
        func.max(v.c.created_at).label("segmented_at"), func.sum(v.c.shadow).label("shadow"),
        func.max(v.c.version).label("version"),
    ).group_by(v.c.garment_id)).mappings().all()
    states = [{**{k: value for k, value in row.items() if k != "version"},
               "score": None if row["score"] is None else float(row["score"]),
               "audit_draw": None if row["version"] is None else audit_draw(row["garment_id"], row["version"])}
              for row in rows]
    session.execute(delete(GarmentState).where(GarmentState.garment_id.in_(ids) if ids is not None else literal(True)))
    for start in range(0, len(states), 5000):
        session.execute(insert(session, GarmentState).values(states[start:start + 5000]))


def refresh_all(session) -> None:
    """Rebuild every garment's standing in one pass (after a migration, or to repair)."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text("LOCK TABLE garment_states IN EXCLUSIVE MODE"))  # writers wait; readers read on
    refresh(session, None)


def _status(rule: Rule):
    s = GarmentState
    conditions = rule.garment_conditions(s)
    needs = or_(*conditions.values())
    status = case((needs, GarmentStatus.NEEDS_PERSON.value),
                  (or_(s.waiting > 0, s.views < len(VIEWS)), GarmentStatus.WAITING.value),
                  (s.settled > 0, GarmentStatus.REVIEWED.value), else_=GarmentStatus.RELEASED.value)
    return status, conditions


def garments(rule: Rule, filters: Filters = Filters()):
    """A query of (garment_id, status, score, and a flag per release.REASON_KINDS: why it needs a
    person) in report order, filtered; page it with limit/offset."""
    s = GarmentState
    status, conditions = _status(rule)
    rank = case(*((status == name.value, i) for i, name in enumerate(STATUS_ORDER)))
    flags = [func.coalesce(condition, False).label(kind) for kind, condition in conditions.items()]
    query = select(s.garment_id, status.label("status"), s.score, *flags)
    f = filters
    if f.status:
        query = query.where(status == f.status)
    if f.reason:
        query = query.where(conditions[f.reason])
    if f.model:
        query = query.where(s.garment_id.in_(
            select(Shot.garment_id).join(Segmentation, and_(Segmentation.shot_id == Shot.id,
                                                             Segmentation.shot_etag == Shot.etag))
            .join(ModelVersion, ModelVersion.id == Segmentation.model_version_id).where(ModelVersion.version == f.model)))
    if f.since:
        query = query.where(s.segmented_at >= f.since)
    if f.reviewed is not None:
        query = query.where(s.reviewed > 0 if f.reviewed else s.reviewed == 0)
    if f.garment_ids is not None:
        query = query.where(s.garment_id.in_(f.garment_ids))
    return query.order_by(rank, s.score.is_(None), s.score, s.garment_id)


def neighbour(session, rule: Rule, garment_id: str, forward: bool = True) -> str | None:
    """The garment after (or before) this one in the team's queue (the garments that need a
    person, in report order), whether or not this one is still in it: where the team goes
    once a garment is settled. None at the end of the queue."""
    s = GarmentState
    here = session.execute(select(s.score).where(s.garment_id == garment_id)).first()
    query = garments(rule, Filters(status=GarmentStatus.NEEDS_PERSON.value)).where(s.garment_id != garment_id)
    if here is not None:
        # Report order within one status: (score is null, score, garment_id), compared as a row.
        key = tuple_(s.score.is_(None), func.coalesce(s.score, 0.0), s.garment_id)
        mine = tuple_(literal(here.score is None), literal(here.score if here.score is not None else 0.0),
                      literal(garment_id))
        query = query.where(key > mine if forward else key < mine)
    if not forward:
        query = query.order_by(None).order_by(s.score.is_(None).desc(), s.score.desc(), s.garment_id.desc())
    return session.execute(query.limit(1)).scalars().first()


def counts(session, rule: Rule) -> dict[str, int]:
    status, _ = _status(rule)
    found = dict(session.execute(select(status, func.count()).group_by(status)).all())
    return {name.value: found.get(name.value, 0) for name in STATUS_ORDER}
