"""The review page's users, their session epochs and the backoff on failed logins, all in
PostgreSQL so that every web process (and every machine) sees the same accounts, ends the
same sessions and counts the same failures."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select, text
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
        user.session_epoch += 1  # every open session ends: a stolen cookie too


DISABLED = "!disabled"  # not a hash any password matches


def disable_user(url: str, name: str) -> None:
    """Lock a user out (their reviews keep their name); set-password lets them in again."""
    with session_scope(url) as session:
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        if user is None:
            raise UserError(f"no user {name!r}")
        user.password_hash = DISABLED
        user.session_epoch += 1


def end_sessions(url: str, user_id: int) -> None:
    """Log a user out everywhere: every cookie issued before now stops working."""
    with session_scope(url) as session:
        user = session.get(User, user_id)
        if user is not None:
            user.session_epoch += 1


def active_user(url: str, user_id: int, epoch: int | None = None) -> str | None:
    """The name of a user who may still use the page with a session of this epoch (checked on
    every request, so logging out, a password change or disabling ends open sessions at
    once), else None."""
    with session_scope(url) as session:
        row = session.execute(select(User.name, User.password_hash, User.session_epoch)
                              .where(User.id == user_id)).first()
    if row is None or row.password_hash == DISABLED or row.session_epoch != epoch:
        return None
    return row.name


def list_users(url: str) -> list[tuple[str, datetime, bool]]:
    """(name, created, can log in) of every user."""
    with session_scope(url) as session:
        rows = session.execute(select(User.name, User.created_at, User.password_hash).order_by(User.name)).all()
    return [(r.name, r.created_at, r.password_hash != DISABLED) for r in rows]


@dataclass(frozen=True)
class Login:
    user_id: int | None = None
    epoch: int = 0
    wait_seconds: float = 0.0  # > 0: refused without looking at the password; try again after this


def backoff(failures: int, attempts: int, window_seconds: int) -> float:
    """Seconds to wait after the last failure before the next try: none for the first
    `attempts` failures, then doubling from 1/32 of the window up to the window."""
    if failures < attempts:
        return 0.0
    return min(float(window_seconds), window_seconds / 32 * 2 ** (failures - attempts))


SPRAY_FACTOR = 4  # one address may fail this many times `attempts` (across names) before it waits


def _wait(session, name: str, remote_addr: str, attempts: int, window_seconds: int) -> float:
    """How long this name from this address must still wait. Failures count per name and
    address, so guessing someone's password from elsewhere never locks them out of their own
    address, and per address across names (password spraying) at SPRAY_FACTOR times the limit."""
    now = datetime.now(timezone.utc)
    since = now - timedelta(seconds=window_seconds)
    pair, last_pair, by_addr, last_addr = session.execute(
        select(func.count().filter(LoginFailure.username == name),
               func.max(LoginFailure.created_at).filter(LoginFailure.username == name),
               func.count(), func.max(LoginFailure.created_at))
        .where(LoginFailure.created_at >= since, LoginFailure.remote_addr == remote_addr)).one()
    waits = []
    for failures, last, limit in ((pair, last_pair, attempts), (by_addr, last_addr, attempts * SPRAY_FACTOR)):
        if last is not None:
            last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
            waits.append((last + timedelta(seconds=backoff(failures, limit, window_seconds)) - now).total_seconds())
    return max([0.0, *waits])


def login(url: str, name: str, password: str, remote_addr: str, attempts: int, window_seconds: int) -> Login:
    """Check a password under the backoff. The check and the count are one step per name and
    address (an advisory lock on PostgreSQL), and the attempt is counted before the password is
    looked at, so concurrent tries cannot slip past the limit; a right password clears the
    failures of its name and address."""
    name, remote_addr = name[:64], remote_addr[:64]
    with session_scope(url) as session:
        if session.bind.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": zlib.crc32(f"login\0{name}\0{remote_addr}".encode())})
        wait = _wait(session, name, remote_addr, attempts, window_seconds)
        if wait > 0:
            return Login(wait_seconds=wait)
        session.add(LoginFailure(username=name, remote_addr=remote_addr))
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        # Hash even for an unknown name, so the answer's timing does not tell which names exist.
        usable = user is not None and user.password_hash != DISABLED
        ok = check_password_hash(user.password_hash if usable else _DUMMY_HASH, password) and usable
        if not ok:
            return Login()
        session.execute(delete(LoginFailure).where(LoginFailure.username == name,
                                                   LoginFailure.remote_addr == remote_addr))
        return Login(user.id, user.session_epoch)


_DUMMY_HASH = generate_password_hash("not a password of anyone")
