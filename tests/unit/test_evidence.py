"""The team's reviews as evidence about a model on this studio, and the statistics over it."""

import pytest
from sqlalchemy import select

from cutout import evidence, lifecycle, trust
from cutout.db import session_scope
from cutout.naming import VIEWS
from cutout.schema import Garment, ModelVersion, Reference, Review, Segmentation, Shot, User

SURE = {"height_fraction": 0.8, "garment_fraction": 0.3}  # views that agree on height and size


def garment(s, gid: str, n0: int, confidences, version_id: int = 1, dice=None):
    """A garment with its three views segmented by `version_id`; the segmentations' ids."""
    s.add(Garment(id=gid))
    ids = []
    for i, (view, confidence) in enumerate(zip(VIEWS, confidences)):
        n = n0 + i
        s.add(Shot(id=n, bucket="b", key=f"shots/{gid}_{view}.png", etag="e", size_bytes=1, garment_id=gid, view=view,
                   status="done"))
        s.flush()
        seg = Segmentation(shot_id=n, model_version_id=version_id, shot_etag="e", width=1, height=1,
                           first_mask_key="f", mask_key="m", cutout_key="c", overlay_key="o", threshold_first=0.5,
                           confidence=confidence, confidence_parts=dict(SURE), dice=None, timings={})
        s.add(seg)
        s.flush()
        ids.append(seg.id)
    return ids


def reviewed_garment(s, gid: str, n0: int, confidences, decisions=("approved",) * 3):
    """A garment segmented by version 1 whose three views the team has reviewed."""
    for i, seg in enumerate(garment(s, gid, n0, confidences)):
        review(s, n0 + i, seg, decisions[i])


def review(s, shot_id: int, segmentation_id: int, decision: str, version_id: int = 1):
    user = s.query(User).filter_by(name="ann").one_or_none() or User(name="ann", password_hash="x")
    s.add(user)
    s.flush()
    lifecycle.reviewed(s, Review(shot_id=shot_id, shot_etag="e", segmentation_id=segmentation_id,
                                 model_version_id=version_id, user_id=user.id, decision=decision),
                       s.get(Shot, shot_id).garment_id)


def scored(s, segmentation_id: int, shot_id: int, dice: float, etag: str = "r1"):
    """The worker scored the mask against the view's reference (a correction, a hand cutout)."""
    shot = s.get(Shot, shot_id)
    s.add(Reference(bucket="b", key=f"cutouts/{shot.garment_id}_{shot.view}.png", etag=etag, size_bytes=1,
                    garment_id=shot.garment_id, view=shot.view))
    seg = s.get(Segmentation, segmentation_id)
    seg.dice, seg.dice_reference_etag = dice, etag


@pytest.fixture
def url(sqlite_url):
    with session_scope(sqlite_url) as s:
        s.add(ModelVersion(id=1, version="m-1", location="/m", params={}, metrics={}, release_threshold=0.96))
        s.add(ModelVersion(id=2, version="m-2", location="/m2", params={}, metrics={}))
    return sqlite_url


