"""Logging in and out."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from review.app import context
from review.users import authenticate, too_many_failures

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute or protocol-relative URL (open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.queue")


@bp.route("/login", methods=["GET", "POST"])
def login():
    settings = context().settings
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "unknown"
    if too_many_failures(settings.database_url, name, address, settings.login_attempts, settings.login_window_seconds):
        minutes = settings.login_window_seconds // 60
        return render_template("login.html", next=request.form.get("next", ""),
                               error=f"Too many failed logins. Try again in {minutes} minutes."), 429
    user_id = authenticate(settings.database_url, name, password, address)
    if user_id is None:
        return render_template("login.html", next=request.form.get("next", ""),
                               error="Wrong user name or password."), 401
    session.clear()  # nothing from before the login survives it
    session.permanent = True
    session.update(user_id=user_id, user=name)
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
