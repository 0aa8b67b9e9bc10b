"""The review page in a real headless browser (Debian's chromium, driven by Playwright) on the
real services: a garment goes through the fleet, a person logs in, approves, uploads a
correction, is refused a bad upload, and sees the garment leave the queue; the producer then
registers the new references and the worker scores the views against them."""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from sqlalchemy import select

from cutout import imageio, naming
from cutout.db import session_scope
from cutout.schema import Segmentation, Shot
from demo import synthetic
from tests.helpers import assert_standings_current, free_port, png_bytes
from tests.integration.conftest import ROOT, run_cli, wait_for

CHROMIUM = os.environ.get("CUTOUT_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Screenshots for a person to look at: where CUTOUT_TEST_ARTIFACTS says (e.g. test-artifacts/),
# else the test's own temporary folder, so a plain run leaves nothing in the checkout.
ARTIFACTS = os.environ.get("CUTOUT_TEST_ARTIFACTS")
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def review_url(fleet_env, tmp_path_factory):
    env = {**fleet_env, "CUTOUT_SECRET_KEY": "integration-test-secret"}
    subprocess.run([sys.executable, "-m", "cutout.cli", "users", "add", "reviewer"], input=PASSWORD + "\n", env=env,
                   cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    port = free_port()
    log = open(tmp_path_factory.mktemp("review") / "review.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cutout.cli", "review", "serve", "--port", str(port)], env=env,
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            return urllib.request.urlopen(url + "/healthz", timeout=2).status == 200
        except OSError:
            return proc.poll() is not None and pytest.fail("the review server exited")
    wait_for(healthy, timeout=60, what="the review server")
    yield url
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"no browser at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


def dice_of(url, gid):
    with session_scope(url) as s:
        return {view: dice for dice, view in s.execute(
            select(Segmentation.dice, Shot.view).join(Shot).where(Shot.garment_id == gid)).all()}


def test_a_reviewer_settles_a_garment_in_the_browser(fleet_env, bucket, worker, pg_url, review_url, browser, tmp_path):
    gid = synthetic.upload_garment(bucket, "review-e2e", seed=31, references=())
    run_cli(fleet_env, "produce", "--once")
    wait_for(lambda: len(dice_of(pg_url, gid)) == 3, what="three views segmented")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(review_url + "/")
    assert "/login" in page.url, "the queue needs a login"
    page.fill("input[name=username]", "reviewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    row = page.locator(f"tr[data-garment='{gid}']")
    assert row.count() == 1, "the tiny model's cutouts all need a person"
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    shots = Path(ARTIFACTS) if ARTIFACTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "review-queue.png"), full_page=True)

    row.locator("a").first.click()
    page.locator("#view-Front button[name=approve]").click()
    assert "Front approved" in page.inner_text("main")

    photo, mask = synthetic.studio_shot(31, "FrontRight")
    good = tmp_path / "FrontRight.png"
    good.write_bytes(png_bytes(imageio.rgba_cutout(photo, mask)))
    wrong = tmp_path / "wrong.png"
    wrong.write_bytes(png_bytes(np.zeros((100, 80, 4), np.uint8)))
    back = page.locator("#view-Back")
    back.locator("details.upload summary").click()
    back.locator("input[name=cutout]").set_input_files(str(wrong))
    back.locator("button[name=correct]").click()
    assert "the cutout is 80x100, the shot 1152x1728" in page.inner_text("main"), "a readable refusal"
    page.go_back()
    section = page.locator("#view-FrontRight")
    section.locator("details.upload summary").click()
    section.locator("input[name=cutout]").set_input_files(str(good))
    section.locator("button[name=correct]").click()
    assert "FrontRight: corrected cutout stored" in page.inner_text("main")
    assert gid in page.inner_text("main"), "the garment still needs its Back"
    page.locator("#view-Back button[name=approve]").click()

    page.goto(review_url + "/")
    assert page.locator(f"tr[data-garment='{gid}']").count() == 0, "settled: gone from the queue"
    page.goto(review_url + "/?status=reviewed")
    assert page.locator(f"tr[data-garment='{gid}']").count() == 1

    assert bucket.get(naming.cutout_key(gid, "FrontRight")) == good.read_bytes()
    sweep = json.loads(run_cli(fleet_env, "produce", "--once").stdout)
    assert sweep["new_references"] == 3 and sweep["scoring_enqueued"] == 3, sweep
    scored = wait_for(lambda: (d := dice_of(pg_url, gid)) and all(v is not None for v in d.values()) and d,
                      what="the views scored against the reviewers' cutouts")
    assert scored["Front"] == 1.0 and scored["Back"] == 1.0, "an approved cutout is the model's own mask"
    assert scored["FrontRight"] < 1.0
    assert_standings_current(pg_url)
    page.close()


def settle_with_keys(page) -> str:
    """Approve every open view of the garment on the page with the keyboard alone; returns the
    page the last decision landed on."""
    following = page.locator(".workbench").get_attribute("data-next")
    for _ in range(3):
        with page.expect_navigation():
            page.keyboard.press("a")
    return following


def test_the_workbench_by_keyboard_and_the_touch_up_brush(fleet_env, bucket, worker, pg_url, review_url, browser,
                                                          tmp_path):
    import cv2

    one = synthetic.upload_garment(bucket, "workbench-keys", seed=41, references=())
    two = synthetic.upload_garment(bucket, "workbench-brush", seed=42, references=())
    run_cli(fleet_env, "produce", "--once")
    wait_for(lambda: len(dice_of(pg_url, one)) == 3 and len(dice_of(pg_url, two)) == 3, what="six views segmented")
    shots = Path(ARTIFACTS) if ARTIFACTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(review_url + "/login")
    page.fill("input[name=username]", "reviewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    # The keyboard garment is the one with another after it in the queue; the other is touched up.
    page.goto(f"{review_url}/garments/{one}")
    first, second = (one, two) if page.locator(".workbench").get_attribute("data-next") else (two, one)
    seed = {one: 41, two: 42}[second]

    # Three 1152x1728 views side by side: every view's actions are on the first screen.
    page.goto(f"{review_url}/garments/{first}")
    page.wait_for_function("() => [...document.images].filter(i => i.offsetParent).every(i => i.complete)")
    for view in naming.VIEWS:
        box = page.locator(f"#view-{view} button[name=approve]").bounding_box()
        assert box and box["y"] + box["height"] <= 900, f"{view}'s Approve needs no scrolling"
    assert page.evaluate("document.documentElement.scrollHeight") <= 900 + 5, "the whole garment fits the screen"
    page.screenshot(path=str(shots / "review-garment.png"))

    # The keyboard alone settles the garment and opens the next one of the queue.
    following = settle_with_keys(page)
    assert following and page.url.endswith(following), (page.url, following)
    with session_scope(pg_url) as s:
        from cutout.schema import Review
        decided = s.execute(select(Review.decision).join(Shot, Shot.id == Review.shot_id)
                            .where(Shot.garment_id == first)).scalars().all()
    assert sorted(decided) == ["approved"] * 3

    # The touch-up: the model's Front mask (made known here) misses a disc of the garment and
    # took in a blob of the backdrop; erase the blob as a part, brush the disc back in, save.
    photo, truth = synthetic.studio_shot(seed, "Front")
    truth = truth > 127
    ys, xs = np.nonzero(cv2.erode(truth.astype(np.uint8), np.ones((61, 61), np.uint8)))
    hole = (int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))
    blob = (60, 80)  # the top-left corner: backdrop in every synthetic shot
    assert not truth[blob[1] - 30:blob[1] + 30, blob[0] - 30:blob[0] + 30].any()
    crafted = truth.astype(np.uint8) * 255
    cv2.circle(crafted, hole, 22, 0, -1)
    cv2.circle(crafted, blob, 25, 255, -1)
    with session_scope(pg_url) as s:
        mask_key = s.execute(select(Segmentation.mask_key).join(Shot).where(Shot.garment_id == second,
                                                                            Shot.view == "Front")).scalar_one()
    bucket.put(mask_key, png_bytes(crafted), "image/png")

    page.goto(f"{review_url}/garments/{second}")
    page.keyboard.press("1")
    page.keyboard.press("t")
    page.wait_for_function("() => !document.getElementById('editor').hidden && "
                           "document.querySelector('.editor-note').textContent === ''")
    canvas = page.locator("canvas.editor-mask")
    box = canvas.bounding_box()
    width, height = photo.shape[1], photo.shape[0]

    def on_screen(x, y):
        return box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height

    page.keyboard.press("r")
    page.mouse.click(*on_screen(*blob))
    page.keyboard.press("b")
    for _ in range(6):
        page.keyboard.press("]")  # a 48 px brush
    page.mouse.move(*on_screen(hole[0] - 12, hole[1]))
    page.mouse.down()
    for dx in range(-12, 13, 3):
        page.mouse.move(*on_screen(hole[0] + dx, hole[1] - 8))
        page.mouse.move(*on_screen(hole[0] + dx, hole[1] + 8))
    page.mouse.up()
    page.screenshot(path=str(shots / "review-touch-up.png"))
    with page.expect_navigation():
        page.keyboard.press("s")
    assert "touched-up cutout stored" in page.inner_text("main")

    stored = imageio.decode_reference(bucket.get(naming.cutout_key(second, "Front")), truth.shape, 10**8,
                                      need_alpha=True) > 127
    assert not stored[blob[1] - 10:blob[1] + 10, blob[0] - 10:blob[0] + 10].any(), "the blob is gone"
    assert stored[hole[1] - 8:hole[1] + 8, hole[0] - 8:hole[0] + 8].all(), "the missed disc is back"

    def dice(a, b):
        return 2 * (a & b).sum() / (a.sum() + b.sum())

    # The brush spilled past nothing it should keep: snapped to the photo, the cut is the truth's.
    assert dice(stored, truth) > 0.998 > dice(crafted > 127, truth), (dice(stored, truth), dice(crafted > 127, truth))
    with session_scope(pg_url) as s:
        from cutout.schema import Review
        assert s.execute(select(Review.decision).join(Shot, Shot.id == Review.shot_id).where(
            Shot.garment_id == second, Shot.view == "Front")).scalars().all() == ["corrected"]
    page.close()