def test_each_kind_of_review_is_evidence_about_the_version_it_judged(url):
    with session_scope(url) as s:
        approved = garment(s, "g-approved", 1, (0.99, 0.98, 0.97))
        for i, seg in enumerate(approved):
            review(s, 1 + i, seg, "approved")
        corrected = garment(s, "g-corrected", 10, (0.99, 0.98, 0.97))
        review(s, 10, corrected[0], "approved")
        review(s, 11, corrected[1], "corrected")  # not scored yet
        review(s, 12, corrected[2], "corrected")
        scored(s, corrected[2], 12, 0.96)  # a small correction: still right
        manual = garment(s, "g-manual", 20, (0.99, 0.98, 0.97))
        review(s, 20, manual[0], "needs_manual_cut")
        other = garment(s, "g-other", 30, (0.99, 0.99, 0.99), version_id=2)
        review(s, 30, other[0], "approved", version_id=2)
    with session_scope(url) as s:
        views = {(v.garment_id, v.view): v for v in evidence.view_evidence(s, 1)}
        garments = evidence.garment_evidence(s, 1)
    assert ("g-other", "Front") not in views, "evidence is per model version"
    assert views[("g-approved", "Back")].verdict == evidence.RIGHT
    assert views[("g-corrected", "FrontRight")].verdict == evidence.PENDING, "a correction waits for its score"
    assert views[("g-corrected", "Back")].verdict == evidence.RIGHT and views[("g-corrected", "Back")].dice == 0.96
    assert views[("g-manual", "Front")].verdict == evidence.WRONG, "wrong until the hand cutout arrives"
    assert views[("g-approved", "Front")].signals == SURE and views[("g-approved", "Back")].confidence == 0.97
    assert garments["g-approved"].verdict == evidence.RIGHT and garments["g-approved"].would_release
    assert garments["g-corrected"].verdict == evidence.PENDING
    assert garments["g-manual"].verdict == evidence.WRONG, "one wrong view makes the garment wrong"
    assert not garments["g-manual"].would_release, "two of its views were never reviewed"


def test_a_scored_manual_cut_and_a_poor_correction_decide_by_their_dice(url):
    with session_scope(url) as s:
        segs = garment(s, "g", 1, (0.99, 0.95, 0.99))
        review(s, 1, segs[0], "needs_manual_cut")
        scored(s, segs[0], 1, 0.97)  # the hand cutout arrived: the model was right after all
        review(s, 2, segs[1], "corrected")
        scored(s, segs[1], 2, 0.90)
        review(s, 3, segs[2], "approved")
    with session_scope(url) as s:
        views = {v.view: v for v in evidence.view_evidence(s, 1)}
        g = evidence.garment_evidence(s, 1)["g"]
    assert views["Front"].verdict == evidence.RIGHT and views["FrontRight"].verdict == evidence.WRONG
    assert g.verdict == evidence.WRONG and not g.would_release, "FrontRight's 0.95 is under the rule's 0.96"


def test_a_score_against_an_older_reference_does_not_count(url):
    with session_scope(url) as s:
        segs = garment(s, "g", 1, (0.99, 0.99, 0.99))
        review(s, 1, segs[0], "corrected")
        scored(s, segs[0], 1, 0.99, etag="new")
        s.get(Segmentation, segs[0]).dice_reference_etag = "old"  # scored before the correction arrived
    with session_scope(url) as s:
        [view] = evidence.view_evidence(s, 1)
    assert view.dice is None and view.verdict == evidence.PENDING


def test_wilson_interval():
    p = trust.wilson(30, 30)
    assert p.estimate == 1.0 and p.high == 1.0 and p.low == pytest.approx(0.8865, abs=1e-4)
    p = trust.wilson(45, 50)
    assert p.low == pytest.approx(0.7864, abs=1e-4) and p.high == pytest.approx(0.9565, abs=1e-4)
    assert trust.wilson(0, 0).estimate is None and (trust.wilson(0, 0).low, trust.wilson(0, 0).high) == (0.0, 1.0)
    assert trust.wilson(0, 10).low == 0.0 < trust.wilson(0, 10).high < 0.35
    assert "29/30 right" in str(trust.wilson(29, 30))
    with pytest.raises(ValueError):
        trust.wilson(3, 2)


def test_audits_are_drawn_per_garment_and_version_the_same_everywhere():
    ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(4000)]
    first = [trust.is_audit(g, "m-1", 0.1) for g in ids]
    assert first == [trust.is_audit(g, "m-1", 0.1) for g in ids], "deterministic"
    assert 0.08 < sum(first) / len(ids) < 0.12, "about the share asked for"
    assert first != [trust.is_audit(g, "m-2", 0.1) for g in ids], "a new version draws afresh"
    assert not any(trust.is_audit(g, "m-1", 0.0) for g in ids) and all(trust.is_audit(g, "m-1", 1.0) for g in ids)


