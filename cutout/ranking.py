"""Which garments need a person, in which order: computed in SQL, one page at a time, so the
report and the review page cost the same at a thousand shots and at a million.

Every write that changes a garment's standing (a shot registered or re-uploaded, segmented,
failed, retried or scored, a review) calls ``refresh`` for it in the same transaction: one
row per garment in ``garment_states`` then holds, free of report settings, what the ranking
needs (per view: the newest segmentation of the shot's current content, the newest review of
it). ``garments`` ranks those rows with the query's thresholds. cutout.report words the
reasons for the page's garments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Numeric, and_, case, cast, delete, func, literal, or_, select, text

from cutout.db import insert
from cutout.naming import VIEWS
from cutout.schema import RESOLVING, Garment, GarmentState, ModelVersion, Review, Segmentation, Shot

DEFAULT_MIN_CONFIDENCE = 0.90
# The studio's camera and turntable stay put, so a garment stands as tall in all three of its
# views. When the masks' heights differ by more than this (as log(tallest / shortest)), the
# views disagree on what the garment is: one takes in something else (plastic legs taken for
# tights, a bag, the stand) or leaves part out, however sure each view is on its own. The
# studio-style validation composites scale the person by 72-93 % of the frame, so there the
# true heights of one garment differ by up to 0.25; at 0.35 the check held back 13 of the 100
# validation garments with a view below Dice 0.95 and none of the 61 without (stop 19).
MAX_HEIGHT_SPREAD = 0.35
# The views should also agree on the garment's size for its height, area / height^2 (free of
# the scale each view is shot at). A view whose mask takes in plastic legs as leggings, an arm
# or the stand grows wider for its height without always growing taller. On a turntable a
# garment's silhouette does change with the view (a body twice as wide as deep shows about
# 1.06x its front width at 45 degrees), so the limit is loose: log 0.30 is 1.35x. On the studio-style
# validation garments (stop 24) it holds back one of the 76 whose views all reach Dice 0.95
# (the height check holds that one back too) and 19 of the 85 with a worse view, 4 of them
# ones the height check lets through; among those the tenth most confident garment, whose
# FrontRight took grey mannequin legs for leggings (0.53).
MAX_SIZE_SPREAD = 0.30
STATUS_ORDER = ("needs a person", "waiting", "reviewed", "released")
REASON_KINDS = ("failed", "confidence", "dice", "manual", "height", "size")


@dataclass(frozen=True)
class Filters:
    status: str | None = None  # one of STATUS_ORDER; None = every status
    reason: str | None = None  # one of REASON_KINDS
    model: str | None = None  # a view was segmented by this model version
    since: str | None = None  # ISO date: a view was segmented on or after it
    reviewed: bool | None = None  # somebody reviewed a view (of its current content)
    garment_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ViewLimits:
    """How far a garment's views may disagree, as log(largest / smallest), before it needs a
    person however sure each view is: on the mask's height (share of the frame's rows) and on
    its size (view_size). A studio whose camera never moves may tighten them."""

    height: float = MAX_HEIGHT_SPREAD
    size: float = MAX_SIZE_SPREAD

    @classmethod
    def from_settings(cls, settings, height: float | None = None, size: float | None = None) -> "ViewLimits":
        """`height` and `size` where given (a command's options), else CUTOUT_MAX_HEIGHT_SPREAD and
        CUTOUT_MAX_SIZE_SPREAD, else the constants."""
        def first(*values):
            return next(v for v in values if v is not None)

        return cls(first(height, settings.max_height_spread, MAX_HEIGHT_SPREAD),
                   first(size, settings.max_size_spread, MAX_SIZE_SPREAD))


def view_size(parts: dict) -> float | None:
    """A view's garment size for its height, free of the view's scale: the mask's area over its
    height squared (garment_fraction / height_fraction^2, the frame's aspect cancels between
    views of one frame size); None without the signals (earlier models) or for an empty mask."""
    area, height = parts.get("garment_fraction"), parts.get("height_fraction")
    return area / height ** 2 if area is not None and height else None


def spread(values) -> float:
    """log(largest / smallest) of one garment's views' values (views without the value, from
    earlier models, are left out); inf when a view's value is 0 (an empty mask)."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return 0.0
    return math.log(max(known) / min(known)) if min(known) > 0 else float("inf")


def views_agree(heights, sizes=(), limits: ViewLimits = ViewLimits()) -> bool:
    """Whether a garment's views agree on its height and its size (spreads within the limits)."""
    return spread(heights) <= limits.height and spread(sizes) <= limits.size


def _flag(condition):
    return case((condition, 1), else_=0)


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
    review = (select(Review.shot_id, Review.decision,
                     func.row_number().over(partition_by=Review.shot_id,
                                            order_by=(Review.created_at.desc(), Review.id.desc())).label("n"))
              .join(Shot, and_(Shot.id == Review.shot_id, Shot.etag == Review.shot_etag)).where(mine)).subquery()
    reviewed = review.c.decision.is_not(None)
    settled = and_(reviewed, review.c.decision.in_(RESOLVING))
    open_ = ~settled
    done = and_(Shot.status == "done", newest.c.confidence.is_not(None))
    failed = and_(open_, Shot.status == "failed")
    open_done = and_(open_, done)
    rule = func.coalesce(ModelVersion.release_threshold, DEFAULT_MIN_CONFIDENCE)
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
                   case((failed, 0.0), (open_done, func.coalesce(newest.c.dice, newest.c.confidence))).label("score"))
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
        func.max(v.c.created_at).label("segmented_at"),
    ).group_by(v.c.garment_id)).mappings().all()
    states = [{**row, "score": None if row["score"] is None else float(row["score"])} for row in rows]
    session.execute(delete(GarmentState).where(GarmentState.garment_id.in_(ids) if ids is not None else literal(True)))
    for start in range(0, len(states), 5000):
        session.execute(insert(session, GarmentState).values(states[start:start + 5000]))


