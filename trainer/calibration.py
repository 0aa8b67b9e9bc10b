"""Turning confidence signals into an estimate of Dice, and choosing the release rule.

Both are fitted on validation garments, never on training ones:

- calibration: centred isotonic regression (pool adjacent violators) of the measured Dice on one
  scalar score of the signals (one of SCORES, or a least-squares weighted sum of FEATURES);
  of the candidates, the one with the smallest squared error on garments held out of its
  fit wins. The result is monotone in its score (strictly, between its first and last
  points) and bounded by construction, and stored as points to interpolate between.
- release rule (cutout.release): the threshold is the lowest at which at least `precision` of
  the released validation garments have every view at Dice >= `good`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cutout.release import GOOD_DICE, TARGET_PRECISION, ViewLimits, garment_table, release_score
from cutout.segmentation.confidence import FEATURES, SCORES, score


def isotonic(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Non-decreasing least-squares fit of y on x, as (knots x, fitted y) to interpolate between:
    one knot per pooled block, at the mean x of its members ("centred" isotonic regression).

    Plain isotonic regression is a staircase: every score inside a block maps to one value, so
    garments whose scores differ tie, and the release rule and the report's order can only
    take or leave a whole step. Knots at the blocks' centres keep the fit's values there and
    join them by straight lines, so the map is strictly increasing between the outer knots and
    a higher score always predicts a higher Dice (on the shipped bundle's validation views the
    error on held-out garments is the same, 0.00240 against 0.00241)."""
    order = np.argsort(x, kind="stable")
    xs, ys = np.asarray(x, float)[order], np.asarray(y, float)[order]
    blocks = []  # [sum of y, count, sum of x]
    for xi, yi in zip(xs, ys):
        blocks.append([yi, 1, xi])
        # Pool on equal means too, and on a shared x: the knots must increase strictly in both.
        while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]
                                   or blocks[-2][2] / blocks[-2][1] >= blocks[-1][2] / blocks[-1][1]):
            total, count, x_total = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
            blocks[-1][2] += x_total
    knots_x = np.array([x_total / count for _, count, x_total in blocks])
    knots_y = np.array([total / count for total, count, _ in blocks])
    return knots_x, np.clip(knots_y, 0.0, 1.0)


def _fit(name: str, signals: list[dict], dice: np.ndarray) -> dict:
    """One candidate calibration fitted on these views: a score, then isotonic to Dice."""
    calibration = {"score": name}
    if name == "linear":
        x = np.array([[s.get(k, 1.0) for k in FEATURES] for s in signals] + [[0.0] * len(FEATURES)])
        y = np.append(dice, 0.0)  # anchors an empty mask (all signals 0) at Dice 0
        design = np.column_stack([x, np.ones(len(x))])
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        calibration.update(weights={k: round(float(w), 6) for k, w in zip(FEATURES, coef[:-1])},
                           bias=round(float(coef[-1]), 6))
    x = np.array([score(s, calibration) for s in signals])
    kx, ky = isotonic(x, dice)
    calibration.update(x=[round(float(v), 6) for v in kx], y=[round(float(v), 6) for v in ky])
    return calibration


def _cross_validated_error(name: str, signals: list[dict], dice: np.ndarray, groups: list[str], folds: int) -> float:
    """Mean squared error of the candidate on garments it was not fitted on (k folds by garment)."""
    from cutout.segmentation.confidence import predicted_dice

    names = sorted(set(groups))
    fold_of = {g: i % folds for i, g in enumerate(np.random.default_rng(0).permutation(names))}
    errors = np.zeros(len(dice))
    for k in range(folds):
        test = np.array([fold_of[g] == k for g in groups])
        if test.all() or not test.any():
            return float("inf")
        fitted = _fit(name, [s for s, t in zip(signals, test) if not t], dice[~test])
        errors[test] = [(predicted_dice(s, fitted) - d) ** 2 for s, d, t in zip(signals, dice, test) if t]
    return float(errors.mean())


def fit_calibration(signals: list[dict], dice: list[float], groups: list[str] | None = None, folds: int = 5) -> dict:
    """The calibration (see module doc) from per-view signals and their measured Dice: the
    candidate (each of SCORES, and a weighted sum of FEATURES) with the smallest error on
    garments held out of its fit (views of one garment in one fold), refitted on all views."""
    dice = np.asarray(dice, float)
    groups = groups or [str(i) for i in range(len(dice))]
    folds = min(folds, len(set(groups)))
    best = None
    for name in (*SCORES, "linear"):
        error = _cross_validated_error(name, signals, dice, groups, folds) if folds >= 2 else 0.0
        if best is None or error < best[0]:
            best = (error, name)
    calibration = _fit(best[1], signals, dice)
    from cutout.segmentation.confidence import predicted_dice

    fitted = np.array([predicted_dice(s, calibration) for s in signals])
    calibration.update(mse=round(float(np.mean((fitted - dice) ** 2)), 6), cv_mse=round(best[0], 6), n=len(dice))
    return calibration


