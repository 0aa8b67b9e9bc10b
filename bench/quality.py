"""Dice of the shipped model (single pass, double pass, double pass + flip TTA) beside OpenCV
GrabCut (rectangle inset 5 %, 5 iterations) and a mean-mask prior, on the validation images
the model never trained on, in one run.

    python bench/quality.py [--data ../shared/data/ccp] [--model BUNDLE] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cutout import imageio  # noqa: E402
from cutout.config import Settings  # noqa: E402
from cutout.metrics import dice  # noqa: E402
from cutout.segmentation import artefact, runtime  # noqa: E402
from cutout.segmentation.segmenter import binarise  # noqa: E402
from trainer.data import find_pairs  # noqa: E402
from trainer.evaluate import summarise  # noqa: E402

PRIOR_SIZE = (384, 256)


def grabcut(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    rect = (int(w * 0.05), int(h * 0.05), int(w * 0.9), int(h * 0.9))
    mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), mask, rect, bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
    return np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)


def mean_mask(train_pairs) -> np.ndarray:
    acc = np.zeros(PRIOR_SIZE, np.float64)
    for p in train_pairs:
        acc += cv2.resize(imageio.read_mask_file(p.truth), PRIOR_SIZE[::-1], interpolation=cv2.INTER_AREA) / 255.0
    return acc / max(1, len(train_pairs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "ccp")
    parser.add_argument("--model", type=Path, default=Settings.from_env().model_dir)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    runtime.configure("auto", 0)
    from trainer.evaluate import evaluate_pairs

    first, second = artefact.load_bundle(args.model)
    val_ids = set(first.meta.training.get("val_ids", []))
    pairs = find_pairs(args.data)
    val = [p for p in pairs if p.id in val_ids] or pairs
    train = [p for p in pairs if p.id not in val_ids]
    if args.limit:
        val = val[:args.limit]

    t = time.time()
    model_report = evaluate_pairs(first, second, val, tta=True)
    model_s = time.time() - t
    prior = mean_mask(train)
    prior_scores, grab_scores = [], []
    t = time.time()
    for p in val:
        rgb = imageio.read_photo_file(p.image)
        truth = imageio.read_mask_file(p.truth)
        up = cv2.resize(prior, (truth.shape[1], truth.shape[0]), interpolation=cv2.INTER_CUBIC)
        prior_scores.append(dice(binarise(up, 0.5), truth))
        grab_scores.append(dice(grabcut(rgb), truth))
    baseline_s = time.time() - t

    print(f"{len(val)} validation images from {args.data} (model {model_report['models']})")
    print(f"{'method':<28} {'mean':>7} {'median':>7} {'std':>7} {'outliers':>8}")
    rows = [(name, model_report[key]["dice"]) for name, key in
            (("U-Net single pass", "single"), ("U-Net double pass", "double"), ("U-Net double + flip TTA", "double_tta"),
             ("U-Net single + flip TTA", "single_tta")) if key in model_report]
    rows += [("mean-mask prior", summarise(prior_scores)), ("GrabCut (5 % inset, 5 it.)", summarise(grab_scores))]
    for name, s in rows:
        print(f"{name:<28} {s['mean']:7.4f} {s['median']:7.4f} {s['std']:7.4f} {s['n_outliers']:8d}")
    print(f"time: model variants {model_s:.0f} s, baselines {baseline_s:.0f} s")


if __name__ == "__main__":
    main()
