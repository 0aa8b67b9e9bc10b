"""Logging in and out."""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, redirect, render_template, request, session, url_for

from review.app import context
from review.users import end_sessions, login as check_login

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site. Browsers drop tabs and newlines from a URL and read a backslash
    as a slash, so "/\\t/host" or "/\\\\host" would leave the site: any control character,
    whitespace or backslash refuses the target, and what is kept is rebuilt from its path and
    query alone (no scheme, no host)."""
    fallback = url_for("pages.queue")
    if not target or any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return fallback
    return urlunsplit(("", "", parts.path, parts.query, ""))


@bp.route("/login", methods=["GET", "POST"])
def login():
    settings = context().settings
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    result = check_login(settings.database_url, name, password, request.remote_addr or "unknown",
                         settings.login_attempts, settings.login_window_seconds)
    if result.wait_seconds > 0:
        wait = math.ceil(result.wait_seconds)
        return render_template("login.html", next=request.form.get("next", ""),
                               error=f"Too many failed logins. Try again in {wait} seconds."), 429, {
                                   "Retry-After": str(wait)}
    if result.user_id is None:
        return render_template("login.html", next=request.form.get("next", ""),
                               error="Wrong user name or password."), 401
    session.clear()  # nothing from before the login survives it
    session.permanent = True
    session.update(user_id=result.user_id, user=name, epoch=result.epoch, issued=time.time())
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    if "user_id" in session:
        end_sessions(context().settings.database_url, session["user_id"])
    session.clear()
    return redirect(url_for("auth.login"))
