"""Confidence as an estimate of Dice, and the release rule chosen from it."""

import numpy as np
import pytest

from cutout.segmentation.confidence import predicted_dice
from cutout.release import (MAX_HEIGHT_SPREAD, MAX_SIZE_SPREAD, automation_curve, choose_release, garment_table,
                            operating_points, release_score, spread)
from trainer.confidence_fit import fit_calibration, isotonic


def test_isotonic_fit_is_monotone_bounded_and_least_squares():
    rng = np.random.default_rng(0)
    x = rng.random(300)
    y = np.clip(0.6 + 0.4 * x + rng.normal(0, 0.08, 300), 0, 1.2)
    kx, ky = isotonic(x, y)
    assert np.all(np.diff(kx) > 0) and np.all(np.diff(ky) >= 0), "monotone"
    assert (y > 1).sum() > 10 and ky.max() == 1.0, "blocks whose mean Dice passes 1 are held at 1"
    # Pool adjacent violators by hand on a tiny case: (1, 3, 2) -> (1, 2.5, 2.5).
    kx, ky = isotonic([0, 1, 2], [1, 3, 2])
    assert np.interp([0, 1, 2], kx, ky).tolist() == pytest.approx([1, 1, 1])  # clipped to 1
    # The pooled block {1, 2} has its knot at its centre, x = 1.5: 1 lies on the line to it.
    kx, ky = isotonic([0, 1, 2], [0.1, 0.3, 0.2])
    assert kx.tolist() == pytest.approx([0, 1.5]) and ky.tolist() == pytest.approx([0.1, 0.25])
    assert np.interp([0, 1, 2], kx, ky).tolist() == pytest.approx([0.1, 0.2, 0.25])


def test_isotonic_fit_ranks_every_score_between_its_outer_knots():
    """No staircase: two scores inside the fitted range never tie, so the release rule and the
    report's order tell apart garments whose signals differ."""
    rng = np.random.default_rng(2)
    x = rng.random(400)
    y = np.clip(0.8 + 0.15 * x + rng.normal(0, 0.05, 400), 0, 1)
    kx, ky = isotonic(x, y)
    assert np.all(np.diff(ky) > 0), "strictly increasing knots"
    inside = np.sort(x[(x > kx[0]) & (x < kx[-1])])
    assert np.all(np.diff(np.interp(inside, kx, ky)) > 0)
    # Tied scores pool into one knot: one score, one prediction.
    kx, ky = isotonic([0, 1, 1, 2], [0.1, 0.2, 0.6, 0.9])
    assert kx.tolist() == pytest.approx([0, 1, 2]) and ky.tolist() == pytest.approx([0.1, 0.4, 0.9])


def test_calibration_picks_the_informative_score_and_predicts_dice():
    rng = np.random.default_rng(1)
    dice = rng.uniform(0.7, 1.0, 400)
    signals = [{"decisiveness": rng.random(), "agreement": 1.0, "garment_fraction": 0.2,
                "expected_dice": float(np.clip(d + rng.normal(0, 0.01), 0, 1))} for d in dice]
    calibration = fit_calibration(signals, list(dice))
    # expected_dice alone, or a weighted sum that leans on it: decisiveness here is noise.
    weights = calibration.get("weights", {})
    assert calibration["score"].startswith("expected_dice") or (
        weights["expected_dice"] > 0.9 and abs(weights["decisiveness"]) < 0.05), calibration
    predicted = np.array([predicted_dice(s, calibration) for s in signals])
    assert np.mean(np.abs(predicted - dice)) < 0.02
    nothing = predicted_dice({"decisiveness": 0, "agreement": 0, "expected_dice": 0, "garment_fraction": 0}, calibration)
    assert nothing == pytest.approx(min(predicted), abs=1e-9), "no signal at all predicts the least Dice seen"
    xs = np.linspace(0, 1, 50)
    curve = [predicted_dice({"decisiveness": 1, "agreement": 1, "expected_dice": v, "garment_fraction": 0.2},
                            calibration) for v in xs]
    assert np.all(np.diff(curve) >= -1e-12) and curve[-1] - curve[0] > 0.2, "more expected Dice, more Dice"


def rows(garment, predicted_and_truth):
    """Per-view rows; a view predicted None failed (it predicts 0)."""
    return [{"garment": garment, "dice": d, "predicted": 0.0 if p is None else p} for p, d in predicted_and_truth]


def test_a_garment_with_one_bad_view_is_never_released():
    data = (rows("good", [(0.99, 0.99)] * 3) + rows("one-bad", [(0.99, 0.99), (0.99, 0.99), (0.80, 0.80)])
            + rows("one-failed", [(0.99, 0.99), (0.99, 0.99), (None, 0.0)]))
    garments = garment_table(data)
    assert garments["one-bad"]["predicted"] == pytest.approx(0.80) and garments["one-failed"]["predicted"] == 0.0
    rule = choose_release(garments, precision=0.98)
    threshold = rule["min_predicted_dice"]
    assert garments["good"]["predicted"] >= threshold
    assert garments["one-bad"]["predicted"] < threshold and garments["one-failed"]["predicted"] < threshold


