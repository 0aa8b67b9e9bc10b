"""Which garments the fleet releases and which need a person, per garment across its views.

A garment is *released* when all three views are done, no reference cutout disagrees with
them (Dice below min_dice), and every view's confidence (the model's estimate of its Dice)
reaches the release rule of the model that made it: the threshold tuned on validation
garments so that at least 98 % of released garments have every view at Dice >= 0.95
(``model.json``'s ``release``). ``min_confidence`` overrides the models' rules; a model
without a rule uses DEFAULT_MIN_CONFIDENCE.

It *needs a person* when a view failed, a confidence is below the rule, or a reference
disagrees; it is *waiting* while a view is missing or still being processed. A person's
review on the review page settles a view: approved or corrected, it needs nobody any more
(a garment settled that way is *reviewed*); "needs manual cut" keeps it with a person.
Reviews count for the content they were made on: a re-shoot needs a new one.
"""

from __future__ import annotations

from sqlalchemy import and_, select

from cutout.db import session_scope
from cutout.naming import VIEWS
from cutout.schema import RESOLVING, ModelVersion, Rejection, Review, Segmentation, Shot, User

DEFAULT_MIN_CONFIDENCE = 0.90
RELEASED, NEEDS_PERSON, WAITING, REVIEWED = "released", "needs a person", "waiting", "reviewed"
STATUSES = (NEEDS_PERSON, WAITING, REVIEWED, RELEASED)


def release_threshold(params: dict | None) -> float | None:
    """The release rule's threshold in a model version's params (its last stage's), if any."""
    params = params or {}
    stage = params.get("second") or params.get("first") or {}
    rule = stage.get("release") or {}
    return rule.get("min_predicted_dice")


def needs_cutout(url: str, min_confidence: float | None, min_dice: float, include_all: bool = False,
                 garment_id: str | None = None) -> dict:
    """{"garments": [...ranked...], "counts": {...}, "failed_shots": [...], "rejected_keys": [...]}.

    Garments that need a person come first, worst first (their score is their worst view's:
    Dice where a reference exists, else confidence; a failed view scores 0); with
    include_all, waiting, reviewed and released garments follow. garment_id: only that garment.
    """
    query = (select(Shot, Segmentation, ModelVersion.version, ModelVersion.params)
             .outerjoin(Segmentation, and_(Segmentation.shot_id == Shot.id, Segmentation.shot_etag == Shot.etag))
             .outerjoin(ModelVersion, ModelVersion.id == Segmentation.model_version_id)
             .order_by(Shot.garment_id, Shot.view, Segmentation.created_at.desc(), Segmentation.id.desc()))
    if garment_id is not None:
        query = query.where(Shot.garment_id == garment_id)
    with session_scope(url) as session:
        rows = session.execute(query).all()
        rejections = session.execute(select(Rejection).order_by(Rejection.key)).scalars().all()
        rejected = [{"key": r.key, "reason": r.reason} for r in rejections]
        reviews = latest_reviews(session, garment_id)

    garments: dict[str, dict] = {}
    failed = []
    seen = set()
    for shot, seg, version, params in rows:
        if shot.id in seen:
            continue  # only the newest segmentation of the shot's current content
        seen.add(shot.id)
        g = garments.setdefault(shot.garment_id, {"garment_id": shot.garment_id, "views": {}, "reasons": [],
                                                  "waiting_for": [], "reviewed": False})
        view = {"status": shot.status, "key": shot.key, "shot_id": shot.id}
        review = reviews.get(shot.id)
        if review is not None:
            view["review"] = review
            g["reviewed"] = True
        settled = review is not None and review["decision"] in RESOLVING
        if review is not None and not settled:
            g["reasons"].append(f"{shot.view} manual cut requested by {review['by']}")
        if settled:
            pass  # a person approved or replaced this cutout: nothing the model said matters any more
        elif shot.status == "failed":
            view["failure_reason"] = shot.failure_reason
            failed.append({"garment_id": shot.garment_id, "view": shot.view, "key": shot.key, "reason": shot.failure_reason})
            g["reasons"].append(f"{shot.view} failed: {shot.failure_reason}")
        elif shot.status != "done" or seg is None:
            g["waiting_for"].append(f"{shot.view} {shot.status}")
        else:
            threshold = min_confidence if min_confidence is not None else release_threshold(params)
            threshold = DEFAULT_MIN_CONFIDENCE if threshold is None else threshold
            view.update(confidence=round(seg.confidence, 4), dice=None if seg.dice is None else round(seg.dice, 4),
                        release_threshold=round(threshold, 4), model_version=version, mask_key=seg.mask_key,
                        cutout_key=seg.cutout_key, overlay_key=seg.overlay_key, segmentation_id=seg.id,
                        segmented_at=seg.created_at.isoformat())
            if seg.confidence < threshold:  # said as the table shows it, to four places
                g["reasons"].append(f"{shot.view} confidence {view['confidence']:.4f} < {threshold:.4f}")
            if seg.dice is not None and seg.dice < min_dice:
                g["reasons"].append(f"{shot.view} Dice {seg.dice:.4f} < {min_dice}")
        g["views"][shot.view] = view

    ranked = {status: [] for status in STATUSES}
    for g in garments.values():
        scores = []
        for view in g["views"].values():
            if view["status"] == "failed":
                scores.append(0.0)
            elif "confidence" in view:
                scores.append(view["dice"] if view["dice"] is not None else view["confidence"])
        g["score"] = round(min(scores), 4) if scores else None
        g["missing_views"] = [v for v in VIEWS if v not in g["views"]]
        g["waiting_for"] += [f"{v} missing" for v in g["missing_views"]]
        settled = any(v.get("review", {}).get("decision") in RESOLVING for v in g["views"].values())
        g["status"] = (NEEDS_PERSON if g["reasons"] else WAITING if g["waiting_for"] else
                       REVIEWED if settled else RELEASED)
        g["needs_cutout"] = g["status"] == NEEDS_PERSON
        ranked[g["status"]].append(g)
    order = []
    for status in STATUSES:
        group = sorted(ranked[status], key=lambda g: (g["score"] is None, g["score"] or 0.0, g["garment_id"]))
        if status == NEEDS_PERSON or include_all:
            order += group
    for rank, g in enumerate(order, 1):
        g["rank"] = rank
    return {"thresholds": {"min_confidence": min_confidence, "min_dice": min_dice},
            "counts": {status: len(group) for status, group in ranked.items()},
            "released_garments": sorted(g["garment_id"] for g in ranked[RELEASED]),
            "garments": order, "failed_shots": failed, "rejected_keys": rejected}


