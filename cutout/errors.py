"""Operational errors in a person's words: what is wrong and which setting to look at, in one
line, for every command and for the producer's log. A bug (anything not recognised here)
keeps its traceback; so does everything with --debug or CUTOUT_DEBUG=1 (Settings.debug).

Errors of a service's own making (a bad image, a missing model, a refused form) derive from
OperationalError and are said as they are."""

from __future__ import annotations


class OperationalError(Exception):
    """A problem a person can fix (a setting, a file, an input), said in one line as it stands."""


def _where(url: str | None) -> str:
    """A URL without its password, for messages."""
    if not url:
        return "(not set)"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def one_line(exc: BaseException, settings=None) -> str:
    """describe(exc), or the error's type and first line: for logs that must stay one line."""
    return describe(exc, settings) or f"{type(exc).__name__}: {_first_line(exc)}"


def describe(exc: BaseException, settings=None) -> str | None:
    """One or two lines for an operational error, or None for anything else (a bug). With the
    process's settings, the lines say where each service was looked for."""
    from cutout.config import ConfigError, Settings

    settings = settings or Settings()
    if isinstance(exc, ConfigError):
        return f"configuration: {exc}"
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    if module.startswith("sqlalchemy"):
        db = _where(settings.database_url)
        detail = _first_line(exc)
        server = "the SQLite file is readable" if (settings.database_url or "").startswith("sqlite") else "PostgreSQL runs"
        if name == "OperationalError":
            return f"database unreachable or refused ({detail}) at {db}: check CUTOUT_DATABASE_URL and that {server}"
        if name == "ProgrammingError" and "does not exist" in detail:
            return f"database {db} is not migrated ({detail}): run `cutout db upgrade`"
    if module.startswith(("kombu", "redis", "amqp")):
        return (f"message broker unreachable ({_first_line(exc)}) at {_where(settings.broker_url)}: "
                "check CUTOUT_BROKER_URL and that Redis runs")
    if module.startswith("botocore"):
        endpoint = settings.s3_endpoint_url or "AWS S3"
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
            return f"object storage unreachable at {endpoint}: check CUTOUT_S3_ENDPOINT_URL"
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            return "no credentials for the object storage: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        if name == "ClientError":
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                return f"bucket {settings.bucket!r} does not exist at {endpoint}: check CUTOUT_BUCKET"
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                return f"the object storage at {endpoint} refused the credentials ({code}): check AWS_ACCESS_KEY_ID"
            return f"object storage error at {endpoint}: {code or _first_line(exc)}"
    if isinstance(exc, OperationalError):
        return str(exc)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, PermissionError)):
        return f"{exc.strerror or exc}: {exc.filename}" if getattr(exc, "filename", None) else str(exc)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return f"connection failed: {exc}"
    return None
