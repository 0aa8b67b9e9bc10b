import pytest

from cutout import lifecycle, models, ranking, release
from cutout.db import session_scope
from cutout.ranking import Filters
from cutout.release import Rule, ViewLimits
from cutout.report import format_csv, format_table, needs_cutout
from cutout.schema import Garment, ModelVersion, Segmentation, Shot

GOOD = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
BAD = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
WORSE = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
WAITS = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"


@pytest.fixture
def url(sqlite_url):
    return fill(sqlite_url)


def fill(url):
    """Four garments: one released, one waiting, two that need a person (also used on PostgreSQL)."""
    with session_scope(url) as s:
        params = {"first": {"threshold": 0.5}, "second": {"release": {"min_predicted_dice": 0.955}}}
        # A model that has earned releasing on this studio (cutout.trust): its rule decides here.
        s.add(ModelVersion(id=1, version="m-1", location="/m", metrics={}, params=params,
                           release_threshold=models.release_threshold(params), releasing=True))
        n = 0
        for gid, views in {
            GOOD: {"Front": (0.98, 0.99), "FrontRight": (0.97, None), "Back": (0.96, None)},
            WAITS: {"Front": (0.99, None), "Back": (0.99, None)},
            BAD: {"Front": (0.95, 0.93), "FrontRight": (0.70, None), "Back": (0.99, None)},
            WORSE: {"Front": "failed", "Back": (0.5, None)},
        }.items():
            s.add(Garment(id=gid))
            for view, value in views.items():
                n += 1
                shot = Shot(id=n, bucket="b", key=f"shots/{gid}_{view}.png", etag="e", size_bytes=1,
                            garment_id=gid, view=view)
                s.add(shot)
                if value == "failed":
                    shot.status, shot.failure_reason = "failed", "bad input: not a PNG (signature missing)"
                    continue
                shot.status = "done"
                s.flush()
                s.add(Segmentation(shot_id=n, model_version_id=1, shot_etag="e", width=1, height=1,
                                   first_mask_key="f", mask_key=f"m{n}", cutout_key="c", overlay_key="o",
                                   threshold_first=0.5, confidence=value[0], confidence_parts={},
                                   dice=value[1], timings={}))
        ranking.refresh_all(s)  # as the producer and the workers do for each of their writes
    return url


def test_ranked_worst_first_with_reasons(url):
    report = needs_cutout(url, Rule(0.9, 0.97))
    ids = [g["garment_id"] for g in report["garments"]]
    assert ids == [WORSE, BAD]  # GOOD needs nobody
    worse, bad = report["garments"]
    assert worse["score"] == 0.0 and worse["missing_views"] == ["FrontRight"]
    assert any("failed: bad input" in r for r in worse["reasons"])
    assert bad["score"] == 0.7
    assert any("Dice 0.9300 < 0.97" in r for r in bad["reasons"])
    assert report["failed_shots"][0]["reason"].startswith("bad input")


def test_all_lists_waiting_and_released_garments_too(url):
    report = needs_cutout(url, Rule(0.9, 0.97), include_all=True)
    assert [(g["garment_id"], g["status"]) for g in report["garments"]] == [
        (WORSE, "needs a person"), (BAD, "needs a person"), (WAITS, "waiting"), (GOOD, "released")]
    assert report["counts"] == {"needs a person": 2, "waiting": 1, "reviewed": 0, "released": 1}
    assert report["garments"][2]["waiting_for"] == ["FrontRight missing"], "never released with a view missing"


def test_each_models_release_rule_decides_by_default(url):
    report = needs_cutout(url, Rule(), include_all=True)
    status = {g["garment_id"]: g for g in report["garments"]}
    assert status[GOOD]["status"] == "released", "0.96 and up pass the model's rule of 0.955"
    assert status[GOOD]["views"]["Back"]["release_threshold"] == 0.955
    strict = needs_cutout(url, Rule(0.965, 0.97), include_all=True)  # an override: the Back view (0.96) now fails it
    good = next(g for g in strict["garments"] if g["garment_id"] == GOOD)
    assert good["status"] == "needs a person" and good["reasons"] == ["Back confidence 0.9600 < 0.9650"]


def test_one_bad_view_keeps_a_garment_from_release(url):
    report = needs_cutout(url, Rule(), include_all=True)
    bad = next(g for g in report["garments"] if g["garment_id"] == BAD)
    assert bad["status"] == "needs a person" and "FrontRight confidence 0.7000 < 0.9550" in bad["reasons"]