def refresh_shots(session, shot_ids) -> None:
    """refresh() for the garments of these shots."""
    refresh(session, session.execute(select(Shot.garment_id).where(Shot.id.in_(list(shot_ids)))).scalars().all())


def refresh_all(session) -> None:
    """Rebuild every garment's standing in one pass (after a migration, or to repair)."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text("LOCK TABLE garment_states IN EXCLUSIVE MODE"))  # writers wait; readers read on
    refresh(session, None)


def _status(min_confidence: float | None, min_dice: float, limits: ViewLimits = ViewLimits()):
    s = GarmentState
    low_confidence = (s.min_confidence < literal(min_confidence)) if min_confidence is not None else (s.min_margin < 0)
    conditions = {"failed": s.failed > 0, "confidence": low_confidence, "dice": s.min_dice < literal(min_dice),
                  "manual": s.manual > 0,
                  # the views disagree on the garment's height or size (views_agree), without logarithms
                  "height": s.max_height > s.min_height * literal(math.exp(limits.height)),
                  "size": s.max_size > s.min_size * literal(math.exp(limits.size))}
    needs = or_(*conditions.values())
    status = case((needs, STATUS_ORDER[0]), (or_(s.waiting > 0, s.views < len(VIEWS)), STATUS_ORDER[1]),
                  (s.settled > 0, STATUS_ORDER[2]), else_=STATUS_ORDER[3])
    return status, conditions


def garments(min_confidence: float | None, min_dice: float, filters: Filters = Filters(),
             limits: ViewLimits = ViewLimits()):
    """A query of (garment_id, status, score) in report order, filtered; page it with limit/offset."""
    s = GarmentState
    status, conditions = _status(min_confidence, min_dice, limits)
    rank = case(*((status == name, i) for i, name in enumerate(STATUS_ORDER)))
    query = select(s.garment_id, status.label("status"), s.score)
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


def counts(session, min_confidence: float | None, min_dice: float,
           limits: ViewLimits = ViewLimits()) -> dict[str, int]:
    status, _ = _status(min_confidence, min_dice, limits)
    found = dict(session.execute(select(status, func.count()).group_by(status)).all())
    return {name: found.get(name, 0) for name in STATUS_ORDER}
