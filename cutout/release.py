"""The release rule: when a garment needs nobody. The one place it is defined.

A garment is *released* when all three views are done, no reference cutout disagrees with
them (Dice below ``min_dice``), every view's confidence (the model's estimate of its Dice)
reaches the threshold of the model that made it (``model.json``'s ``release``, tuned by
``cutout calibrate`` so that at least 98 % of released validation garments have every view
at Dice >= GOOD_DICE; ``min_confidence`` overrides it; a model without one uses
DEFAULT_MIN_CONFIDENCE), and the views agree on the garment's height and on its size for its
height (the studio's camera and turntable stay put, so a view that disagrees took in
something else or left part out).

The rule has two forms here, side by side and built from the same constants: SQL
expressions, with which cutout.ranking ranks and cutout.report words a database's garments
(the report's reasons are the flags the ranking's query computed), and ``released`` for
garments measured offline (calibration and evaluation on labelled folders).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sqlalchemy import func, literal, or_

DEFAULT_MIN_CONFIDENCE = 0.90  # a model without a tuned rule
GOOD_DICE = 0.95  # a view is right at this Dice against the hand cutout
TARGET_PRECISION = 0.98  # calibration tunes the threshold for this share of right released garments
# The studio's camera and turntable stay put, so a garment stands as tall in all three of its
# views. When the masks' heights differ by more than this (as log(tallest / shortest)), the
# views disagree on what the garment is: one takes in something else (plastic legs taken for
# tights, a bag, the stand) or leaves part out, however sure each view is on its own. The
# studio-style validation composites scale the person by 72-93 % of the frame, so there the
# true heights of one garment differ by up to 0.25; at 0.35 the check held back 13 of the 100
# validation garments with a view below Dice 0.95 and none of the 61 without.
MAX_HEIGHT_SPREAD = 0.35
# The views should also agree on the garment's size for its height, area / height^2 (free of
# the scale each view is shot at): a view that takes in plastic legs, an arm or the stand grows
# wider for its height without always growing taller. A silhouette does change on a turntable
# (a body twice as wide as deep shows about 1.06x its front width at 45 degrees), so the limit
# is loose: log 0.30 is 1.35x.
MAX_SIZE_SPREAD = 0.30


@dataclass(frozen=True)
class ViewLimits:
    """How far a garment's views may disagree, as log(largest / smallest), on the mask's height
    (share of the frame's rows) and on its size (view_size). A studio whose camera never moves
    may tighten them."""

    height: float = MAX_HEIGHT_SPREAD
    size: float = MAX_SIZE_SPREAD


@dataclass(frozen=True)
class Rule:
    """The rule as a report applies it: the models' own thresholds unless `min_confidence`
    overrides them, the reference Dice a view must reach, and the view limits."""

    min_confidence: float | None = None
    min_dice: float = 0.97
    limits: ViewLimits = field(default_factory=ViewLimits)
    # Of the garments a releasing model would release, the share that goes to the team anyway:
    # audits, drawn per garment and version (cutout.trust), so released precision stays measured.
    audit_share: float = 0.0

    @classmethod
    def from_settings(cls, settings, min_confidence: float | None = None, min_dice: float | None = None,
                      height: float | None = None, size: float | None = None) -> "Rule":
        """A command's options where given, else CUTOUT_MIN_CONFIDENCE, CUTOUT_MIN_DICE,
        CUTOUT_MAX_HEIGHT_SPREAD and CUTOUT_MAX_SIZE_SPREAD, else the defaults."""
        def first(*values):
            return next((v for v in values if v is not None), None)

        return cls(first(min_confidence, settings.min_confidence), first(min_dice, settings.min_dice),
                   ViewLimits(first(height, settings.max_height_spread, MAX_HEIGHT_SPREAD),
                              first(size, settings.max_size_spread, MAX_SIZE_SPREAD)), settings.audit_share)

    # The SQL form.

    def view_threshold(self, model_threshold):
        """The confidence a view must reach, from its model's release_threshold column."""
        if self.min_confidence is not None:
            return literal(self.min_confidence)
        return func.coalesce(model_threshold, DEFAULT_MIN_CONFIDENCE)

    def garment_conditions(self, state) -> dict:
        """Why a garment needs a person, as SQL conditions on its standing (GarmentState), by
        reason kind. Its min_margin is min(confidence - the model's threshold) over open views;
        the view limits are compared without logarithms."""
        low_confidence = (state.min_confidence < literal(self.min_confidence) if self.min_confidence is not None
                          else state.min_margin < 0)
        return {"failed": state.failed > 0, "confidence": low_confidence,
                "dice": state.min_dice < literal(self.min_dice), "manual": state.manual > 0,
                "height": state.max_height > state.min_height * literal(math.exp(self.limits.height)),
                "size": state.max_size > state.min_size * literal(math.exp(self.limits.size)),
                # a model in shadow mode releases nothing; a releasing one leaves its audits to the team
                "check": or_(state.shadow > 0, state.audit_draw < literal(self.audit_share))}


REASON_KINDS = ("failed", "confidence", "dice", "manual", "height", "size", "check")


def view_size(parts: dict) -> float | None:
    """A view's garment size for its height, free of the view's scale: the mask's area over its
    height squared (garment_fraction / height_fraction^2; the frame's aspect cancels between
    views of one frame size); None without the signals or for an empty mask."""
    area, height = parts.get("garment_fraction"), parts.get("height_fraction")
    return area / height ** 2 if area is not None and height else None


def spread(values) -> float:
    """log(largest / smallest) of one garment's views' values (views without the value are left
    out); inf when a view's value is 0 (an empty mask)."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return 0.0
    return math.log(max(known) / min(known)) if min(known) > 0 else float("inf")


def views_agree(heights, sizes=(), limits: ViewLimits = ViewLimits()) -> bool:
    """Whether a garment's views agree on its height and its size (spreads within the limits)."""
    return spread(heights) <= limits.height and spread(sizes) <= limits.size


# The offline form: garments measured on a labelled folder.

def garment_table(rows: list[dict], limits: ViewLimits = ViewLimits()) -> dict[str, dict]:
    """Per garment: the smallest predicted and measured Dice of its views, and whether its views
    agree on its height and size, from per-view rows {"garment", "predicted", "dice", optional
    "signals"} (the view's confidence signals; a failed view predicts 0)."""
    garments: dict[str, dict] = {}
    for row in rows:
        g = garments.setdefault(row["garment"], {"predicted": 1.0, "dice": 1.0, "views": 0, "heights": [], "sizes": []})
        g["predicted"] = min(g["predicted"], row["predicted"])
        g["dice"] = min(g["dice"], row["dice"])
        g["views"] += 1
        signals = row.get("signals") or {}
        g["heights"].append(signals.get("height_fraction"))
        g["sizes"].append(view_size(signals))
    for g in garments.values():
        g["views_agree"] = views_agree(g.pop("heights"), g.pop("sizes"), limits)
    return garments


def release_score(garment: dict) -> float:
    """What the rule compares with a model's threshold: the garment's smallest predicted Dice,
    or 0 when its views disagree on its height or size (never released, however sure)."""
    return garment["predicted"] if garment["views_agree"] else 0.0


def released(garment: dict, threshold: float) -> bool:
    """Whether the rule releases a measured garment (garment_table's) at a model's threshold."""
    return release_score(garment) >= threshold


# Choosing a model's threshold from measured garments (cutout calibrate).

def cuts(scored: list[tuple[float, bool]]) -> list[tuple[float, int, int, float]]:
    """Every candidate threshold over (release score, right) per garment, high to low: (the
    score, garments released at it, right among them, the next lower score, or the same at the
    last). Garments with equal scores are released together."""
    scored = sorted(scored, key=lambda item: -item[0])
    found, right = [], 0
    for k, (score, ok) in enumerate(scored, 1):
        right += ok
        if k == len(scored) or scored[k][0] < score:
            found.append((score, k, right, scored[k][0] if k < len(scored) else score))
    return found


def lowest_threshold(scored: list[tuple[float, bool]], accept) -> tuple[int, int, float] | None:
    """The lowest threshold whose releases `accept(score, released, right)` holds for: (released,
    right among them, the threshold halfway between the last garment released and the first held
    back), or None when none does.

    Halfway, not on the last one's score: that score moves in the fifth decimal between paths
    that compute the same thing (cutout evaluate's batching against calibrate's, bfloat16
    workers), and a rule on its exact value dropped the boundary garment (measured: 5 of 161
    released instead of 6)."""
    ok = [(n, right, (score + below) / 2) for score, n, right, below in cuts(scored) if accept(score, n, right)]
    return max(ok, key=lambda cut: cut[0]) if ok else None


def _scored(garments: dict[str, dict], good: float) -> list[tuple[float, bool]]:
    return [(release_score(g), g["dice"] >= good) for g in garments.values()]


def all_views_good(garments: dict[str, dict], good: float = GOOD_DICE) -> float:
    """Share of garments whose every view is good: the most any rule could release at
    precision 1."""
    return round(sum(g["dice"] >= good for g in garments.values()) / max(1, len(garments)), 4)


def automation_curve(garments: dict[str, dict], good: float = GOOD_DICE) -> list[dict]:
    """For each candidate threshold (every garment's release score, high to low): the share of
    garments released and the precision among them."""
    return [{"threshold": score, "released": n / len(garments), "precision": right / n}
            for score, n, right, _ in cuts(_scored(garments, good))]


def choose_release(garments: dict[str, dict], precision: float = TARGET_PRECISION, good: float = GOOD_DICE) -> dict:
    """The release rule: the lowest threshold whose released garments reach `precision`
    (lowest_threshold; when none does, a threshold above any confidence: nothing is released)."""
    chosen = lowest_threshold(_scored(garments, good), lambda score, n, right: right / n >= precision)
    n, right, threshold = chosen if chosen else (0, 0, 1.01)
    return {"min_predicted_dice": threshold, "good_dice": good,
            "target_precision": precision, "max_height_spread": ViewLimits().height,
            "max_size_spread": ViewLimits().size,
            "validation": {"garments": len(garments), "released": round(n / len(garments), 4) if chosen else 0.0,
                           "precision": round(right / n, 4) if chosen else None}}


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
