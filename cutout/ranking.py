"""Which garments need a person, in which order: computed in SQL, one page at a time, so the
report and the review page cost the same at a thousand shots and at a million.

Per view (the newest segmentation of the shot's current content, the newest review of it):
settled (approved or corrected), failed, below its release rule, below the reference Dice,
manual cut requested, waiting; per garment: its status (needs a person, waiting, reviewed,
released) and its score (the worst unsettled view: 0 if failed, else Dice where a reference
exists, else confidence, to four places). cutout.report words the reasons for the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Numeric, and_, case, cast, func, literal, or_, select

from cutout.naming import VIEWS
from cutout.schema import RESOLVING, ModelVersion, Review, Segmentation, Shot

DEFAULT_MIN_CONFIDENCE = 0.90
STATUS_ORDER = ("needs a person", "waiting", "reviewed", "released")
REASON_KINDS = ("failed", "confidence", "dice", "manual")


@dataclass(frozen=True)
class Filters:
    status: str | None = None  # one of STATUS_ORDER; None = every status
    reason: str | None = None  # one of REASON_KINDS
    model: str | None = None  # a view was segmented by this model version
    since: str | None = None  # ISO date: a view was segmented on or after it
    reviewed: bool | None = None  # somebody reviewed a view (of its current content)
    garment_ids: tuple[str, ...] | None = None


def _flag(condition):
    return case((condition, 1), else_=0)


def _views(min_confidence: float | None, min_dice: float):
    newest = (select(Segmentation.shot_id, Segmentation.confidence, Segmentation.dice, Segmentation.created_at,
                     Segmentation.model_version_id,
                     func.row_number().over(partition_by=Segmentation.shot_id,
                                            order_by=(Segmentation.created_at.desc(), Segmentation.id.desc())).label("n"))
              .join(Shot, and_(Shot.id == Segmentation.shot_id, Shot.etag == Segmentation.shot_etag))).subquery()
    review = (select(Review.shot_id, Review.decision,
                     func.row_number().over(partition_by=Review.shot_id,
                                            order_by=(Review.created_at.desc(), Review.id.desc())).label("n"))
              .join(Shot, and_(Shot.id == Review.shot_id, Shot.etag == Review.shot_etag))).subquery()
    threshold = (literal(min_confidence) if min_confidence is not None
                 else func.coalesce(ModelVersion.release_threshold, DEFAULT_MIN_CONFIDENCE))
    settled = review.c.decision.in_(RESOLVING)
    open_ = or_(review.c.decision.is_(None), ~settled)
    done = and_(Shot.status == "done", newest.c.confidence.is_not(None))
    failed = and_(open_, Shot.status == "failed")
    low_confidence = and_(open_, done, newest.c.confidence < threshold)
    low_dice = and_(open_, done, newest.c.dice.is_not(None), newest.c.dice < min_dice)
    manual = review.c.decision == "needs_manual_cut"
    return (select(Shot.garment_id, Shot.view, newest.c.created_at, ModelVersion.version,
                   _flag(review.c.decision.is_not(None)).label("reviewed"),
                   _flag(and_(review.c.decision.is_not(None), settled)).label("settled"),
                   _flag(failed).label("failed"), _flag(low_confidence).label("confidence"),
                   _flag(low_dice).label("dice"), _flag(manual).label("manual"),
                   _flag(and_(open_, ~failed, ~done)).label("waiting"),
                   case((and_(review.c.decision.is_not(None), settled), None), (failed, 0.0),
                        (done, func.coalesce(newest.c.dice, newest.c.confidence))).label("score"))
            .select_from(Shot)
            .outerjoin(newest, and_(newest.c.shot_id == Shot.id, newest.c.n == 1))
            .outerjoin(ModelVersion, ModelVersion.id == newest.c.model_version_id)
            .outerjoin(review, and_(review.c.shot_id == Shot.id, review.c.n == 1))).subquery()


def garments(min_confidence: float | None, min_dice: float, filters: Filters = Filters()):
    """A query of (garment_id, status, score) in report order, filtered; page it with limit/offset."""
    v = _views(min_confidence, min_dice)
    needs = func.max(v.c.failed + v.c.confidence + v.c.dice + v.c.manual) > 0
    waiting = or_(func.max(v.c.waiting) > 0, func.count(func.distinct(v.c.view)) < len(VIEWS))
    status = case((needs, STATUS_ORDER[0]), (waiting, STATUS_ORDER[1]), (func.max(v.c.settled) > 0, STATUS_ORDER[2]),
                  else_=STATUS_ORDER[3])
    rank = case(*((status == s, i) for i, s in enumerate(STATUS_ORDER)))
    score = func.round(cast(func.min(v.c.score), Numeric), 4)
    query = select(v.c.garment_id, status.label("status"), score.label("score")).group_by(v.c.garment_id)
    f = filters
    if f.status:
        query = query.having(status == f.status)
    if f.reason:
        query = query.having(func.max(getattr(v.c, f.reason)) > 0)
    if f.model:
        query = query.having(func.max(_flag(v.c.version == f.model)) > 0)
    if f.since:
        query = query.having(func.max(v.c.created_at) >= f.since)
    if f.reviewed is not None:
        query = query.having(func.max(v.c.reviewed) > 0 if f.reviewed else func.max(v.c.reviewed) == 0)
    if f.garment_ids is not None:
        query = query.where(v.c.garment_id.in_(f.garment_ids))
    return query.order_by(rank, score.is_(None), score, v.c.garment_id)


def counts(session, min_confidence: float | None, min_dice: float) -> dict[str, int]:
    ranked = garments(min_confidence, min_dice).order_by(None).subquery()
    found = dict(session.execute(select(ranked.c.status, func.count()).group_by(ranked.c.status)).all())
    return {s: found.get(s, 0) for s in STATUS_ORDER}
