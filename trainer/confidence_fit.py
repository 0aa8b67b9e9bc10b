"""Fitting a bundle's confidence calibration: centred isotonic regression of the measured Dice
on one scalar score of the signals (one of SCORES, or a least-squares weighted sum of
FEATURES); of the candidates, the one with the smallest squared error on garments held out of
its fit wins. The result is monotone in its score (strictly, between its first and last points)
and stored as points to interpolate between (cutout.segmentation.confidence.predicted_dice)."""

from __future__ import annotations

import numpy as np

from cutout.segmentation.confidence import FEATURES, SCORES, predicted_dice, score


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
        # A signal the run did not measure (no TTA, no bag) is the same on every view: weighed,
        # it would only pull the empty-mask anchor below away from the fit.
        used = [k for k in FEATURES if len({s.get(k, 1.0) for s in signals}) > 1]
        x = np.array([[s.get(k, 1.0) for k in used] for s in signals] + [[0.0] * len(used)])
        y = np.append(dice, 0.0)  # anchors an empty mask (all signals 0) at Dice 0
        design = np.column_stack([x, np.ones(len(x))])
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        calibration.update(weights={k: round(float(w), 6) for k, w in zip(used, coef[:-1])},
                           bias=round(float(coef[-1]), 6))
    x = np.array([score(s, calibration) for s in signals])
    kx, ky = isotonic(x, dice)
    calibration.update(x=[round(float(v), 6) for v in kx], y=[round(float(v), 6) for v in ky])
    return calibration


def _cross_validated_error(name: str, signals: list[dict], dice: np.ndarray, groups: list[str], folds: int) -> float:
    """Mean squared error of the candidate on garments it was not fitted on (k folds by garment)."""
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
    fitted = np.array([predicted_dice(s, calibration) for s in signals])
    calibration.update(mse=round(float(np.mean((fitted - dice) ** 2)), 6), cv_mse=round(best[0], 6), n=len(dice))
    return calibration