def test_a_garment_whose_views_disagree_on_its_height_is_never_released():
    # The best-predicted garment took in the plastic legs in one view: that view's mask is
    # taller than the others by more than the studio's fixed camera allows.
    data = [{**row, "signals": {"height_fraction": h}}
            for row, h in zip(rows("legs", [(0.99, 0.80)] * 3), (0.50, 0.51, 0.75))]
    data += [{**row, "signals": {"height_fraction": h}}
             for row, h in zip(rows("right", [(0.97, 0.97)] * 3), (0.60, 0.63, 0.58))]
    data += rows("older-model", [(0.96, 0.97)] * 3)  # no height signal: judged as before
    garments = garment_table(data)
    assert not garments["legs"]["views_agree"] and garments["right"]["views_agree"]
    rule = choose_release(garments, precision=0.98)
    assert rule["validation"] == {"garments": 3, "released": pytest.approx(2 / 3, abs=1e-4), "precision": 1.0}
    assert release_score(garments["legs"]) < rule["min_predicted_dice"] <= release_score(garments["older-model"])
    assert rule["max_height_spread"] == MAX_HEIGHT_SPREAD and rule["max_size_spread"] == MAX_SIZE_SPREAD


def test_a_garment_whose_views_disagree_on_its_size_is_never_released():
    # As validation garment 0744: one view took in the grey plastic legs as leggings. Its mask
    # is no taller than the others' (they were shot at other scales), but far wider for its
    # height: area / height^2 0.26 against 0.15.
    views = [(0.60, 0.054), (0.66, 0.113), (0.55, 0.045)]  # (height, area) a share of the frame
    data = [{**row, "signals": {"height_fraction": h, "garment_fraction": a}}
            for row, (h, a) in zip(rows("legs", [(0.99, 0.90)] * 3), views)]
    data += [{**row, "signals": {"height_fraction": h, "garment_fraction": 0.15 * h * h}}
             for row, (h, _) in zip(rows("right", [(0.97, 0.97)] * 3), views)]
    garments = garment_table(data)
    assert garments["right"]["views_agree"] and not garments["legs"]["views_agree"]
    assert spread([h for h, _ in views]) <= MAX_HEIGHT_SPREAD, "the height check alone lets it through"
    rule = choose_release(garments, precision=0.98)
    assert release_score(garments["legs"]) == 0.0 < rule["min_predicted_dice"] <= release_score(garments["right"])


def test_release_threshold_is_the_lowest_that_keeps_precision():
    # Ten garments, predicted 0.90..0.99; the two lowest are really bad.
    data = []
    for i in range(10):
        p = 0.90 + i / 100
        data += rows(f"g{i}", [(p, 0.99 if i >= 2 else 0.90)] * 3)
    garments = garment_table(data)
    rule = choose_release(garments, precision=0.98)
    # Halfway between the last garment released (0.92) and the first held back (0.91), so that
    # the boundary garment's score moving in the fifth decimal does not change what is released.
    assert rule["min_predicted_dice"] == pytest.approx(0.915)
    assert release_score(garments["g2"]) - 1e-5 >= rule["min_predicted_dice"] > release_score(garments["g1"]) + 1e-5
    assert rule["validation"] == {"garments": 10, "released": 0.8, "precision": 1.0}
    curve = automation_curve(garments)
    assert curve[0]["released"] == 0.1 and curve[-1] == {"threshold": pytest.approx(0.90), "released": 1.0,
                                                        "precision": 0.8}


def test_operating_points_release_more_as_the_precision_asked_falls():
    # Twenty garments predicted 0.99 down to 0.80; the 3rd best and the last are wrong.
    data = []
    for i in range(20):
        data += rows(f"g{i}", [(0.99 - i / 100, 0.90 if i in (2, 19) else 0.99)] * 3)
    garments = garment_table(data)
    points = {p["target_precision"]: p for p in operating_points(garments, (0.98, 0.94, 0.90))}
    assert points[0.98] == {"target_precision": 0.98, "released": 0.1, "precision": 1.0,
                            "min_predicted_dice": pytest.approx(0.975)}
    assert points[0.98]["min_predicted_dice"] == pytest.approx(choose_release(garments, 0.98)["min_predicted_dice"])
    # 94 %: everything above the last garment (18 of 19 right); 90 %: all twenty (18 of 20).
    assert points[0.94]["released"] == 0.95 and points[0.94]["precision"] == pytest.approx(18 / 19, abs=1e-4)
    assert points[0.90]["released"] == 1.0 and points[0.90]["precision"] == 0.9
    thresholds = [points[p]["min_predicted_dice"] for p in (0.98, 0.94, 0.90)]
    assert thresholds == sorted(thresholds, reverse=True)