def test_the_report_heads_with_the_mode_and_the_evidence_it_rests_on(url):
    from cutout.release import Rule
    from cutout.report import format_table, needs_cutout

    with session_scope(url) as s:
        for k in range(3):  # three garments the rule would release, all approved
            reviewed_garment(s, f"g{k}", 10 * k + 1, (0.99, 0.98, 0.97))
        segs = garment(s, "g-wrong", 100, (0.99, 0.99, 0.99))  # sure of itself, and wrong on its Back
        review(s, 100, segs[0], "approved")
        review(s, 101, segs[1], "approved")
        review(s, 102, segs[2], "needs_manual_cut")
        garment(s, "g-doubtful", 200, (0.99, 0.90, 0.99))  # below the rule: no evidence about releases
        garment(s, "g-sure", 300, (0.99, 0.99, 0.99))  # would be released, but the model has not earned it
    lifecycle_refresh(url)
    report = needs_cutout(url, Rule(), include_all=True)
    t = report["trust"]
    assert (t["model_version"], t["mode"], t["reviewed"], t["right"]) == ("m-1", "shadow", 4, 3)
    assert (t["low"], t["high"]) == (round(trust.wilson(3, 4).low, 4), round(trust.wilson(3, 4).high, 4))
    assert "shadow mode: 4 reviewed garments the rule would release, 30 needed" in format_table(report)
    sure = next(g for g in report["garments"] if g["garment_id"] == "g-sure")
    assert sure["status"] == "needs a person" and sure["reasons"] == ["to be checked by the team"]
    assert report["counts"]["released"] == 0, "nothing is released in shadow mode"


def lifecycle_refresh(url):
    from cutout import ranking

    with session_scope(url) as s:
        ranking.refresh_all(s)


def test_the_switching_rule_is_conservative():
    policy = trust.Policy()
    assert not policy.decide(trust.wilson(29, 29))[0], "never on fewer than 30"
    assert not policy.decide(trust.wilson(30, 30))[0], "30 of 30: the lower bound is 0.887"
    assert policy.decide(trust.wilson(35, 35)) == (True, "releasing: 35/35 right, 1.000 [0.901, 1.000] "
                                                         "(target 98%, lower bound at least 90%)")
    assert not policy.decide(trust.wilson(35, 36))[0], "one wrong in 36 is 97 %, under the target"
    assert policy.decide(trust.wilson(55, 56))[0]
    with pytest.raises(ValueError):
        trust.Policy(min_garments=29)


def test_a_model_earns_releasing_on_the_studios_reviews_and_a_wrong_audit_takes_it_back(url):
    from cutout.release import Rule
    from cutout.report import needs_cutout

    with session_scope(url) as s:
        for k in range(35):
            reviewed_garment(s, f"g{k:02d}", 10 * k + 1, (0.99, 0.98, 0.97))
            assert s.get(ModelVersion, 1).releasing == (k == 34), k
        garment(s, "new", 1000, (0.99, 0.99, 0.99))
    lifecycle_refresh(url)
    status = {g["garment_id"]: g["status"] for g in needs_cutout(url, Rule(), include_all=True)["garments"]}
    assert status["new"] == "released", "earned: a garment the rule lets out needs nobody"
    audited = needs_cutout(url, Rule(audit_share=1.0), include_all=True)["garments"]
    assert {g["garment_id"]: g["reasons"] for g in audited}["new"] == ["to be checked by the team"]

    with session_scope(url) as s:  # the audit finds the model wrong on its Back view
        segs = s.execute(select(Segmentation.id).join(Shot).where(Shot.garment_id == "new")
                         .order_by(Shot.id)).scalars().all()
        for shot_id, seg, decision in zip((1000, 1001, 1002), segs, ("approved", "approved", "needs_manual_cut")):
            review(s, shot_id, seg, decision)
        evidence_now = s.get(ModelVersion, 1).evidence
        assert not s.get(ModelVersion, 1).releasing and (evidence_now["reviewed"], evidence_now["right"]) == (36, 35)