def test_table_and_csv(url):
    report = needs_cutout(url, Rule(0.9, 0.97))
    table = format_table(report)
    assert WORSE in table and "failed" in table and "not a PNG" in table
    assert table.startswith("1 garments released, 2 need a person, 1 waiting, 0 settled by a review")
    assert "the tallest view at most 1.42x the shortest" in table.splitlines()[0]
    rows = format_csv(report).strip().splitlines()
    assert rows[0].startswith("rank,garment_id,status") and len(rows) == 1 + 2 + 3


def _review(url, shot_id, decision, etag="e"):
    from cutout.schema import Review, User

    with session_scope(url) as s:
        user = s.query(User).filter_by(name="ann").one_or_none() or User(name="ann", password_hash="x")
        s.add(user)
        s.flush()
        lifecycle.reviewed(s, Review(shot_id=shot_id, shot_etag=etag, user_id=user.id, decision=decision),
                           s.get(Shot, shot_id).garment_id)


def test_reviews_settle_views_and_a_manual_cut_keeps_the_garment_with_a_person(url):
    # BAD: shots 6 (Front, Dice 0.93), 7 (FrontRight, confidence 0.70), 8 (Back, fine).
    _review(url, 6, "approved")
    bad = next(g for g in needs_cutout(url, Rule())["garments"] if g["garment_id"] == BAD)
    assert bad["reasons"] == ["FrontRight confidence 0.7000 < 0.9550"], "the approved Front needs nobody any more"
    assert bad["reviewed"] and bad["views"]["Front"]["review"]["by"] == "ann"
    _review(url, 7, "needs_manual_cut")
    bad = next(g for g in needs_cutout(url, Rule())["garments"] if g["garment_id"] == BAD)
    assert bad["reasons"] == ["FrontRight manual cut requested by ann", "FrontRight confidence 0.7000 < 0.9550"]
    _review(url, 7, "corrected")  # the newest review counts
    report = needs_cutout(url, Rule(), include_all=True)
    assert BAD not in [g["garment_id"] for g in report["garments"] if g["status"] == "needs a person"]
    assert next(g for g in report["garments"] if g["garment_id"] == BAD)["status"] == "reviewed"
    assert report["counts"]["reviewed"] == 1


def test_a_review_of_older_content_does_not_count(url):
    _review(url, 7, "approved", etag="an earlier upload")
    bad = next(g for g in needs_cutout(url, Rule())["garments"] if g["garment_id"] == BAD)
    assert "FrontRight confidence 0.7000 < 0.9550" in bad["reasons"] and "review" not in bad["views"]["FrontRight"]


def test_pages_join_up_to_the_whole_report_and_the_sql_ranking_agrees_with_the_words(url):
    _review(url, 6, "approved")  # BAD's Front settled: its score is now its other views'
    full = needs_cutout(url, Rule(), include_all=True)
    paged = []
    for offset in range(full["total"]):
        page = needs_cutout(url, Rule(), include_all=True, limit=1, offset=offset)
        assert page["total"] == full["total"] == 4 and page["garments"][0]["rank"] == offset + 1
        paged += page["garments"]
    assert [g["garment_id"] for g in paged] == [g["garment_id"] for g in full["garments"]] == [WORSE, BAD, WAITS, GOOD]
    assert [g["score"] for g in full["garments"]] == [0.0, 0.7, 0.99, 0.96]
    for status in ("needs a person", "waiting", "reviewed", "released"):
        only = needs_cutout(url, Rule(), filters=Filters(status=status))["garments"]
        assert all(g["status"] == status for g in only), "SQL and the reasons agree on every garment's status"
        assert len(only) == full["counts"][status]
    assert [g["garment_id"] for g in needs_cutout(url, Rule(), filters=Filters(reason="failed"))["garments"]] == [WORSE]
    assert [g["garment_id"] for g in needs_cutout(url, Rule(), filters=Filters(reviewed=True))["garments"]] == [BAD]
    assert not needs_cutout(url, Rule(), filters=Filters(model="another"))["garments"]


