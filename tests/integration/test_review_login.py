"""The login backoff on PostgreSQL under concurrent guessing: the check and the count are one
locked step, so twenty tries at once get exactly the allowed number of password checks."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from cutout.config import Settings
from cutout.db import session_scope
from cutout.schema import LoginFailure
from cutout.storage import LocalStorage
from review.app import create_app
from review.users import add_user

pytestmark = pytest.mark.integration


def test_concurrent_wrong_passwords_get_no_more_checks_than_the_limit(pg_url, tmp_path):
    name = f"guessed-{uuid.uuid4().hex[:8]}"
    add_user(pg_url, name, "the real password")
    settings = Settings(database_url=pg_url, bucket=str(tmp_path), secret_key="k", login_attempts=5)
    app = create_app(settings, LocalStorage(tmp_path))

    def attempt(_):
        c = app.test_client()
        page = c.get("/login", environ_base={"REMOTE_ADDR": "203.0.113.50"}).get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        return c.post("/login", data={"username": name, "password": "a wrong guess", "csrf_token": csrf},
                      environ_base={"REMOTE_ADDR": "203.0.113.50"}).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(attempt, range(20)))
    with session_scope(pg_url) as s:
        checked = s.execute(select(func.count()).where(LoginFailure.username == name)).scalar_one()
    assert checked == 5 and codes.count(401) == 5 and codes.count(429) == 15, codes
