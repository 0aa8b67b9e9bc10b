"""The review page's users and the rate limit on failed logins, both in PostgreSQL so that
every web process (and every machine) sees the same accounts and the same count."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, or_, select
from werkzeug.security import check_password_hash, generate_password_hash

from cutout.db import session_scope
from cutout.errors import OperationalError
from cutout.schema import LoginFailure, User

MIN_PASSWORD_LENGTH = 10


class UserError(OperationalError, ValueError):
    """A user cannot be added or changed; the message says why."""


def _checked(name: str, password: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise UserError("a user name is 1-64 characters without spaces")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return name


def add_user(url: str, name: str, password: str) -> None:
    """A new user; the password is kept only as a salted scrypt hash (Werkzeug's default)."""
    name = _checked(name, password)
    with session_scope(url) as session:
        if session.execute(select(User.id).where(User.name == name)).first():
            raise UserError(f"user {name!r} exists; use `cutout users set-password {name}`")
        session.add(User(name=name, password_hash=generate_password_hash(password)))


def set_password(url: str, name: str, password: str) -> None:
    name = _checked(name, password)
    with session_scope(url) as session:
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        if user is None:
            raise UserError(f"no user {name!r}")
        user.password_hash = generate_password_hash(password)


DISABLED = "!disabled"  # not a hash any password matches


def disable_user(url: str, name: str) -> None:
    """Lock a user out (their reviews keep their name); set-password lets them in again."""
    with session_scope(url) as session:
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        if user is None:
            raise UserError(f"no user {name!r}")
        user.password_hash = DISABLED


def active_user(url: str, user_id: int) -> str | None:
    """The name of a user who may still use the page (checked on every request, so a disabled
    user's open session ends at once), else None."""
    with session_scope(url) as session:
        row = session.execute(select(User.name, User.password_hash).where(User.id == user_id)).first()
    return row.name if row is not None and row.password_hash != DISABLED else None


def list_users(url: str) -> list[tuple[str, datetime, bool]]:
    """(name, created, can log in) of every user."""
    with session_scope(url) as session:
        rows = session.execute(select(User.name, User.created_at, User.password_hash).order_by(User.name)).all()
    return [(r.name, r.created_at, r.password_hash != DISABLED) for r in rows]


def too_many_failures(url: str, name: str, remote_addr: str, attempts: int, window_seconds: int) -> bool:
    """True when this name, or this address, failed `attempts` times within the window: the
    form then refuses without looking at the password, so guessing costs a window per few tries."""
    since = datetime.now(timezone.utc) - timedelta(seconds=window_seconds)
    with session_scope(url) as session:
        by_name, by_addr = session.execute(
            select(func.count().filter(LoginFailure.username == name),
                   func.count().filter(LoginFailure.remote_addr == remote_addr))
            .where(LoginFailure.created_at >= since,
                   or_(LoginFailure.username == name, LoginFailure.remote_addr == remote_addr))
        ).one()
    return by_name >= attempts or by_addr >= attempts


def authenticate(url: str, name: str, password: str, remote_addr: str) -> int | None:
    """The user's id if the password is right; otherwise records the failure and returns None."""
    with session_scope(url) as session:
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        # Hash even for an unknown name, so the answer's timing does not tell which names exist.
        usable = user is not None and user.password_hash != DISABLED
        ok = check_password_hash(user.password_hash if usable else _DUMMY_HASH, password) and usable
        if ok:
            session.execute(delete(LoginFailure).where(LoginFailure.username == name))
            return user.id
        session.add(LoginFailure(username=name[:64], remote_addr=remote_addr[:64]))
        return None


_DUMMY_HASH = generate_password_hash("not a password of anyone")
