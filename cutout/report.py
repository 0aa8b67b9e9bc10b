"""Which garments the fleet releases and which need a person, per garment across its views,
in words: the release rule is cutout.release's, the ranking and its decisions cutout.ranking's
(in SQL); this module reads one page of them and says why.

A garment *needs a person* when a view failed, a confidence is below the rule, a reference
disagrees, a person asked for a manual cut, or the views disagree on the garment's height or
size; it is *waiting* while a view is missing or still being processed. A person's review on
the review page settles a view: approved or corrected, it needs nobody any more (a garment
settled that way is *reviewed*); "needs manual cut" keeps it with a person. Reviews count for
the content they were made on: a re-shoot needs a new one.
"""

from __future__ import annotations

import math
from dataclasses import replace

from sqlalchemy import and_, func, select

from cutout import models, ranking, release
from cutout.ranking import GarmentStatus
from cutout.db import session_scope
from cutout.naming import VIEWS
from cutout.schema import RESOLVING, ModelVersion, Rejection, Review, Segmentation, Shot, ShotStatus, User



def needs_cutout(url: str, rule: release.Rule, include_all: bool = False, garment_id: str | None = None,
                 limit: int | None = None, offset: int = 0, filters: ranking.Filters | None = None) -> dict:
    """{"garments": [...one page, ranked...], "total", "counts", "failed_shots", "rejected_keys"}.

    Garments that need a person come first, worst first (their score is their worst open
    view's: Dice where a reference exists, else confidence; a failed view scores 0); with
    include_all, waiting, reviewed and released garments follow. The ranking, its reasons and
    the paging run in SQL (cutout.ranking); only the page's garments are read to say why.
    """
    if filters is None:
        filters = ranking.Filters(status=None if include_all else GarmentStatus.NEEDS_PERSON)
    if garment_id is not None:
        filters = replace(filters, garment_ids=(garment_id,))
    ranked = ranking.garments(rule, filters)
    with session_scope(url) as session:
        page = session.execute(ranked.limit(limit).offset(offset)).all()
        total = session.execute(select(func.count()).select_from(ranked.order_by(None).subquery())).scalar_one()
        counts = ranking.counts(session, rule)
        version_id = models.in_service(session)
        in_service = session.get(ModelVersion, version_id) if version_id is not None else None
        details = _details(session, page, rule)
        failed = [{"garment_id": s.garment_id, "view": s.view, "key": s.key, "reason": s.failure_reason}
                  for s in session.execute(select(Shot).where(Shot.status == ShotStatus.FAILED)
                                           .order_by(Shot.key)).scalars()]
        rejected = [{"key": r.key, "reason": r.reason}
                    for r in session.execute(select(Rejection).order_by(Rejection.key)).scalars()]
    garments = []
    for rank, row in enumerate(page, offset + 1):
        g = details[row.garment_id]
        g["rank"] = rank
        garments.append(g)
    limits = rule.limits
    return {"thresholds": {"min_confidence": rule.min_confidence, "min_dice": rule.min_dice,
                           "max_height_spread": limits.height, "max_size_spread": limits.size},
            "trust": None if in_service is None else {
                "model_version": in_service.version, "mode": "releasing" if in_service.releasing else "shadow",
                **(in_service.evidence or {"reason": "shadow mode: no review of its results yet"})},
            "counts": counts, "total": total, "offset": offset, "limit": limit,
            "garments": garments, "failed_shots": failed, "rejected_keys": rejected}