def automation_curve(garments: dict[str, dict], good: float = GOOD_DICE) -> list[dict]:
    """For each candidate threshold (every garment's release score, high to low): the share of
    garments released and the precision among them."""
    items = sorted(garments.values(), key=lambda g: -release_score(g))
    curve, right = [], 0
    for k, g in enumerate(items, 1):
        right += g["dice"] >= good
        if k == len(items) or release_score(items[k]) < release_score(g):
            curve.append({"threshold": release_score(g), "released": k / len(items), "precision": right / k})
    return curve


def choose_release(garments: dict[str, dict], precision: float = TARGET_PRECISION, good: float = GOOD_DICE) -> dict:
    """The release rule: the lowest threshold whose released garments reach `precision` (when
    none does, a threshold above any confidence: nothing is released).

    The threshold sits halfway between the last garment released and the first held back, not
    on the last one's score: that score moves in the fifth decimal between paths that compute
    the same thing (cutout evaluate's batching against calibrate's, bfloat16 workers), and a rule
    on its exact value dropped the boundary garment (measured: 5 of 161 released instead of 6)."""
    curve = automation_curve(garments, good)
    ok = [i for i, c in enumerate(curve) if c["precision"] >= precision]
    if not ok:
        threshold, chosen = 1.01, None
    else:
        i = max(ok, key=lambda i: curve[i]["released"])
        chosen = curve[i]
        below = curve[i + 1]["threshold"] if i + 1 < len(curve) else chosen["threshold"]
        threshold = (chosen["threshold"] + below) / 2
    return {"min_predicted_dice": threshold, "good_dice": good,
            "target_precision": precision, "max_height_spread": ViewLimits().height,
            "max_size_spread": ViewLimits().size,
            "validation": {"garments": len(garments), "released": round(chosen["released"], 4) if chosen else 0.0,
                           "precision": round(chosen["precision"], 4) if chosen else None}}


# Other precisions a studio may choose instead of the rule's, with the threshold that gives
# each on validation (model.json's release.operating_points).
OPERATING_PRECISIONS = (0.99, 0.98, 0.97, 0.95, 0.90)


def operating_points(garments: dict[str, dict], precisions=OPERATING_PRECISIONS, good: float = GOOD_DICE) -> list[dict]:
    """The release rule at each of `precisions`: its threshold and what it released on
    validation. The default rule aims at 98 %, and one confidently wrong garment near the top of
    the ranking holds it to a few garments; a studio that accepts 95 % passes that point's
    threshold to `cutout report needs-cutout --min-confidence` (or CUTOUT_MIN_CONFIDENCE) and
    knows from here what to expect."""
    points = []
    for precision in precisions:
        rule = choose_release(garments, precision, good)
        points.append({"target_precision": precision, "min_predicted_dice": round(rule["min_predicted_dice"], 6),
                       "released": rule["validation"]["released"], "precision": rule["validation"]["precision"]})
    return points


# Edge refinement candidates (full-resolution window radius, regularisation; None = off) and
# thresholds, tried together: the refined map's best threshold is not the raw map's.
REFINE_GRID = (None, {"radius": 16, "eps": 1e-3}, {"radius": 32, "eps": 1e-3}, {"radius": 48, "eps": 1e-3})
THRESHOLDS = (0.3, 0.4, 0.5)
DICE_TOLERANCE = 0.002  # among set-ups within this of the best mean Dice, the best edges win


def candidates(grid=REFINE_GRID, thresholds=THRESHOLDS) -> list[tuple[dict | None, float]]:
    return [(params, t) for params in grid for t in thresholds]


