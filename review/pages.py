"""The queue, a garment's page with its actions, model history, and the images they show."""

from __future__ import annotations

import math
from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for

from review import actions, charts
from review.app import context
from cutout.ranking import Filters
from cutout.release import REASON_KINDS, Rule
from cutout.ranking import STATUS_ORDER, GarmentStatus
from cutout.report import needs_cutout

bp = Blueprint("pages", __name__)
PAGE_SIZE = 20
# The queue's reason filter: ranking's kinds, in words.
REASONS = dict(zip(REASON_KINDS, ("failed", "confidence below the rule", "Dice below the reference rule",
                                  "manual cut requested", "views disagree on the height",
                                  "views disagree on the size", "to be checked")))


MAX_ID = 2 ** 63 - 1  # the database's BIGINT


def _number(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; anything else is the request's fault (400),
    never a database error."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@bp.get("/healthz")
def healthz():
    return {"ok": True}


def _filters(args) -> Filters:
    """The queue's filters from the query string; anything unknown is ignored, not an error."""
    status = args.get("status", GarmentStatus.NEEDS_PERSON)
    since = args.get("since", "")
    try:
        since = date.fromisoformat(since).isoformat() if since else None
    except ValueError:
        since = None
    reviewed = {"yes": True, "no": False}.get(args.get("reviewed", ""))
    return Filters(status=status if status in STATUS_ORDER else None, reason=args.get("reason") if args.get("reason") in REASONS else None,
                   model=args.get("model") or None, since=since, reviewed=reviewed)


@bp.get("/")
def queue():
    s = context().settings
    filters = _filters(request.args)
    page = _number("page", 1, 1, 10 ** 7)
    report = needs_cutout(s.database_url, Rule.from_settings(s), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                          filters=filters)
    pages = max(1, math.ceil(report["total"] / PAGE_SIZE))
    if page > pages:
        abort(404)
    query = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("queue.html", garments=report["garments"], total=report["total"], page=page, pages=pages,
                           query=query, counts=report["counts"], statuses=[s.value for s in STATUS_ORDER], reasons=REASONS,
                           models=charts.version_names(s.database_url), args=request.args)


def _garment(garment_id: str) -> dict | None:
    s = context().settings
    report = needs_cutout(s.database_url, Rule.from_settings(s), garment_id=garment_id, filters=Filters(status=None))
    return next((g for g in report["garments"] if g["garment_id"] == garment_id), None)


def _neighbour(garment_id: str, forward: bool) -> str | None:
    from cutout.db import session_scope
    from cutout.ranking import neighbour

    s = context().settings
    with session_scope(s.database_url) as session:
        return neighbour(session, Rule.from_settings(s), garment_id, forward)


def _open_views(g: dict) -> list[str]:
    """The views of a garment still waiting for a person's decision, in view order."""
    return [view for view in actions.VIEWS if (v := g["views"].get(view)) and not v.get("review")]


@bp.get("/garments/<garment_id>")
def garment(garment_id: str):
    g = _garment(garment_id)
    if g is None:
        abort(404)
    open_views = _open_views(g)
    return render_template("garment.html", g=g, views=actions.VIEWS, focus=(open_views or list(actions.VIEWS))[0],
                           next_id=_neighbour(garment_id, True), prev_id=_neighbour(garment_id, False))


def _after_decision(garment_id: str, following: str | None, message: str):
    """Back to the garment at its next open view; once every view is settled, on to the garment
    that followed it in the queue when the decision was taken (a settled garment leaves the
    queue's order), or to the queue itself at its end."""
    flash(message, "ok")
    g = _garment(garment_id)
    open_views = _open_views(g) if g else []
    if open_views:
        target = url_for("pages.garment", garment_id=garment_id, _anchor=f"view-{open_views[0]}")
    else:
        target = url_for("pages.garment", garment_id=following) if following else url_for("pages.queue")
    # The touch-up editor posts with fetch and goes where it is told (a followed redirect would
    # take the flash with it).
    return {"location": target} if _from_script() else redirect(target)


def _from_script() -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def _refused(exc, garment_id: str):
    if _from_script():
        return {"error": str(exc)}, exc.status
    return render_template("error.html", title="Refused", message=str(exc),
                           back=url_for("pages.garment", garment_id=garment_id)), exc.status


@bp.post("/garments/<garment_id>/<view>/touchup")
def touch_up(garment_id: str, view: str):
    ctx = context()
    following = _neighbour(garment_id, True)
    try:
        message = actions.touch_up(ctx.settings, ctx.storage, garment_id, view, session["user_id"],
                                   request.files.get("mask"))
    except actions.Refused as exc:
        return _refused(exc, garment_id)
    return _after_decision(garment_id, following, message)


@bp.post("/garments/<garment_id>/<view>/<decision>")
def decide(garment_id: str, view: str, decision: str):
    ctx = context()
    upload = request.files.get("cutout") if decision == "correct" else None
    following = _neighbour(garment_id, True)
    try:
        message = actions.decide(ctx.settings, ctx.storage, garment_id, view, decision, session["user_id"], upload)
    except actions.Refused as exc:
        return _refused(exc, garment_id)
    return _after_decision(garment_id, following, message)


@bp.get("/shots/<int:shot_id>/<kind>")
def image(shot_id: int, kind: str):
    ctx = context()
    if shot_id > MAX_ID:
        abort(404)
    width = _number("w", 0, 0, 10_000) or None
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


@bp.get("/models/current/studio.png")
def studio_plot():
    return Response(charts.studio_png(context().settings.database_url), mimetype="image/png")