def _details(session, page, rule: release.Rule) -> dict[str, dict]:
    """Each garment's views and, in words, the reasons the ranking's query found (its flags per
    garment, and per view the threshold and the comparisons it made)."""
    garment_ids = [row.garment_id for row in page]
    if not garment_ids:
        return {}
    threshold = rule.view_threshold(ModelVersion.release_threshold)
    rows = session.execute(
        select(Shot, Segmentation, ModelVersion.version, threshold.label("threshold"),
               (Segmentation.confidence < threshold).label("below_rule"),
               (Segmentation.dice < rule.min_dice).label("below_dice"))
        .outerjoin(Segmentation, and_(Segmentation.shot_id == Shot.id, Segmentation.shot_etag == Shot.etag))
        .outerjoin(ModelVersion, ModelVersion.id == Segmentation.model_version_id)
        .where(Shot.garment_id.in_(garment_ids))
        .order_by(Shot.garment_id, Shot.view, Segmentation.created_at.desc(), Segmentation.id.desc())
    ).all()
    reviews = latest_reviews(session, garment_ids)
    garments: dict[str, dict] = {}
    seen = set()
    for shot, seg, version, view_threshold, below_rule, below_dice in rows:
        if shot.id in seen:
            continue  # only the newest segmentation of the shot's current content
        seen.add(shot.id)
        g = garments.setdefault(shot.garment_id, {"garment_id": shot.garment_id, "views": {}, "reasons": [],
                                                  "waiting_for": [], "reviewed": False, "scores": [], "heights": {},
                                                  "sizes": {}})
        view = {"status": shot.status, "key": shot.key, "shot_id": shot.id}
        review = reviews.get(shot.id)
        if review is not None:
            view["review"] = review
            g["reviewed"] = True
        settled = review is not None and review["decision"] in RESOLVING
        if review is not None and not settled:
            g["reasons"].append(f"{shot.view} manual cut requested by {review['by']}")
        if seg is not None:
            view.update(model_version=version, mask_key=seg.mask_key, cutout_key=seg.cutout_key,
                        overlay_key=seg.overlay_key, segmentation_id=seg.id, segmented_at=seg.created_at.isoformat())
        if settled:
            pass  # a person approved or replaced this cutout: nothing the model said matters any more
        elif shot.status == ShotStatus.FAILED:
            view["failure_reason"] = shot.failure_reason
            g["reasons"].append(f"{shot.view} failed: {shot.failure_reason}")
            g["scores"].append(0.0)
        elif shot.status != ShotStatus.DONE or seg is None:
            g["waiting_for"].append(f"{shot.view} {shot.status}")
        else:
            view.update(confidence=round(seg.confidence, 4), dice=None if seg.dice is None else round(seg.dice, 4),
                        release_threshold=round(view_threshold, 4))
            if below_rule:
                g["reasons"].append(f"{shot.view} confidence {seg.confidence:.4f} < {view_threshold:.4f}")
            if below_dice:
                g["reasons"].append(f"{shot.view} Dice {seg.dice:.4f} < {rule.min_dice}")
            g["scores"].append(view["dice"] if view["dice"] is not None else view["confidence"])
            parts = seg.confidence_parts or {}
            height, size = parts.get("height_fraction"), release.view_size(parts)
            if height is not None:
                g["heights"][shot.view] = height
            if size is not None:
                g["sizes"][shot.view] = size
        g["views"][shot.view] = view

    for row in page:
        g = garments[row.garment_id]
        heights, sizes = g.pop("heights"), g.pop("sizes")
        if row.height:
            g["reasons"].append(f"the views disagree on the garment's height ({_per_view(heights, '.0%')} of the "
                                "frame): one takes in something else or leaves part out")
        if row.size:
            g["reasons"].append(f"the views disagree on the garment's size for its height ({_per_view(sizes, '.2f')}, "
                                "area / height²): one takes in something else or leaves part out")
        if row.check and not g["reasons"]:
            # The model's rule would release it, and the team checks it: the model is earning
            # its trust on this studio (shadow mode), or this is an audit. Which one is not said
            # where the team works, so that neither changes how closely they look.
            g["reasons"].append("to be checked by the team")
        scores = g.pop("scores")
        g["score"] = round(min(scores), 4) if scores else None
        g["missing_views"] = [v for v in VIEWS if v not in g["views"]]
        g["waiting_for"] += [f"{v} missing" for v in g["missing_views"]]
        g["status"] = row.status
        g["needs_cutout"] = row.status == GarmentStatus.NEEDS_PERSON
    return garments


def _per_view(values: dict[str, float], spec: str) -> str:
    """"Front 50%, FrontRight 51%, Back 75%": a value per view, in the studio's order."""
    return ", ".join(f"{view} {value:{spec}}" for view, value in sorted(values.items(), key=lambda kv: VIEWS.index(kv[0])))


