"""Edge refinement: a sharp edge that the network's low resolution blurred is recovered at the
photo's resolution."""

import cv2
import numpy as np

from cutout.metrics import boundary_f, dice
from cutout.segmentation.edges import guided_filter, refine


def wavy_garment(h=864, w=576):
    """A garment with a detailed edge (a wave of 25 px period) on a plain backdrop, and the
    blurry probability a network at 1/6 of the size would give back."""
    yy, xx = np.mgrid[0:h, 0:w]
    truth = (np.abs(xx - w / 2) < w * 0.25 + 8 * np.sin(yy / 4.0)) & (yy > h * 0.1) & (yy < h * 0.9)
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = (228, 226, 222)
    rgb[truth] = (150, 40, 60)
    rgb = np.clip(rgb + np.random.default_rng(0).normal(0, 2, rgb.shape), 0, 255).astype(np.uint8)
    mask = truth.astype(np.float32)
    low = cv2.GaussianBlur(cv2.resize(mask, (w // 6, h // 6), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    blurry = np.clip(cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)
    return rgb, np.where(truth, 255, 0).astype(np.uint8), blurry


def test_a_sharp_edge_is_recovered_within_two_pixels():
    rgb, truth, blurry = wavy_garment()
    before = np.where(blurry > 0.5, 255, 0).astype(np.uint8)
    after = np.where(guided_filter(rgb, blurry, radius=12, eps=1e-3) > 0.5, 255, 0).astype(np.uint8)
    assert boundary_f(before, truth, tolerance=2) < 0.8, "the blurry map misses the wave"
    assert boundary_f(after, truth, tolerance=2) > 0.95, "the refined one follows it"
    assert dice(after, truth) > dice(before, truth)


def test_without_parameters_nothing_changes_and_output_stays_a_probability():
    rgb, _, blurry = wavy_garment(144, 96)
    assert refine(rgb, blurry, None) is blurry
    out = refine(rgb, blurry, {"radius": 8, "eps": 1e-4})
    assert out.shape == blurry.shape and out.dtype == np.float32
    assert np.abs(out - blurry).max() > 0.1, "with parameters the map does move towards the photo's edges"
