"""The study's preprocessing, shared by training and inference so they can never drift apart.

Colour in; INTER_AREA down to the model's input; centred and scaled by the training set's
per-channel mean/std; probabilities back up to the photo's own size with INTER_CUBIC.
No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FITS = ("squash", "pad")


@dataclass(frozen=True)
class Placement:
    """Where the resized photo sits inside the model input (for undoing the fit)."""

    top: int
    left: int
    height: int
    width: int


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width * height <= image.shape[0] * image.shape[1]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    # OpenCV drops a single channel axis; keep the caller's shape.
    return resized.reshape(height, width, *image.shape[2:])


def fit_image(rgb: np.ndarray, size: tuple[int, int], fit: str, fill: np.ndarray | None = None) -> tuple[np.ndarray, Placement]:
    """Resize an HxWx3 uint8 photo to the model's (height, width).

    "squash" stretches to the size (the study's choice); "pad" keeps the aspect and pads
    with `fill` (the dataset mean colour, which normalises to zero).
    """
    h, w = size
    if fit == "squash":
        return _resize(rgb, w, h), Placement(0, 0, h, w)
    if fit != "pad":
        raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
    scale = min(h / rgb.shape[0], w / rgb.shape[1])
    nh, nw = max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale))
    top, left = (h - nh) // 2, (w - nw) // 2
    canvas = np.empty((h, w, rgb.shape[2]), rgb.dtype)
    canvas[:] = 0 if fill is None else np.asarray(fill, rgb.dtype)
    canvas[top:top + nh, left:left + nw] = _resize(rgb, nw, nh)
    return canvas, Placement(top, left, nh, nw)


def fit_mask(mask: np.ndarray, size: tuple[int, int], fit: str) -> np.ndarray:
    """The truth mask resized the same way as its photo, as float32 in [0, 1]."""
    fitted, _ = fit_image(mask[:, :, None], size, fit, fill=np.zeros(1))
    return (fitted.reshape(size).astype(np.float32) / 255.0)


def normalise(fitted: np.ndarray, mean, std) -> np.ndarray:
    return (fitted.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def unfit_probability(prob: np.ndarray, placement: Placement, shape: tuple[int, int]) -> np.ndarray:
    """Model-resolution probabilities back to the photo's (height, width), INTER_CUBIC, in [0, 1]."""
    crop = prob[placement.top:placement.top + placement.height, placement.left:placement.left + placement.width]
    up = cv2.resize(crop.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0.0, 1.0)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a 0/1 mask by a Euclidean disk of `radius` px.

    Via the distance transform: the same as dilating with an elliptical kernel (to a few
    edge pixels) but linear in the image size; at 1152x1728, radius 35, 4x faster.
    """
    if radius <= 0:
        return mask
    distance = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (distance <= radius).astype(np.uint8)


def focus(rgb: np.ndarray, mask: np.ndarray, dilate_fraction: float, fill) -> tuple[np.ndarray, np.ndarray]:
    """The second pass's input: the photo blanked outside the dilated first mask.

    The dilation radius is a fraction of the photo's shorter side so that it means the same
    at 1152x1728 and on a 550x827 training photo. Returns (focused photo, dilated mask).
    """
    radius = max(1, round(dilate_fraction * min(mask.shape[:2])))
    region = dilate((mask > 127).astype(np.uint8), radius)
    focused = rgb.copy()
    focused[region == 0] = np.asarray(fill, np.float32).round().astype(np.uint8)
    return focused, region

