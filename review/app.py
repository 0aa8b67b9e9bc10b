"""The review web app (Flask, server-rendered; no JavaScript build step).

Every page needs a login but /healthz and /login; every form carries a CSRF token
(Flask-WTF); the session is a signed, HttpOnly, SameSite=Lax cookie that ends on logout, on a
password change, on disabling (its user's session epoch, checked on every request) and
CUTOUT_SESSION_HOURS after the login however busy. Every response carries a content security
policy that allows nothing from elsewhere and no framing. Images reach the browser through
the app (keys always come from the database, never from the request).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from cutout.config import Settings
from cutout.storage import Storage, storage_from_settings
from review.users import active_user

OPEN_ENDPOINTS = {"auth.login", "pages.healthz", "static"}
# Only this site's own scripts, styles and images (and the canvas's blob: and data: images); no
# framing by any site (the Approve buttons cannot be clickjacked); forms post only here.
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


@dataclass
class Context:
    settings: Settings
    storage: Storage


def context() -> Context:
    return current_app.extensions["cutout"]


def create_app(settings: Settings, storage: Storage | None = None) -> Flask:
    settings = settings.require("database_url", "bucket", "secret_key")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        # The cookie's expiry is set at login and never pushed back by later requests.
        SESSION_REFRESH_EACH_REQUEST=False,
        # The form's own fields fit in far less than this on top of the file itself.
        MAX_CONTENT_LENGTH=settings.upload_max_bytes + 64 * 1024,
        WTF_CSRF_TIME_LIMIT=int(settings.session_hours * 3600),
    )
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address (for the login backoff) and scheme as the proxies in front say.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.extensions["cutout"] = Context(settings, storage or storage_from_settings(settings))
    CSRFProtect(app)

    from review import auth, pages

    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)

    @app.before_request
    def require_login():
        if request.endpoint in OPEN_ENDPOINTS:
            return None
        if "user_id" in session:
            fresh = time.time() - session.get("issued", 0) < settings.session_hours * 3600
            if fresh and active_user(settings.database_url, session["user_id"], session.get("epoch")) is not None:
                return None
            session.clear()
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return render_template("error.html", title="Not logged in", message="Log in first."), 401

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if settings.secure_cookies:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.errorhandler(400)
    def bad_request(error):
        return render_template("error.html", title="Bad request", message=error.description), 400

    @app.errorhandler(CSRFError)
    def csrf_refused(error):
        return render_template("error.html", title="Form expired",
                               message=f"The form was refused ({error.description}). Reload the page and try again."), 400

    @app.errorhandler(413)
    def too_large(_error):
        cap = settings.upload_max_bytes / 1024 / 1024
        return render_template("error.html", title="Upload too large",
                               message=f"The file is over the upload cap of {cap:.0f} MB; nothing was changed."), 413

    @app.errorhandler(404)
    def not_found(_error):
        return render_template("error.html", title="Not found", message="There is nothing here."), 404

    return app