def test_when_nothing_reaches_the_precision_nothing_is_released():
    garments = garment_table(rows("bad", [(0.99, 0.5)] * 3))
    assert choose_release(garments)["min_predicted_dice"] > 1.0


def test_a_weighted_sum_of_signals_wins_when_no_single_score_carries_the_truth():
    rng = np.random.default_rng(2)
    edge, component = rng.random(300), rng.random(300)
    dice = 0.6 + 0.25 * edge + 0.15 * component  # neither signal alone explains it
    signals = [{"decisiveness": rng.random(), "agreement": 1.0, "expected_dice": rng.random(), "garment_fraction": 0.2,
                "edge_support": e, "largest_component": c} for e, c in zip(edge, component)]
    groups = [f"g{i // 3}" for i in range(300)]
    calibration = fit_calibration(signals, list(dice), groups)
    assert calibration["score"] == "linear" and calibration["cv_mse"] < 1e-3
    assert calibration["weights"]["edge_support"] > 0 and calibration["weights"]["largest_component"] > 0
    predicted = np.array([predicted_dice(s, calibration) for s in signals])
    assert np.abs(predicted - dice).max() < 0.05
    worse = dict(signals[0], edge_support=signals[0]["edge_support"] - 0.2)
    assert predicted_dice(worse, calibration) <= predicted_dice(signals[0], calibration), "monotone in its score"


def test_edge_support_and_largest_component():
    from cutout.segmentation.confidence import edge_support, largest_component

    rgb = np.full((200, 200, 3), 200, np.uint8)
    rgb[50:150, 60:140] = 40  # a dark garment on a light backdrop
    on_the_edge = np.zeros((200, 200), bool)
    on_the_edge[50:150, 60:140] = True
    assert edge_support(rgb, on_the_edge) == 1.0
    off = np.zeros((200, 200), bool)
    off[60:140, 70:130] = True  # 10 px inside: the outline crosses flat fabric
    assert edge_support(rgb, off) == 0.0
    assert largest_component(on_the_edge) == 1.0
    two = on_the_edge.copy()
    two[170:190, 10:30] = True  # a stray blob of 400 px beside 8,000
    assert largest_component(two) == pytest.approx(8000 / 8400)


def test_evaluate_counts_the_garments_the_view_checks_hold_back_and_how_many_were_right():
    from trainer.evaluate import automation

    def row(garment, dice, height, area):
        return {"garment": garment, "confidence": 0.99, "double_dice": dice,
                "signal_height_fraction": height, "signal_garment_fraction": area}

    rows = [row("wide", d, 0.6, a) for d, a in ((0.99, 0.05), (0.90, 0.12), (0.99, 0.05))]  # one view took in more
    rows += [row("tall", 0.99, h, 0.14 * h * h) for h in (0.4, 0.6, 0.6)]  # heights 1.5x apart, yet right
    rows += [row("steady", 0.99, 0.6, 0.05) for _ in range(3)]
    result = automation(rows, "double", {"min_predicted_dice": 0.98, "good_dice": 0.95})
    assert result["views_disagree"] == {"garments": 2, "right": 1}
    assert result["right"] == pytest.approx(2 / 3, abs=1e-4), "wide has a view under 0.95"
    assert result["released"] == pytest.approx(1 / 3, abs=1e-4) and result["precision"] == 1.0
    # Measured on these garments: every precision releases "steady" alone (the others never).
    assert [(p["target_precision"], p["released"], p["precision"]) for p in result["operating_points"]] == [
        (t, pytest.approx(1 / 3, abs=1e-4), 1.0) for t in (0.99, 0.98, 0.97, 0.95, 0.90)]


def test_a_signal_the_run_did_not_measure_changes_no_weighted_sum():
    """Without a bag every view's member_agreement is 1.0: weighed, that constant would pull the
    empty-mask anchor away from the fit, and a bundle calibrated before bags existed would no
    longer calibrate to what it shipped with."""
    rng = np.random.default_rng(3)
    signals = [{"decisiveness": rng.random(), "agreement": rng.random(), "expected_dice": rng.random(),
                "edge_support": rng.random(), "largest_component": rng.random(), "flip_agreement": rng.random()}
               for _ in range(90)]
    dice = [0.5 + 0.2 * s["edge_support"] + 0.2 * s["agreement"] + 0.05 * rng.random() for s in signals]
    plain = fit_calibration(signals, dice, [f"g{i // 3}" for i in range(90)])
    unbagged = fit_calibration([{**s, "member_agreement": 1.0} for s in signals], dice, [f"g{i // 3}" for i in range(90)])
    assert plain["score"] == unbagged["score"] == "linear"
    assert "member_agreement" not in unbagged["weights"] and unbagged["weights"] == plain["weights"]
    assert unbagged["bias"] == plain["bias"] and unbagged["x"] == plain["x"]
