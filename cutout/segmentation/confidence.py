"""A cutout's confidence: signals the photo and the probability maps give about the mask's
quality, and the calibrated estimate of its Dice made from them.

The calibration (fitted by ``cutout calibrate`` on validation garments, stored in the last
stage's model.json) maps one score of the signals to Dice by a monotone step function: the
score is one of SCORES, or a weighted sum of FEATURES ("linear").
"""

from __future__ import annotations

import cv2
import numpy as np

from cutout.metrics import dice
from cutout.imageio import bounds

# A boundary pixel "has an edge" when the photo's grey level changes by at least this much
# across it (a 3x3 Sobel gives 4x the step height).
EDGE_STEP = 10
# How far a network agrees with itself, when the run measures it (cutout.segmentation.segmenter).
AGREEMENTS = ("flip_agreement", "member_agreement")
EMPTY = {"decisiveness": 0.0, "agreement": 0.0, "expected_dice": 0.0, "garment_fraction": 0.0,
         "edge_support": 0.0, "largest_component": 0.0, "flip_agreement": 0.0, "member_agreement": 0.0,
         "height_fraction": 0.0}


def edge_support(rgb: np.ndarray, on: np.ndarray) -> float:
    """Share of the mask's outline that lies on an edge of the photo (within 2 px). A cut
    that follows the garment runs along edges; one that wanders across flat backdrop or
    through the fabric does not."""
    box = bounds(on, 4)
    mask = on[box].view(np.uint8)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[box]), cv2.COLOR_RGB2GRAY)
    strength = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    # Whether an edge is near, not how strong the strongest near one is: the threshold before
    # the dilation gives the same answer and dilates bytes instead of floats.
    near_edge = cv2.dilate((strength >= 4 * EDGE_STEP).view(np.uint8), _NEAR)
    outline = cv2.subtract(mask, cv2.erode(mask, np.ones((3, 3), np.uint8))).view(bool)
    return float(near_edge[outline].mean()) if outline.any() else 0.0


_NEAR = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def largest_component(on: np.ndarray) -> float:
    """Share of the mask in its largest connected piece: a garment is one piece; stray blobs
    and a garment cut in two are mistakes."""
    box = bounds(on)
    # Labels and a count of each, not connectedComponentsWithStats: its per-pixel statistics
    # (boxes, centroids) took two thirds of the time and only the areas are wanted.
    count, labels = cv2.connectedComponents(on[box].view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    areas = np.bincount(labels.ravel(), minlength=count)[1:]
    return float(areas.max() / areas.sum())


def height_fraction(on: np.ndarray) -> float:
    """Share of the frame's rows the mask spans, top to bottom."""
    box = bounds(on)
    return (box[0].stop - box[0].start) / on.shape[0] if box is not None else 0.0


def confidence_signals(prob: np.ndarray, threshold: float, mask: np.ndarray, first_mask: np.ndarray | None,
                       rgb: np.ndarray | None = None, agreements: dict | None = None) -> dict:
    """What the photo and the probability maps say about a mask's quality.

    decisiveness: 1 - (pixels whose probability sits in the uncertain half-band around the
        threshold) / (garment pixels). A clean cut has a thin uncertain rim; a confused one
        (low contrast, busy pattern) has wide grey areas. Normalising by garment area rather
        than the whole photo keeps the easy background from hiding the doubt.
    agreement: Dice between the first and second pass masks. When the focused second pass
        redraws the garment, at least one of them is wrong.
    expected_dice: the Dice the mask would have if the probabilities were the truth's odds,
        2 * sum(p * m) / (sum(p) + sum(m)).
    edge_support, largest_component: see those functions (need the photo; 1.0 without it).
    flip_agreement: Dice between the final network's masks of its input and of the input's
        mirror image, at the network's size (with flip test-time augmentation; 1.0 without).
    member_agreement: the lowest Dice between two members' masks of a bagged stage, at the
        network's size (1.0 without a bag): where networks trained apart disagree, the view
        is hard.
    height_fraction: share of the frame's rows the mask spans; not a sign of quality on its
        own, but a garment's three views should agree on it, and on garment_fraction /
        height_fraction^2 (cutout.release.views_agree).
    An empty mask scores 0 on all (no garment found is always a job for a person).
    """
    agreements = agreements or {}
    on = mask > 127
    garment = int(np.count_nonzero(on))
    if garment == 0:
        return dict(EMPTY)
    low, high = threshold * 0.5, threshold + (1.0 - threshold) * 0.5
    uncertain = int(np.count_nonzero((prob > low) & (prob < high)))
    inside = float(prob[on].sum(dtype=np.float64))
    return {
        "decisiveness": round(max(0.0, 1.0 - uncertain / garment), 5),
        "agreement": round(dice(first_mask, mask) if first_mask is not None else 1.0, 5),
        "expected_dice": round(2.0 * inside / (float(prob.sum(dtype=np.float64)) + garment), 5),
        "garment_fraction": round(garment / mask.size, 5),
        "edge_support": round(edge_support(rgb, on), 5) if rgb is not None else 1.0,
        "largest_component": round(largest_component(on), 5),
        **{k: round(agreements[k], 5) if agreements.get(k) is not None else 1.0 for k in AGREEMENTS},
        "height_fraction": round(height_fraction(on), 5),
    }


# Scalar scores a calibration can map to Dice; the calibration names the one it was fitted on.
SCORES = {
    "decisiveness*agreement": lambda s: s["decisiveness"] * s["agreement"],
    "expected_dice": lambda s: s["expected_dice"],
    "expected_dice*agreement": lambda s: s["expected_dice"] * s["agreement"],
    "expected_dice*decisiveness*agreement": lambda s: s["expected_dice"] * s["decisiveness"] * s["agreement"],
}
# The signals a "linear" calibration weighs (fitted by least squares on validation garments).
FEATURES = ("expected_dice", "decisiveness", "agreement", "edge_support", "largest_component", "flip_agreement",
            "member_agreement")


def score(signals: dict, calibration: dict) -> float:
    """The scalar a calibration maps to Dice."""
    if calibration["score"] == "linear":
        return calibration["bias"] + sum(w * signals.get(k, 1.0) for k, w in calibration["weights"].items())
    return SCORES[calibration["score"]](signals)


def predicted_dice(signals: dict, calibration: dict | None) -> float:
    """The confidence: an estimate of the mask's Dice against a hand cutout, in [0, 1].

    With a calibration (fitted on validation photos: a monotone map from a score of the
    signals to the Dice measured there) it is that estimate; without one, the uncalibrated
    decisiveness * agreement of earlier models.
    """
    if not calibration:
        return float(SCORES["decisiveness*agreement"](signals))
    return float(np.clip(np.interp(score(signals, calibration), calibration["x"], calibration["y"]), 0.0, 1.0))


def confidence_score(prob: np.ndarray, threshold: float, mask: np.ndarray, first_mask: np.ndarray | None,
                     calibration: dict | None = None, rgb: np.ndarray | None = None,
                     agreements: dict | None = None) -> tuple[float, dict]:
    """(confidence, the signals it came from)."""
    signals = confidence_signals(prob, threshold, mask, first_mask, rgb, agreements)
    return predicted_dice(signals, calibration), signals