def latest_reviews(session, garment_ids: list[str]) -> dict[int, dict]:
    """Per shot id, its newest review of the shot's current content: {"decision", "by", "at"}."""
    query = (select(Review.shot_id, Review.decision, User.name, Review.created_at)
             .join(Shot, and_(Shot.id == Review.shot_id, Shot.etag == Review.shot_etag))
             .join(User, User.id == Review.user_id)
             .order_by(Review.shot_id, Review.created_at.desc(), Review.id.desc()))
    rows = session.execute(query.where(Shot.garment_id.in_(garment_ids))).all()
    latest: dict[int, dict] = {}
    for shot_id, decision, name, at in rows:
        latest.setdefault(shot_id, {"decision": decision, "by": name, "at": at.isoformat()})
    return latest


def _trust_line(report: dict) -> list[str]:
    """The model in service on this studio: releasing or in shadow mode, and the team's reviews
    it was decided on (of the reviewed garments its rule would release, how many were right,
    with the 95 % Wilson interval)."""
    t = report.get("trust")
    if not t:
        return []
    return [f"Model {t['model_version']}, {t['reason']}."]


def _cell(view: dict | None) -> str:
    if view is None:
        return "-"
    if "review" in view:
        return view["review"]["decision"].replace("_", " ")
    if view["status"] != "done":
        return view["status"]
    text = f"c {view['confidence']:.3f}"
    if view.get("dice") is not None:
        text += f" D {view['dice']:.4f}"
    return text


def format_table(report: dict, names: dict[str, str] | None = None) -> str:
    """The report as a table; `names` shows a garment by a name of its own instead of its UUID."""
    names = names or {}
    rule = report["thresholds"]["min_confidence"]
    counts = report["counts"]
    lines = [f"{counts[GarmentStatus.RELEASED]} garments released, {counts[GarmentStatus.NEEDS_PERSON]} need a person, "
             f"{counts[GarmentStatus.WAITING]} waiting, {counts[GarmentStatus.REVIEWED]} settled by a review "
             f"(release rule: {'confidence >= ' + str(rule) if rule is not None else 'each model’s own'}; "
             f"reference Dice >= {report['thresholds']['min_dice']}; "
             f"the tallest view at most {math.exp(report['thresholds']['max_height_spread']):.2f}x the shortest, "
             f"the largest for its height {math.exp(report['thresholds']['max_size_spread']):.2f}x the smallest).",
             *_trust_line(report), "", "Worst first:"]
    header = f"{'#':>3}  {'garment':36}  {'status':14}  {'score':>6}  " + "  ".join(f"{v:18}" for v in VIEWS) + "  why"
    lines += [header, "-" * len(header)]
    for g in report["garments"]:
        score = "-" if g["score"] is None else f"{g['score']:.4f}"
        cells = "  ".join(f"{_cell(g['views'].get(v)):18}" for v in VIEWS)
        why = "; ".join(g["reasons"] or g["waiting_for"]) or "-"
        lines.append(f"{g['rank']:>3}  {names.get(g['garment_id'], g['garment_id']):36}  {g['status']:14}  {score:>6}  {cells}  {why}")
    if not report["garments"]:
        lines.append("  (none)")
    shown = report["offset"] + len(report["garments"])
    if shown < report["total"]:
        lines.append(f"  ... {report['total'] - shown} more: --offset {shown}")
    lines.append("")
    lines.append(f"Failed shots ({len(report['failed_shots'])}):")
    lines += [f"  {f['key']}: {f['reason']}" for f in report["failed_shots"]] or ["  (none)"]
    lines.append(f"Rejected keys ({len(report['rejected_keys'])}):")
    lines += [f"  {r['key']}: {r['reason']}" for r in report["rejected_keys"]] or ["  (none)"]
    return "\n".join(lines)


def format_csv(report: dict) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "garment_id", "status", "score", "needs_cutout", "view", "view_status", "confidence",
                     "release_threshold", "dice", "failure_reason", "overlay_key", "reasons"])
    for g in report["garments"]:
        for view_name, v in sorted(g["views"].items(), key=lambda kv: VIEWS.index(kv[0])):
            writer.writerow([g["rank"], g["garment_id"], g["status"], g["score"], g["needs_cutout"], view_name,
                             v["status"], v.get("confidence"), v.get("release_threshold"), v.get("dice"),
                             v.get("failure_reason"), v.get("overlay_key"), "; ".join(g["reasons"] or g["waiting_for"])])
    return out.getvalue()
