"""The queue, a garment's page with its actions, model history, and the images they show."""

from __future__ import annotations

import math
from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for

from review import actions, charts
from review.app import context
from cutout.report import NEEDS_PERSON, STATUSES, needs_cutout

bp = Blueprint("pages", __name__)
PAGE_SIZE = 20
REASONS = {"failed": "failed", "confidence": "confidence", "dice": "Dice", "manual": "manual cut"}


@bp.get("/healthz")
def healthz():
    return {"ok": True}


def _report(garment_id: str | None = None) -> dict:
    s = context().settings
    return needs_cutout(s.database_url, s.min_confidence, s.min_dice, include_all=True, garment_id=garment_id)


def _matches(g: dict, args) -> bool:
    status = args.get("status", NEEDS_PERSON)
    if status != "all" and g["status"] != status:
        return False
    reason = REASONS.get(args.get("reason", ""))
    if reason and not any(reason in r for r in g["reasons"]):
        return False
    model = args.get("model", "")
    if model and not any(v.get("model_version") == model for v in g["views"].values()):
        return False
    since = args.get("since", "")
    if since:
        try:
            day = date.fromisoformat(since).isoformat()
        except ValueError:
            return False
        if not any((v.get("segmented_at") or "") >= day for v in g["views"].values()):
            return False
    reviewed = args.get("reviewed", "")
    return not reviewed or g["reviewed"] == (reviewed == "yes")


@bp.get("/")
def queue():
    report = _report()
    garments = [g for g in report["garments"] if _matches(g, request.args)]
    pages = max(1, math.ceil(len(garments) / PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    models = sorted({v["model_version"] for g in report["garments"] for v in g["views"].values() if v.get("model_version")})
    query = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("queue.html", garments=garments[(page - 1) * PAGE_SIZE:page * PAGE_SIZE], total=len(garments),
                           page=page, pages=pages, query=query, counts=report["counts"], statuses=STATUSES,
                           reasons=REASONS, models=models, args=request.args)


@bp.get("/garments/<garment_id>")
def garment(garment_id: str):
    report = _report(garment_id)
    found = [g for g in report["garments"] if g["garment_id"] == garment_id]
    if not found:
        abort(404)
    return render_template("garment.html", g=found[0], views=actions.VIEWS)


@bp.post("/garments/<garment_id>/<view>/<decision>")
def decide(garment_id: str, view: str, decision: str):
    ctx = context()
    upload = request.files.get("cutout") if decision == "correct" else None
    try:
        message = actions.decide(ctx.settings, ctx.storage, garment_id, view, decision, session["user_id"], upload)
    except actions.Refused as exc:
        return render_template("error.html", title="Refused", message=str(exc),
                               back=url_for("pages.garment", garment_id=garment_id)), exc.status
    flash(message, "ok")
    return redirect(url_for("pages.garment", garment_id=garment_id))


@bp.get("/shots/<int:shot_id>/<kind>")
def image(shot_id: int, kind: str):
    ctx = context()
    width = request.args.get("w", type=int)
    try:
        data, mimetype = actions.image(ctx.settings, ctx.storage, shot_id, kind, width)
    except actions.Refused:
        abort(404)
    return Response(data, mimetype=mimetype, headers={"Cache-Control": "private, max-age=300"})


@bp.get("/models")
def models():
    s = context().settings
    return render_template("models.html", versions=charts.versions(s.database_url))


@bp.get("/models/quality.png")
def quality_plot():
    return Response(charts.quality_png(context().settings.database_url), mimetype="image/png")


@bp.get("/models/current/histogram.png")
def histogram_plot():
    return Response(charts.histogram_png(context().settings.database_url), mimetype="image/png")