def measure(seg, pairs, options, progress=None) -> list[list[dict]]:
    """Per photo, per (refinement, threshold) option: Dice, boundary F and the confidence signals."""
    from cutout import imageio
    from cutout.metrics import boundary_f, dice
    from cutout.segmentation.edges import refine

    results = []
    for n, pair in enumerate(pairs, 1):
        rgb, truth = imageio.read_photo_file(pair.image), imageio.read_mask_file(pair.truth)
        first_prob, final, flip_agreement = seg.passes(rgb)
        refined = {}
        per = []
        for params, threshold in options:
            key = None if params is None else (params["radius"], params["eps"])
            if key not in refined:  # each refinement once, for all its thresholds
                refined[key] = refine(rgb, final, params)
            prediction = seg.finish(rgb, first_prob, refined[key], flip_agreement, refine_params=None, threshold=threshold)
            per.append({"id": pair.id, "garment": pair.source, "dice": dice(prediction.mask, truth),
                        "boundary_f": boundary_f(prediction.mask, truth), "signals": prediction.confidence_parts})
        results.append(per)
        if progress:
            progress(n, len(pairs))
    return results


def write_views(path: Path, views: list[dict], rows: list[dict]) -> None:
    """One line per validation view: its measured Dice and boundary F, the predicted Dice and
    every signal, so a person can see which garments the rule holds back and why, and try
    other rules without running the model again."""
    import csv

    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        # the height and area signals: what the release rule's views_agree compares across views
        extra = ("height_fraction", "garment_fraction")
        out.writerow(["id", "garment", "dice", "boundary_f", "predicted", *FEATURES, *extra])
        for view, row in zip(views, rows):
            out.writerow([view["id"], view["garment"], round(view["dice"], 5), round(view["boundary_f"], 5),
                          round(row["predicted"], 5), *(view["signals"].get(k, "") for k in (*FEATURES, *extra))])


def calibrate(bundle: Path, data: Path, plots: Path | None = None, limit: int | None = None, progress=None,
              tta: bool = True) -> dict:
    """Tune the edge refinement, fit the calibration and choose the release rule of a bundle on
    a labelled studio-style validation folder (three views per garment: <photo>_<View>), and
    write them into the bundle's last stage's model.json."""
    from cutout.bundle import last_stage
    from cutout.segmentation import artefact
    from cutout.segmentation.segmenter import Segmenter
    from trainer.data import find_pairs
    from trainer.plots import write_plots

    first, second = artefact.load_bundle(bundle)
    seg = Segmenter(first, second, tta=tta)
    pairs = find_pairs(data)[:limit]
    options = candidates()
    measured = measure(seg, pairs, options, progress)
    means = [{"dice": float(np.mean([m[k]["dice"] for m in measured])),
              "boundary_f": float(np.mean([m[k]["boundary_f"] for m in measured]))} for k in range(len(options))]
    best_dice = max(m["dice"] for m in means)
    allowed = [k for k in range(len(options)) if means[k]["dice"] >= best_dice - DICE_TOLERANCE]
    chosen = max(allowed, key=lambda k: means[k]["boundary_f"])
    views = [m[chosen] for m in measured]
    calibration = fit_calibration([v["signals"] for v in views], [v["dice"] for v in views],
                                  [v["garment"] for v in views])
    from cutout.segmentation.confidence import predicted_dice

    rows = [{"garment": v["garment"], "predicted": predicted_dice(v["signals"], calibration), "dice": v["dice"],
             "signals": v["signals"]} for v in views]
    garments = garment_table(rows)
    release = choose_release(garments)
    release["operating_points"] = operating_points(garments)
    last = last_stage(bundle)
    meta = artefact.read_meta(last)
    meta.refine, meta.calibration, meta.release = options[chosen][0], calibration, release
    meta.threshold = options[chosen][1]
    meta.tta = tta
    dice = np.array([v["dice"] for v in views])
    meta.evaluation = {**meta.evaluation, "studio": {
        "data": str(data), "n": len(views), "garments": len(garments),
        "mean_dice": float(dice.mean()), "median_dice": float(np.median(dice)),
        "mean_boundary_f": means[chosen]["boundary_f"],
        "threshold": meta.threshold,
        "candidates": [{"refine": options[k][0], "threshold": options[k][1], **means[k]} for k in range(len(options))],
        "released": release["validation"]["released"], "precision": release["validation"]["precision"],
        # The most any rule could release at precision 1: garments whose every view is good.
        "all_views_good": round(float(np.mean([g["dice"] >= GOOD_DICE for g in garments.values()])), 4)}}
    artefact.write_meta(last, meta)
    if plots is not None:
        write_plots(plots, automation_curve(garments), release, [r["predicted"] for r in rows], list(dice))
        write_views(Path(plots) / "views.csv", views, rows)
    return {"model": str(bundle), "refine": meta.refine, "threshold": meta.threshold, "calibration_score": calibration["score"],
            "calibration_mse": calibration["mse"], "calibration_cv_mse": calibration["cv_mse"], "release": release, **meta.evaluation["studio"]}
