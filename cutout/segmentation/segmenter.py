"""The two-pass segmentation of one photo, and its confidence score.

First pass: the whole photo, fitted to the first model's input.
Second pass: the photo blanked outside the dilated first mask and cut to the garment's box
(or, for earlier bundles, the whole blanked frame), fitted to the second model's input;
the second model was trained on exactly such images made from the first model's
*predictions* (see trainer/), so it sees at inference what it saw in training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cutout.metrics import dice
from cutout.models import combine
from cutout.segmentation import artefact
from cutout.segmentation.confidence import confidence_score
from cutout.segmentation.edges import refine
from cutout.segmentation.preprocess import fit_image, focus, focus_crop, normalise, unfit_probability


@dataclass
class Prediction:
    """What the segmenter says about one photo, before anything is stored."""

    first_prob: np.ndarray  # HxW float32 at the photo's size
    prob: np.ndarray  # final probability, HxW float32
    first_mask: np.ndarray  # HxW uint8 0/255
    mask: np.ndarray  # final mask, HxW uint8 0/255
    threshold_first: float
    threshold_second: float | None
    confidence: float
    confidence_parts: dict
    timings: dict = field(default_factory=dict)


def aspect(size: tuple[int, int]) -> float:
    """height / width of a model input (height, width)."""
    return size[0] / size[1]


def binarise(prob: np.ndarray, threshold: float) -> np.ndarray:
    """A 0/255 uint8 mask: probability strictly above the threshold."""
    return (prob > threshold).view(np.uint8) * np.uint8(255)


class Segmenter:
    def __init__(self, first: artefact.LoadedModel, second: artefact.LoadedModel | None = None,
                 threshold_first: float | None = None, threshold_second: float | None = None, tta: bool | None = None):
        self.first = first
        self.second = second
        # None: as the bundle was calibrated (its confidence may weigh the flip's agreement).
        self.tta = bool((second or first).meta.tta) if tta is None else tta
        self.threshold_first = threshold_first if threshold_first is not None else first.meta.threshold
        self.threshold_second = None
        if second is not None:
            self.threshold_second = threshold_second if threshold_second is not None else second.meta.threshold

    @classmethod
    def from_settings(cls, settings) -> "Segmenter":
        first, second = artefact.load_bundle(Path(settings.model_dir), settings.input_size, settings.second_pass,
                                             settings.inference_precision)
        return cls(first, second, settings.threshold_first, settings.threshold_second, settings.tta)

    @property
    def version(self) -> str:
        return combine(self.first.version, self.second.version if self.second else None, self.tta)

    @staticmethod
    def _probability(model: artefact.LoadedModel, rgb: np.ndarray) -> np.ndarray:
        meta = model.meta
        fitted, placement = fit_image(rgb, model.input_size, meta.fit, fill=meta.mean)
        prob = model.predict(normalise(fitted, meta.mean, meta.std)[None])[0]
        return unfit_probability(prob, placement, rgb.shape[:2])

    def first_pass(self, rgb: np.ndarray) -> np.ndarray:
        return self._probability(self.first, rgb)

    def second_pass(self, rgb: np.ndarray, first_mask: np.ndarray) -> np.ndarray:
        meta = self.second.meta
        fill = meta.fill or meta.mean
        # Outside the focus the second model saw only blank fill: nothing there can be garment.
        if meta.focus != "crop":
            focused, region = focus(rgb, first_mask, meta.dilate_fraction, fill)
            return self._probability(self.second, focused) * region
        prob = np.zeros(rgb.shape[:2], np.float32)
        cropped = focus_crop(rgb, first_mask, meta.dilate_fraction, fill, aspect(self.second.input_size))
        if cropped is not None:  # an empty first mask: no garment to look at closer
            crop, region, box = cropped
            prob[box.slices] = self._probability(self.second, crop) * region
        return prob

    def probabilities(self, rgb: np.ndarray, timings: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(first-pass, final) probabilities; final is the first when there is no second pass.
        Adds each pass's seconds to `timings` if given."""
        timings = {} if timings is None else timings
        t = time.perf_counter()
        first_prob = self.first_pass(rgb)
        timings["first_pass_s"] = timings.get("first_pass_s", 0.0) + time.perf_counter() - t
        if self.second is None:
            return first_prob, first_prob
        t = time.perf_counter()
        first_mask = binarise(first_prob, self.threshold_first)
        prob = self.second_pass(rgb, first_mask)
        timings["second_pass_s"] = timings.get("second_pass_s", 0.0) + time.perf_counter() - t
        return first_prob, prob

    def mirrored(self, rgb: np.ndarray, timings: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(first-pass, final) probabilities of the mirrored photo, mirrored back."""
        # cv2.flip: a mirrored copy of a 1152x1728 photo in under a millisecond (numpy's is ~10).
        flipped_first, flipped = self.probabilities(cv2.flip(rgb, 1), timings)
        return cv2.flip(flipped_first, 1), cv2.flip(flipped, 1)

    def flip_averaged(self, rgb: np.ndarray, first_prob: np.ndarray, prob: np.ndarray,
                      timings: dict | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """Test-time augmentation: (first-pass, final) averaged with the whole path run on the
        mirrored photo, and the Dice between the final masks of the photo and of its mirror
        image: where the two disagree the network is unsure (the confidence's flip_agreement)."""
        flipped_first, flipped = self.mirrored(rgb, timings)
        agreement = dice(binarise(prob, self.threshold), binarise(flipped, self.threshold))
        # Averaged in the mirror's own arrays (fresh from cv2.flip): no full-size temporaries.
        flipped_first += first_prob
        flipped_first *= 0.5
        flipped += prob
        flipped *= 0.5
        return flipped_first, flipped, agreement

    def passes(self, rgb: np.ndarray, timings: dict | None = None) -> tuple[np.ndarray, np.ndarray, float | None]:
        """(first-pass, final) probabilities as this segmenter runs them (flip-averaged with
        TTA), and with TTA the flip's agreement (else None)."""
        first_prob, prob = self.probabilities(rgb, timings)
        if not self.tta:
            return first_prob, prob, None
        return self.flip_averaged(rgb, first_prob, prob, timings)

    @property
    def final(self) -> artefact.LoadedModel:
        """The last stage: its model.json carries the bundle's refinement, calibration and release rule."""
        return self.second or self.first

    @property
    def threshold(self) -> float:
        """The threshold of the final probability (the last stage's)."""
        return self.threshold_first if self.second is None else self.threshold_second

    def agreement_mask(self, first_prob: np.ndarray) -> np.ndarray | None:
        """The first-pass mask the final one is compared with for the confidence; None with one pass."""
        return binarise(first_prob, self.threshold_first) if self.second is not None else None

    def segment(self, rgb: np.ndarray) -> Prediction:
        timings: dict = {}
        first_prob, prob, flip_agreement = self.passes(rgb, timings)
        if self.final.meta.refine:
            t = time.perf_counter()
            prob = refine(rgb, prob, self.final.meta.refine)
            if self.second is None:
                first_prob = prob
            timings["refine_s"] = time.perf_counter() - t
        first_mask = binarise(first_prob, self.threshold_first)
        mask = binarise(prob, self.threshold)
        score, parts = confidence_score(prob, self.threshold, mask, first_mask if self.second is not None else None,
                                        self.final.meta.calibration, rgb, flip_agreement)
        return Prediction(first_prob, prob, first_mask, mask, self.threshold_first, self.threshold_second,
                            score, parts, timings)
