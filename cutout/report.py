"""Which garments need a person to cut them out, worst first, per garment across its views."""

from __future__ import annotations

from sqlalchemy import and_, select

from cutout.db import session_scope
from cutout.naming import VIEWS
from cutout.schema import ModelVersion, Rejection, Segmentation, Shot


def needs_cutout(url: str, min_confidence: float, min_dice: float, include_all: bool = False) -> dict:
    """{"garments": [...ranked...], "failed_shots": [...], "rejected_keys": [...], "thresholds": {...}}.

    A view needs a person when it failed, its confidence is below min_confidence, or its Dice
    against a reference is below min_dice. A garment's score is its worst view's (Dice where a
    reference exists, else confidence; a failed view scores 0), and garments rank by it.
    """
    with session_scope(url) as session:
        rows = session.execute(
            select(Shot, Segmentation, ModelVersion.version)
            .outerjoin(Segmentation, and_(Segmentation.shot_id == Shot.id, Segmentation.shot_etag == Shot.etag))
            .outerjoin(ModelVersion, ModelVersion.id == Segmentation.model_version_id)
            .order_by(Shot.garment_id, Shot.view, Segmentation.created_at.desc(), Segmentation.id.desc())
        ).all()
        rejections = session.execute(select(Rejection).order_by(Rejection.key)).scalars().all()
        rejected = [{"key": r.key, "reason": r.reason} for r in rejections]

    garments: dict[str, dict] = {}
    failed = []
    seen = set()
    for shot, seg, version in rows:
        if shot.id in seen:
            continue  # only the newest segmentation of the shot's current content
        seen.add(shot.id)
        g = garments.setdefault(shot.garment_id, {"garment_id": shot.garment_id, "views": {}, "reasons": []})
        view = {"status": shot.status, "key": shot.key}
        if shot.status == "failed":
            view["failure_reason"] = shot.failure_reason
            failed.append({"garment_id": shot.garment_id, "view": shot.view, "key": shot.key, "reason": shot.failure_reason})
            g["reasons"].append(f"{shot.view} failed: {shot.failure_reason}")
        if seg is not None and shot.status == "done":
            view.update(confidence=round(seg.confidence, 4), dice=None if seg.dice is None else round(seg.dice, 4),
                        model_version=version, mask_key=seg.mask_key, cutout_key=seg.cutout_key,
                        overlay_key=seg.overlay_key)
            if seg.confidence < min_confidence:
                g["reasons"].append(f"{shot.view} confidence {seg.confidence:.3f} < {min_confidence}")
            if seg.dice is not None and seg.dice < min_dice:
                g["reasons"].append(f"{shot.view} Dice {seg.dice:.4f} < {min_dice}")
        g["views"][shot.view] = view

    ranked = []
    for g in garments.values():
        scores = []
        for view in g["views"].values():
            if view["status"] == "failed":
                scores.append(0.0)
            elif "confidence" in view:
                scores.append(view["dice"] if view["dice"] is not None else view["confidence"])
        g["score"] = round(min(scores), 4) if scores else None
        g["needs_cutout"] = bool(g["reasons"])
        g["missing_views"] = [v for v in VIEWS if v not in g["views"]]
        g["pending_views"] = [v for v, d in g["views"].items() if d["status"] in ("pending", "processing")]
        if g["needs_cutout"] or include_all:
            ranked.append(g)
    ranked.sort(key=lambda g: (g["score"] is None, g["score"] if g["score"] is not None else 0, g["garment_id"]))
    for rank, g in enumerate(ranked, 1):
        g["rank"] = rank
    return {"thresholds": {"min_confidence": min_confidence, "min_dice": min_dice},
            "garments": ranked, "failed_shots": failed, "rejected_keys": rejected}


def _cell(view: dict | None) -> str:
    if view is None:
        return "-"
    if view["status"] != "done":
        return view["status"]
    text = f"c {view['confidence']:.3f}"
    if view.get("dice") is not None:
        text += f" D {view['dice']:.4f}"
    return text


def format_table(report: dict) -> str:
    lines = [f"Garments needing a cutout (confidence < {report['thresholds']['min_confidence']}, "
             f"Dice < {report['thresholds']['min_dice']}, or failed), worst first:"]
    header = f"{'#':>3}  {'garment':36}  {'score':>6}  " + "  ".join(f"{v:18}" for v in VIEWS)
    lines += [header, "-" * len(header)]
    for g in report["garments"]:
        score = "-" if g["score"] is None else f"{g['score']:.4f}"
        cells = "  ".join(f"{_cell(g['views'].get(v)):18}" for v in VIEWS)
        lines.append(f"{g['rank']:>3}  {g['garment_id']:36}  {score:>6}  {cells}")
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
    writer.writerow(["rank", "garment_id", "score", "needs_cutout", "view", "status", "confidence", "dice",
                     "failure_reason", "overlay_key", "reasons"])
    for g in report["garments"]:
        for view_name, v in sorted(g["views"].items(), key=lambda kv: VIEWS.index(kv[0])):
            writer.writerow([g["rank"], g["garment_id"], g["score"], g["needs_cutout"], view_name, v["status"],
                             v.get("confidence"), v.get("dice"), v.get("failure_reason"), v.get("overlay_key"),
                             "; ".join(g["reasons"])])
    return out.getvalue()
