"""The two-pass segmentation of one photo, and its confidence score.

First pass: the whole photo, fitted to the first model's input.
Second pass: the photo blanked outside the dilated first mask and cut to the garment's box,
fitted to the second model's input;
the second model was trained on exactly such images made from the first model's
*predictions* (see trainer/), so it sees at inference what it saw in training.
Flip test-time augmentation runs each network on its input and that input's mirror image in
one batch, and averages the two at the network's size; a bagged stage (cutout.bundle) averages
its members' maps there too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cutout.metrics import dice
from cutout.bundle import combine
from cutout.segmentation import artefact
from cutout.segmentation.confidence import AGREEMENTS, confidence_score
from cutout.segmentation.edges import refine
from cutout.segmentation.preprocess import fit_image, focus_crop, normalise, unfit_probability


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


BUNDLE = object()  # Segmenter.finish: the bundle's own refinement
# A network's agreement with itself that this run does not measure (no TTA, no bag).
UNMEASURED = dict.fromkeys(AGREEMENTS)


def aspect(size: tuple[int, int]) -> float:
    """height / width of a model input (height, width)."""
    return size[0] / size[1]


def describe_precisions(precisions: dict[str, str]) -> str:
    """Per-stage precisions in a few words, for logs and reports: "float32", or
    "first float32, second bfloat16" when the stages differ."""
    kinds = set(precisions.values())
    return kinds.pop() if len(kinds) == 1 else ", ".join(f"{k} {v}" for k, v in precisions.items())


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
                                             settings.inference_precision, settings.inference_engine)
        return cls(first, second, settings.threshold_first, settings.threshold_second, settings.tta)

    @property
    def version(self) -> str:
        """The version of the weights this segmenter runs (cutout.bundle): a bundle's own
        version when it runs every stage the bundle has."""
        return combine(self.first.version, self.second.version if self.second else None)

    @property
    def run_settings(self) -> dict:
        """How the weights are run, recorded beside every result (never part of the version)."""
        return {"tta": self.tta, "second_pass": self.second is not None, "precision": self.precisions,
                "engine": self.final.engine}

    def _probability(self, model: artefact.LoadedModel, rgb: np.ndarray, threshold: float,
                     flip: bool = True) -> tuple[np.ndarray, dict]:
        """The model's probability map of `rgb`, at its size, and how much the network agreed with
        itself at `threshold` (see agreements; the flip's only when `flip`: the confidence
        weighs the final network's alone). With flip test-time augmentation the mirror image of
        the network's input rides in the same batch and the two maps are averaged at the
        network's size, before the one upsampling: one network call and none of the full-size
        work twice. A bag's members each see the same batch and their maps are averaged there too."""
        meta = model.meta
        fitted, placement = fit_image(rgb, model.input_size, meta.fit, fill=meta.mean)
        x = normalise(fitted, meta.mean, meta.std)[None]
        maps = model.predict_each(np.concatenate([x, x[:, :, ::-1]]) if self.tta else x)
        straight = [m[0] for m in maps]
        agreements = dict(UNMEASURED)
        if self.tta:
            mirrored = [m[1, :, ::-1] for m in maps]
            if flip:
                agreements["flip_agreement"] = dice(artefact.mean_of(straight) > threshold,
                                                    artefact.mean_of(mirrored) > threshold)
            each = [(s + m) * np.float32(0.5) for s, m in zip(straight, mirrored)]
        else:
            each = straight
        if len(each) > 1:
            masks = [p > threshold for p in each]
            agreements["member_agreement"] = min(dice(a, b) for i, a in enumerate(masks) for b in masks[i + 1:])
        return unfit_probability(artefact.mean_of(each), placement, rgb.shape[:2]), agreements

    def first_pass(self, rgb: np.ndarray) -> np.ndarray:
        return self._probability(self.first, rgb, self.threshold_first, flip=False)[0]

    def second_pass(self, rgb: np.ndarray, first_mask: np.ndarray) -> tuple[np.ndarray, dict]:
        """The second model's probability at the photo's size, zero outside its focus, and its
        agreements, as _probability returns them."""
        meta = self.second.meta
        fill = meta.fill or meta.mean
        # Outside the focus the second model saw only blank fill: nothing there can be garment.
        prob = np.zeros(rgb.shape[:2], np.float32)
        cropped = focus_crop(rgb, first_mask, meta.dilate_fraction, fill, aspect(self.second.input_size))
        if cropped is None:  # an empty first mask: no garment to look at closer
            return prob, dict(UNMEASURED)
        crop, region, box = cropped
        inside, agreements = self._probability(self.second, crop, self.threshold_second)
        prob[box.slices] = inside * region
        return prob, agreements

    def passes(self, rgb: np.ndarray, timings: dict | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
        """(first-pass, final) probabilities as this segmenter runs them (the final is the first
        when there is no second pass), and the agreements the confidence weighs: the final
        network's with its mirror image (with TTA), and the lowest of any bagged stage's members
        with each other (None where not measured). Adds each pass's seconds to `timings` if
        given."""
        timings = {} if timings is None else timings
        t = time.perf_counter()
        first_prob, agreements = self._probability(self.first, rgb, self.threshold_first, flip=self.second is None)
        timings["first_pass_s"] = time.perf_counter() - t
        if self.second is None:
            return first_prob, first_prob, agreements
        t = time.perf_counter()
        prob, final = self.second_pass(rgb, binarise(first_prob, self.threshold_first))
        timings["second_pass_s"] = time.perf_counter() - t
        members = [a["member_agreement"] for a in (agreements, final) if a["member_agreement"] is not None]
        return first_prob, prob, {"flip_agreement": final["flip_agreement"],
                                  "member_agreement": min(members) if members else None}

    @property
    def precisions(self) -> dict[str, str]:
        """What each stage's network computes in. "auto" decides per stage (each is timed at its
        own input size), so one stage may run in bfloat16 and the other in float32."""
        return {"first": self.first.precision, **({"second": self.second.precision} if self.second else {})}

    @property
    def precision(self) -> str:
        """The precisions in a few words (describe_precisions)."""
        return describe_precisions(self.precisions)

    @property
    def final(self) -> artefact.LoadedModel:
        """The last stage: its model.json carries the bundle's refinement, calibration and release rule."""
        return self.second or self.first

    @property
    def threshold(self) -> float:
        """The threshold of the final probability (the last stage's)."""
        return self.threshold_first if self.second is None else self.threshold_second

    def segment(self, rgb: np.ndarray) -> Prediction:
        timings: dict = {}
        first_prob, prob, agreements = self.passes(rgb, timings)
        return self.finish(rgb, first_prob, prob, agreements, timings=timings)

    def finish(self, rgb: np.ndarray, first_prob: np.ndarray, prob: np.ndarray, agreements: dict,
               refine_params: dict | None | object = BUNDLE, threshold: float | None = None,
               timings: dict | None = None) -> Prediction:
        """The prediction from the passes' maps (`passes`): the edge refinement, the masks and the
        confidence. The one place a view's confidence is assembled: the worker (segment),
        evaluation and calibration all call it. `refine_params` and `threshold` default to the
        bundle's own; calibration passes the candidates it compares."""
        timings = {} if timings is None else timings
        refine_params = self.final.meta.refine if refine_params is BUNDLE else refine_params
        threshold = self.threshold if threshold is None else threshold
        if refine_params:
            t = time.perf_counter()
            prob = refine(rgb, prob, refine_params)
            if self.second is None:
                first_prob = prob
            timings["refine_s"] = time.perf_counter() - t
        t = time.perf_counter()
        first_mask = binarise(first_prob, self.threshold_first)
        mask = binarise(prob, threshold)
        score, parts = confidence_score(prob, threshold, mask, first_mask if self.second is not None else None,
                                        self.final.meta.calibration, rgb, agreements)
        timings["confidence_s"] = time.perf_counter() - t
        return Prediction(first_prob, prob, first_mask, mask, self.threshold_first, self.threshold_second,
                          score, parts, timings)