def latest_reviews(session, garment_id: str | None = None) -> dict[int, dict]:
    """Per shot id, its newest review of the shot's current content: {"decision", "by", "at"}."""
    query = (select(Review.shot_id, Review.decision, User.name, Review.created_at)
             .join(Shot, and_(Shot.id == Review.shot_id, Shot.etag == Review.shot_etag))
             .join(User, User.id == Review.user_id)
             .order_by(Review.shot_id, Review.created_at.desc(), Review.id.desc()))
    if garment_id is not None:
        query = query.where(Shot.garment_id == garment_id)
    rows = session.execute(query).all()
    latest: dict[int, dict] = {}
    for shot_id, decision, name, at in rows:
        latest.setdefault(shot_id, {"decision": decision, "by": name, "at": at.isoformat()})
    return latest


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


def format_table(report: dict) -> str:
    rule = report["thresholds"]["min_confidence"]
    counts = report["counts"]
    lines = [f"{counts[RELEASED]} garments released, {counts[NEEDS_PERSON]} need a person, {counts[WAITING]} waiting, "
             f"{counts[REVIEWED]} settled by a review "
             f"(release rule: {'confidence >= ' + str(rule) if rule is not None else 'each model’s own'}; "
             f"reference Dice >= {report['thresholds']['min_dice']}).", "", "Worst first:"]
    header = f"{'#':>3}  {'garment':36}  {'status':14}  {'score':>6}  " + "  ".join(f"{v:18}" for v in VIEWS) + "  why"
    lines += [header, "-" * len(header)]
    for g in report["garments"]:
        score = "-" if g["score"] is None else f"{g['score']:.4f}"
        cells = "  ".join(f"{_cell(g['views'].get(v)):18}" for v in VIEWS)
        why = "; ".join(g["reasons"] or g["waiting_for"]) or "-"
        lines.append(f"{g['rank']:>3}  {g['garment_id']:36}  {g['status']:14}  {score:>6}  {cells}  {why}")
    if not report["garments"]:
        lines.append("  (none)")
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
