"""The review page's rules, on Flask's test client with SQLite and a folder bucket: who gets
in, which forms are accepted, which uploads are refused, and what a decision changes."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import select, update

from cutout import imageio, naming, ranking
from cutout.config import Settings
from cutout.db import session_scope
from cutout.schema import Garment, ModelVersion, Review, Segmentation, Shot
from cutout.storage import LocalStorage
from review.app import create_app
from review.users import add_user, disable_user
from tests.helpers import png_bytes

GID = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
SIZE = (48, 32)  # height, width
PASSWORD = "correct horse battery"


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "bucket")


@pytest.fixture
def settings(sqlite_url, storage):
    return Settings(database_url=sqlite_url, bucket=storage.bucket, secret_key="test-secret", upload_max_bytes=50_000,
                    login_attempts=3)


@pytest.fixture
def app(settings, storage):
    rng = np.random.default_rng(0)
    with session_scope(settings.database_url) as s:
        s.add(ModelVersion(id=1, version="m-1", location="/m", metrics={}, params={}))
        s.add(Garment(id=GID))
        for n, view in enumerate(naming.VIEWS, 1):
            photo = rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8)
            mask = np.zeros(SIZE, np.uint8)
            mask[10:40, 8:24] = 255
            keys = naming.result_keys("m-1", GID, view)
            storage.put(naming.shot_key(GID, view), png_bytes(photo), "image/png")
            storage.put(keys["cutout"], png_bytes(imageio.rgba_cutout(photo, mask)), "image/png")
            storage.put(keys["overlay"], png_bytes(imageio.overlay(photo, mask)), "image/png")
            storage.put(keys["mask"], png_bytes(mask), "image/png")
            s.add(Shot(id=n, bucket=storage.bucket, key=naming.shot_key(GID, view), etag="e", size_bytes=1,
                       garment_id=GID, view=view, status="done"))
            s.flush()
            s.add(Segmentation(shot_id=n, model_version_id=1, shot_etag="e", width=SIZE[1], height=SIZE[0],
                               first_mask_key=keys["first_mask"], mask_key=keys["mask"], cutout_key=keys["cutout"],
                               overlay_key=keys["overlay"], threshold_first=0.5, confidence=0.5,
                               confidence_parts={}, timings={}))
        ranking.refresh_all(s)
    add_user(settings.database_url, "ann", PASSWORD)
    flask_app = create_app(settings, storage)
    return flask_app


def token(client, path="/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def login(client, password=PASSWORD, name="ann", next_=""):
    return client.post("/login", data={"username": name, "password": password, "next": next_,
                                       "csrf_token": token(client)})


@pytest.fixture
def client(app):
    c = app.test_client()
    assert login(c).status_code == 302
    return c


def reviews(settings):
    with session_scope(settings.database_url) as s:
        return s.execute(select(Review.decision, Review.shot_id)).all()


def test_every_page_but_health_and_login_needs_a_session(app):
    c = app.test_client()
    assert c.get("/healthz").status_code == 200 and c.get("/login").status_code == 200
    paths = {"/", "/models", "/models/quality.png", "/models/current/histogram.png", "/models/current/studio.png",
             f"/garments/{GID}",
             "/shots/1/overlay", "/shots/1/photo?w=100"}
    seen = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert seen == {"static", "auth.login", "auth.logout", "pages.healthz", "pages.queue", "pages.garment",
                    "pages.decide", "pages.image", "pages.models", "pages.quality_plot", "pages.histogram_plot",
                    "pages.studio_plot", "pages.touch_up"}, \
        "a new page: add it to this test"
    for path in paths:
        response = c.get(path)
        assert response.status_code == 302 and response.location.startswith("/login"), path
    for path in (f"/garments/{GID}/Front/approve", f"/garments/{GID}/Front/touchup", "/logout"):
        assert c.post(path).status_code in (400, 401), path  # no session, no token: refused either way
    assert reviews(app.extensions["cutout"].settings) == []


def test_login_sets_a_safe_cookie_and_never_redirects_off_site(app):
    c = app.test_client()
    response = login(c, next_="//evil.example/steal")
    assert response.status_code == 302 and response.location == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert login(app.test_client(), next_=f"/garments/{GID}").location == f"/garments/{GID}"


def test_a_form_without_a_valid_csrf_token_is_refused(client, settings):
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(f"/garments/{GID}/Front/approve", data=data)
        assert response.status_code == 400 and "Reload the page" in response.get_data(as_text=True)
    assert reviews(settings) == []
    assert client.post("/login", data={"username": "ann", "password": PASSWORD}).status_code == 400


def from_address(address):
    return {"REMOTE_ADDR": address}


def login_from(c, address, password=PASSWORD, name="ann", next_=""):
    page = c.get("/login", environ_base=from_address(address)).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return c.post("/login", data={"username": name, "password": password, "next": next_, "csrf_token": csrf},
                  environ_base=from_address(address))


def test_failed_logins_back_off_per_name_and_address_without_locking_the_person_out(app, settings):
    import time

    attacker, ann = app.test_client(), app.test_client()
    for _ in range(settings.login_attempts):
        assert login_from(attacker, "203.0.113.9", password="wrong password!").status_code == 401
    refused = login_from(attacker, "203.0.113.9")  # the right password, during the backoff
    assert refused.status_code == 429 and "Too many failed logins" in refused.get_data(as_text=True)
    assert 0 < int(refused.headers["Retry-After"]) <= settings.login_window_seconds
    # The person, from their own address, is not locked out by someone else's guesses.
    assert login_from(ann, "198.51.100.7").status_code == 302
    # After the backoff (1/32 of the window at first) the name logs in from that address too.
    quick = create_app(replace(settings, login_window_seconds=1), app.extensions["cutout"].storage).test_client()
    for _ in range(settings.login_attempts):
        assert login_from(quick, "192.0.2.1", password="wrong password!").status_code == 401
    time.sleep(0.2)
    assert login_from(quick, "192.0.2.1").status_code == 302


def test_the_backoff_doubles_and_is_capped_by_the_window():
    from review.users import backoff

    assert [backoff(n, 5, 960) for n in range(4, 12)] == [0, 30, 60, 120, 240, 480, 960, 960]


def test_a_session_ends_on_logout_password_change_and_after_its_lifetime(app, settings):
    from review.users import set_password

    for end in ("logout", "password"):
        c = app.test_client()
        assert login(c).status_code == 302
        stolen = c.get_cookie("session").value
        if end == "logout":
            page = c.get("/").get_data(as_text=True)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            assert c.post("/logout", data={"csrf_token": csrf}).status_code == 302
        else:
            set_password(settings.database_url, "ann", PASSWORD)
        replay = app.test_client()
        replay.set_cookie("session", stolen)
        assert replay.get("/").status_code == 302, f"an old cookie after {end} is no longer a session"
    # An absolute lifetime: a login of 0.0001 hours (0.36 s) is over soon, however busy.
    short = create_app(replace(settings, session_hours=0.0001), app.extensions["cutout"].storage).test_client()
    assert login(short).status_code == 302 and short.get("/").status_code == 200
    import time

    time.sleep(0.5)
    assert short.get("/").status_code == 302


@pytest.mark.parametrize("target", ["/\t/evil.example", "/%09/evil.example", "/\\evil.example", "https://evil.example/",
                                    "//evil.example", "/\n/evil.example", "javascript:alert(1)", "/ /evil.example"])
def test_login_redirects_only_to_a_path_on_this_site(app, target):
    from urllib.parse import unquote

    target = unquote(target).replace("\\t", "\t").replace("\\n", "\n")
    response = login(app.test_client(), next_=target)
    assert response.status_code == 302 and response.location == "/", (target, response.location)
    assert login(app.test_client(), next_="/?status=reviewed&page=2").location == "/?status=reviewed&page=2"


def test_every_response_carries_the_security_headers(app, client):
    for c, path in ((app.test_client(), "/login"), (client, "/"), (client, "/shots/1/overlay"), (client, "/nowhere")):
        headers = c.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "same-origin", path


@pytest.mark.parametrize("path,status", [("/?page=99999999999999999999", 400), ("/?page=-1", 400), ("/?page=x", 400),
                                         ("/?page=50", 404), ("/shots/99999999999999999999/photo", 404),
                                         ("/shots/1/photo?w=-5", 400), ("/shots/1/photo?w=1e9", 400)])
def test_numeric_parameters_are_checked_before_the_database(client, path, status):
    assert client.get(path).status_code == status


def test_images_are_served_as_what_they_are(client, settings, storage):
    from cutout import imageio as io_

    jpeg = io_.thumbnail_jpeg(storage.get(naming.result_keys("m-1", GID, "Front")["overlay"]), 32)
    storage.put(naming.result_keys("m-1", GID, "Front")["overlay"], jpeg, "image/jpeg")
    response = client.get("/shots/1/overlay")
    assert response.mimetype == "image/jpeg" and response.data == jpeg
    assert client.get("/shots/1/cutout").mimetype == "image/png"


def test_passwords_are_stored_hashed_and_a_disabled_user_is_out_at_once(client, settings):
    from cutout.schema import User

    with session_scope(settings.database_url) as s:
        stored = s.execute(select(User.password_hash).where(User.name == "ann")).scalar_one()
    assert PASSWORD not in stored and stored.startswith("scrypt:")
    assert client.get("/").status_code == 200
    disable_user(settings.database_url, "ann")
    assert client.get("/").status_code == 302, "the open session ends with the account"
    assert login(client).status_code == 401


def test_approve_writes_the_cutout_as_the_reference_and_records_who(client, settings, storage):
    response = client.post(f"/garments/{GID}/Front/approve", data={"csrf_token": token(client, f"/garments/{GID}")})
    assert response.status_code == 302
    assert storage.get(naming.cutout_key(GID, "Front")) == storage.get(naming.result_keys("m-1", GID, "Front")["cutout"])
    assert reviews(settings) == [("approved", 1)]
    page = client.get(f"/garments/{GID}").get_data(as_text=True)
    assert "approved" in page and "by ann" in page


@pytest.mark.parametrize("upload, message", [
    (b"GIF89a not a png at all", "not a PNG"),
    (png_bytes(np.zeros((*SIZE, 3), np.uint8)), "RGB PNG without transparency; a corrected cutout needs an alpha"),
    (png_bytes(np.zeros(SIZE, np.uint8)), "grey PNG without transparency; a corrected cutout needs an alpha"),
    (png_bytes(np.zeros((SIZE[0] + 2, SIZE[1], 4), np.uint8)), "the cutout is 32x50, the shot 32x48"),
    (b"\x89PNG" + bytes(60_000), "over the upload cap"),
])
def test_a_bad_upload_is_refused_readably_and_changes_nothing(client, settings, storage, upload, message):
    import io

    response = client.post(f"/garments/{GID}/FrontRight/correct", content_type="multipart/form-data",
                           data={"csrf_token": token(client, f"/garments/{GID}"),
                                 "cutout": (io.BytesIO(upload), "fix.png")})
    assert response.status_code in (400, 413)
    assert message in response.get_data(as_text=True)
    assert reviews(settings) == []
    assert not list(storage.list(naming.CUTOUTS_PREFIX))


def test_a_good_upload_is_stored_as_the_views_reference(client, settings, storage):
    import io

    cutout = np.zeros((*SIZE, 4), np.uint8)
    cutout[5:30, 5:20] = 255
    response = client.post(f"/garments/{GID}/FrontRight/correct", content_type="multipart/form-data",
                           data={"csrf_token": token(client, f"/garments/{GID}"),
                                 "cutout": (io.BytesIO(png_bytes(cutout)), "fix.png")})
    assert response.status_code == 302
    assert storage.get(naming.cutout_key(GID, "FrontRight")) == png_bytes(cutout)
    assert reviews(settings) == [("corrected", 2)]


def test_the_queue_lists_garments_until_every_view_is_settled(client):
    assert GID in client.get("/").get_data(as_text=True)
    for view in naming.VIEWS[:2]:
        client.post(f"/garments/{GID}/{view}/approve", data={"csrf_token": token(client, f"/garments/{GID}")})
    assert GID in client.get("/").get_data(as_text=True)
    assert GID not in client.get("/?reviewed=no").get_data(as_text=True)
    client.post(f"/garments/{GID}/Back/manual", data={"csrf_token": token(client, f"/garments/{GID}")})
    page = client.get("/").get_data(as_text=True)
    assert GID in page and "manual cut requested by ann" in page
    client.post(f"/garments/{GID}/Back/approve", data={"csrf_token": token(client, f"/garments/{GID}")})
    assert GID not in client.get("/").get_data(as_text=True)
    assert GID in client.get("/?status=reviewed").get_data(as_text=True)


def test_images_come_from_the_database_keys_only(client):
    response = client.get("/shots/1/overlay?w=16")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert imageio.png_header(client.get("/shots/1/cutout").data)[3] == "RGBA"
    assert client.get("/shots/1/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/shots/99/photo").status_code == 404


def test_model_history_and_plots(client, settings):
    import cv2

    from review import charts

    models_page = client.get("/models").get_data(as_text=True)
    assert "m-1" in models_page and "shadow mode: no review of its results yet" in models_page
    for path in ("/models/quality.png", "/models/current/histogram.png", "/models/current/studio.png"):
        response = client.get(path)
        image = cv2.imdecode(np.frombuffer(response.data, np.uint8), cv2.IMREAD_COLOR)
        assert response.status_code == 200 and image is not None and image.std() > 10, path
    # Nothing promoted: the histograms show the model the fleet runs, the newest to segment.
    assert charts.current_scores(settings.database_url) == ([0.5, 0.5, 0.5], [])
    with session_scope(settings.database_url) as s:
        s.add(ModelVersion(id=2, version="m-2", location="/m2", metrics={}, params={}, is_current=True))
    assert charts.current_scores(settings.database_url) == ([], []), "the promoted one, once there is one"
    # A version's live figures and its fitted rule, as a team lead reads them.
    with session_scope(settings.database_url) as s:
        row = s.get(ModelVersion, 2)
        row.releasing, row.release_threshold = True, 0.9612
        row.evidence = {"reviewed": 41, "right": 41, "precision": 1.0, "low": 0.914, "high": 1.0,
                        "reason": "releasing: 41/41 right"}
        row.params = {"studio_rule": {"source": "reviews and holdout", "fitted_at": "2026-12-07T02:00:00+00:00",
                                      "reason": "41/41 right at confidence >= 0.96120"}}
    page = client.get("/models").get_data(as_text=True)
    assert "41 of 41" in page and "1.000 [0.914, 1.000]" in page and "confidence &ge; 0.9612" in page
    assert "fitted 2026-12-07 02:00 on the reviews and holdout" in page and "<strong>releasing</strong>" in page


def test_the_queue_filters_by_the_views_disagreeing_on_the_garments_size(client, settings):
    assert GID not in client.get("/?reason=size").get_data(as_text=True), "no size signals yet"
    with session_scope(settings.database_url) as s:
        for shot_id, area in ((1, 0.05), (2, 0.12), (3, 0.05)):  # FrontRight took in more, no taller
            s.execute(update(Segmentation).where(Segmentation.shot_id == shot_id).values(
                confidence_parts={"height_fraction": 0.6, "garment_fraction": area}))
        ranking.refresh_all(s)
    assert GID in client.get("/?reason=size").get_data(as_text=True)
    assert GID not in client.get("/?reason=height").get_data(as_text=True)
    assert "disagree on the garment&#39;s size for its height" in client.get(f"/garments/{GID}").get_data(as_text=True)


def test_behind_a_trusted_proxy_the_backoff_counts_the_clients_own_address(app, settings):
    proxied = create_app(replace(settings, trusted_proxies=1), app.extensions["cutout"].storage)

    def through_proxy(client_address, password):
        c = proxied.test_client()
        headers = {"X-Forwarded-For": client_address}
        page = c.get("/login", headers=headers, environ_base=from_address("10.0.0.2")).get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        return c.post("/login", data={"username": "ann", "password": password, "csrf_token": csrf}, headers=headers,
                      environ_base=from_address("10.0.0.2")).status_code

    for _ in range(settings.login_attempts):
        assert through_proxy("203.0.113.9", "wrong password!") == 401
    assert through_proxy("203.0.113.9", PASSWORD) == 429
    assert through_proxy("198.51.100.7", PASSWORD) == 302, "one proxy, many people: each counted alone"


def test_each_decision_moves_to_the_next_open_view_and_a_settled_garment_to_the_queue(client):
    csrf = token(client, f"/garments/{GID}")
    response = client.post(f"/garments/{GID}/Front/approve", data={"csrf_token": csrf})
    assert response.location == f"/garments/{GID}#view-FrontRight"
    assert 'data-focus="FrontRight"' in client.get(f"/garments/{GID}").get_data(as_text=True)
    client.post(f"/garments/{GID}/FrontRight/manual", data={"csrf_token": csrf})
    response = client.post(f"/garments/{GID}/Back/approve", data={"csrf_token": csrf})
    assert response.location == "/", "the last garment settled: back to the queue"


def test_the_garment_page_lists_its_shortcuts_and_links_the_queues_neighbours(client, settings):
    page = client.get(f"/garments/{GID}").get_data(as_text=True)
    assert "workbench.js" in page and "approve the view" in page and 'class="primary"' in page
    assert 'data-touchup="/garments/' in page and "next (J)" not in page, "alone in the queue: no neighbour"


def test_a_touched_up_mask_is_snapped_and_stored_as_the_views_correction(client, settings, storage):
    import io

    edited = np.zeros((*SIZE, 4), np.uint8)
    edited[8:44, 6:26, 3] = 255  # the garment as the person painted it
    response = client.post(f"/garments/{GID}/Back/touchup", content_type="multipart/form-data",
                           data={"csrf_token": token(client, f"/garments/{GID}"),
                                 "mask": (io.BytesIO(png_bytes(edited)), "Back-mask.png")})
    assert response.status_code == 302
    stored = imageio.decode_reference(storage.get(naming.cutout_key(GID, "Back")), SIZE, 10**6, need_alpha=True)
    assert 0.9 < (stored > 127).sum() / (edited[:, :, 3] > 127).sum() < 1.1
    assert reviews(settings) == [("corrected", 3)]
    for bad, message in ((np.zeros((*SIZE, 4), np.uint8), "the edited mask is empty"),
                         (np.zeros((10, 10, 4), np.uint8), "the cutout is 10x10, the shot 32x48")):
        response = client.post(f"/garments/{GID}/Front/touchup", content_type="multipart/form-data",
                               data={"csrf_token": token(client, f"/garments/{GID}"),
                                     "mask": (io.BytesIO(png_bytes(bad)), "m.png")})
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert reviews(settings) == [("corrected", 3)]


def test_a_brushed_mask_snaps_to_the_photos_edge():
    import cv2

    from review.actions import refine_params, snap

    photo = np.full((600, 400, 3), 215, np.uint8)  # light paper ...
    garment = np.zeros((600, 400), np.uint8)
    cv2.ellipse(garment, (200, 300), (110, 220), 0, 0, 360, 1, -1)
    photo[garment > 0] = (60, 40, 90)  # ... and a dark garment
    garment = garment > 0
    brushed = cv2.dilate(garment.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0  # a 6 px spill all round
    snapped = snap(photo, brushed, refine_params(Settings()))

    def dice(a, b):
        return 2 * (a & b).sum() / (a.sum() + b.sum())

    assert dice(snapped, garment) > 0.995 > dice(brushed, garment) + 0.01, (dice(snapped, garment), dice(brushed, garment))