def test_the_producer_serves_the_release_gauges(url):
    import math

    from producer import metrics

    metrics.trust(url)  # nothing segmented yet: nothing known
    assert math.isnan(metrics.RELEASE_PRECISION._value.get()) and metrics.RELEASE_MODE._value.get() == 0
    with session_scope(url) as s:
        for k in range(35):
            reviewed_garment(s, f"g{k:02d}", 10 * k + 1, (0.99, 0.98, 0.97))
    metrics.trust(url)
    assert metrics.RELEASE_PRECISION._value.get() == 1.0 and metrics.RELEASE_MODE._value.get() == 1
    assert metrics.RELEASE_PRECISION_LOW._value.get() == pytest.approx(trust.wilson(35, 35).low, abs=1e-4)


def test_the_release_rule_is_fitted_on_the_studios_reviews_with_the_uncertainty_counted(url, monkeypatch):
    """40 reviewed garments, ranked by confidence: the 36 surest right, the 37th wrong, then
    three more right. 36 of 36 meet the policy (lower bound 0.904); 37 do not (97 %); 40 do not
    either (39 of 40, 97.5 %). The rule lands between the 36th and the 37th."""
    from click.testing import CliRunner

    from cutout.cli import main

    confidences = [0.999 - 0.002 * k for k in range(40)]
    with session_scope(url) as s:
        for k, c in enumerate(confidences):
            reviewed_garment(s, f"g{k:02d}", 10 * k + 1, (c, c, c),
                             ("approved", "approved", "needs_manual_cut" if k == 36 else "approved"))
        assert not s.get(ModelVersion, 1).releasing, "its CCP-tuned 0.96 lets 20 out: too few to judge"
        rule = evidence.fit_release_rule(s, 1)
        assert (rule["released"], rule["right"], rule["garments"]) == (36, 36, 40)
        assert rule["threshold"] == pytest.approx((confidences[35] + confidences[36]) / 2)
        assert s.get(ModelVersion, 1).release_threshold == rule["threshold"]
        assert s.get(ModelVersion, 1).releasing and s.get(ModelVersion, 1).params["studio_rule"] == rule
    monkeypatch.setenv("CUTOUT_DATABASE_URL", url)
    out = CliRunner().invoke(main, ["calibrate", "--from-reviews"])
    assert out.exit_code == 0, out.output
    assert '"released": 36' in out.output


def test_without_enough_evidence_the_rule_stays_and_so_does_shadow_mode(url):
    with session_scope(url) as s:
        for k in range(10):
            reviewed_garment(s, f"g{k}", 10 * k + 1, (0.99, 0.99, 0.99))
        rule = evidence.fit_release_rule(s, 1)
        assert rule["released"] == 0 and rule["threshold"] == 0.96 and "no threshold" in rule["reason"]
        assert not s.get(ModelVersion, 1).releasing


def test_the_models_page_draws_the_studios_own_evidence(url):
    from review import charts

    with session_scope(url) as s:
        for k, (confidence, decision) in enumerate(((0.99, "approved"), (0.98, "approved"), (0.97, "needs_manual_cut"))):
            reviewed_garment(s, f"g{k}", 10 * k + 1, (confidence,) * 3, (decision, "approved", "approved"))
    curve, views = charts.studio_evidence(url)
    assert [(c["released"], c["precision"]) for c in curve] == [(1 / 3, 1.0), (2 / 3, 1.0), (1.0, 2 / 3)]
    assert len(views) == 8 and (0.99, 1.0) in views, "approved views count as Dice 1; the manual cut has none yet"