def _garment_with_heights(url, gid, heights, first_id, areas=(None, None, None)):
    """Three views the model is sure of (0.99), with these mask heights and areas (shares of the frame)."""
    with session_scope(url) as s:
        s.add(Garment(id=gid))
        for n, (view, height, area) in enumerate(zip(("Front", "FrontRight", "Back"), heights, areas), first_id):
            s.add(Shot(id=n, bucket="b", key=f"shots/{gid}_{view}.png", etag="e", size_bytes=1, garment_id=gid,
                       view=view, status="done"))
            s.flush()
            s.add(Segmentation(shot_id=n, model_version_id=1, shot_etag="e", width=1, height=1, first_mask_key="f",
                               mask_key=f"m{n}", cutout_key="c", overlay_key="o", threshold_first=0.5, confidence=0.99,
                               confidence_parts={"height_fraction": height, "garment_fraction": area}, dice=None,
                               timings={}))
        ranking.refresh(s, [gid])


def test_views_that_disagree_on_the_garments_height_keep_it_with_a_person(url):
    legs, steady = "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee", "ffffffff-ffff-4fff-8fff-ffffffffffff"
    _garment_with_heights(url, legs, (0.50, 0.51, 0.75), 100)  # one view took in the plastic legs
    _garment_with_heights(url, steady, (0.60, 0.63, 0.58), 200)  # the fixed camera's small differences
    status = {g["garment_id"]: g for g in needs_cutout(url, Rule(), include_all=True)["garments"]}
    assert status[steady]["status"] == "released"
    assert status[legs]["status"] == "needs a person"
    assert status[legs]["reasons"] == ["the views disagree on the garment's height (Front 50%, FrontRight 51%, "
                                       "Back 75% of the frame): one takes in something else or leaves part out"]
    held = needs_cutout(url, Rule(), filters=Filters(reason="height"))["garments"]
    assert [g["garment_id"] for g in held] == [legs], "the SQL ranking and the words agree"
    loose = needs_cutout(url, Rule(limits=ViewLimits(height=0.5)), include_all=True)  # CUTOUT_MAX_HEIGHT_SPREAD
    assert {g["garment_id"]: g["status"] for g in loose["garments"]}[legs] == "released"
    tight = needs_cutout(url, Rule(limits=ViewLimits(height=0.05)), filters=Filters(reason="height"))
    assert [g["garment_id"] for g in tight["garments"]] == [legs, steady]
    assert all(g["reasons"] for g in tight["garments"]) and tight["thresholds"]["max_height_spread"] == 0.05
    assert release.views_agree([0.6, None, 0.4]) is False and release.views_agree([0.6, None]) is True
    assert release.spread([0.5, 0.0]) == float("inf"), "an empty view never agrees"


def test_views_that_disagree_on_the_garments_size_keep_it_with_a_person(url):
    # One view took in the grey plastic legs as leggings: no taller than the others (each view is
    # shot at its own scale here), but wider for its height: area / height^2 0.31 against 0.15.
    wide, steady = "88888888-8888-4888-8888-888888888888", "99999999-9999-4999-8999-999999999999"
    heights = (0.60, 0.66, 0.55)
    _garment_with_heights(url, wide, heights, 300, areas=(0.054, 0.135, 0.045))
    _garment_with_heights(url, steady, heights, 400, areas=tuple(0.15 * h * h for h in heights))
    status = {g["garment_id"]: g for g in needs_cutout(url, Rule(), include_all=True)["garments"]}
    assert status[steady]["status"] == "released"
    assert status[wide]["reasons"] == ["the views disagree on the garment's size for its height (Front 0.15, "
                                       "FrontRight 0.31, Back 0.15, area / height²): one takes in something else "
                                       "or leaves part out"]
    held = needs_cutout(url, Rule(), filters=Filters(reason="size"))["garments"]
    assert [g["garment_id"] for g in held] == [wide], "the SQL ranking and the words agree"
    loose = needs_cutout(url, Rule(limits=ViewLimits(size=0.8)), include_all=True)  # CUTOUT_MAX_SIZE_SPREAD
    assert {g["garment_id"]: g["status"] for g in loose["garments"]}[wide] == "released"
    assert loose["thresholds"]["max_size_spread"] == 0.8


def test_the_rule_comes_from_the_command_then_the_settings_then_the_constants():
    from cutout.config import Settings

    settings = Settings(max_size_spread=0.4, min_confidence=0.93)
    assert Rule.from_settings(settings) == Rule(0.93, 0.97, ViewLimits(release.MAX_HEIGHT_SPREAD, 0.4), 0.1)
    assert Rule.from_settings(settings, 0.5, 0.9, height=0.2, size=0.1) == Rule(0.5, 0.9, ViewLimits(0.2, 0.1), 0.1)
    assert Rule.from_settings(settings, size=0.0).limits == ViewLimits(release.MAX_HEIGHT_SPREAD, 0.0), "0 is a value"
