"""Mask quality measures on numpy arrays (no TensorFlow)."""

from __future__ import annotations

import cv2
import numpy as np


def _binary(mask: np.ndarray) -> np.ndarray:
    return mask > 127 if mask.dtype == np.uint8 else mask > 0.5


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice = 2|A∩B| / (|A|+|B|); two empty masks agree perfectly (1.0)."""
    a, b = _binary(pred), _binary(truth)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    # count_nonzero, not sum: a worker computes this on every shot's full frame, and counting
    # a boolean array's trues is several times faster than adding them up.
    # numpy counts come back as numpy integers: a float of them is what databases and JSON take.
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(np.logical_and(a, b))) / total


def _edges(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)) > 0


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: int = 2) -> float:
    """Boundary F-score: how many edge pixels of each mask lie within `tolerance` px of the other's.

    Dice hardly moves when an edge is ragged on a large garment; this does. Two masks
    without edges (both empty) score 1.0; one without edges against one with scores 0.0.
    """
    a, b = _edges(_binary(pred)), _edges(_binary(truth))
    na, nb = int(a.sum()), int(b.sum())
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    size = 2 * tolerance + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    near_b = cv2.dilate(b.astype(np.uint8), kernel) > 0
    near_a = cv2.dilate(a.astype(np.uint8), kernel) > 0
    precision = float((a & near_b).sum()) / na
    recall = float((b & near_a).sum()) / nb
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)

