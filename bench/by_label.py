"""Which garments the cut gets wrong, by what the person wears: for each CCP label (as
labels.txt names it), the validation garments that show it, the share of them right on every
view (Dice >= 0.95) and their mean worst-view Dice, worst labels first. It reads the per-view
figures `cutout calibrate --plots` writes (views.csv), so it costs no inference.

    python bench/by_label.py cutout/segmentation/default_model/views.csv [--ccp ../shared/data/ccp] [--min-pixels 300]

A label on few photos says little (the count is printed beside it); what it is for is the next
model's training data: the garments the model misses most often are the ones to show it more
(`cutout studio-data --rare`).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cutout.release import GOOD_DICE  # noqa: E402
from trainer.studio import label_names  # noqa: E402


def worst_views(views_csv: Path) -> dict[str, float]:
    """Per garment (the CCP photo id), its worst view's Dice."""
    worst: dict[str, float] = defaultdict(lambda: 1.0)
    with open(views_csv, newline="") as f:
        for row in csv.DictReader(f):
            worst[row["garment"]] = min(worst[row["garment"]], float(row["dice"]))
    return dict(worst)


def labels_shown(ccp: Path, photo_id: str, names: list[str], min_pixels: int) -> set[str]:
    labels = cv2.imread(str(ccp / "labels" / f"{photo_id}.png"), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise SystemExit(f"{ccp / 'labels' / photo_id}.png is missing: --ccp must be the data the views were made from")
    values, counts = np.unique(labels, return_counts=True)
    return {names[v] for v, c in zip(values, counts) if c >= min_pixels and v < len(names)}


def by_label(worst: dict[str, float], ccp: Path, min_pixels: int = 300) -> list[dict]:
    names = label_names(ccp)
    garments: dict[str, list[float]] = defaultdict(list)
    for photo_id, dice in worst.items():
        for name in labels_shown(ccp, photo_id, names, min_pixels):
            garments[name].append(dice)
    rows = [{"label": name, "garments": len(d), "right": float(np.mean([x >= GOOD_DICE for x in d])),
             "mean_worst_dice": float(np.mean(d))} for name, d in garments.items()]
    return sorted(rows, key=lambda r: (r["right"], r["mean_worst_dice"], r["label"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("views", type=Path, help="views.csv from cutout calibrate --plots")
    parser.add_argument("--ccp", type=Path, default=Path("../shared/data/ccp"))
    parser.add_argument("--min-pixels", type=int, default=300, help="A label counts on a photo from this many pixels.")
    args = parser.parse_args()
    worst = worst_views(args.views)
    overall = float(np.mean([d >= GOOD_DICE for d in worst.values()]))
    print(f"{len(worst)} garments, {overall:.1%} right on every view")
    print(f"{'label':14s} {'garments':>8s} {'right':>7s} {'mean worst Dice':>16s}")
    for row in by_label(worst, args.ccp, args.min_pixels):
        print(f"{row['label']:14s} {row['garments']:8d} {row['right']:7.1%} {row['mean_worst_dice']:16.4f}")


if __name__ == "__main__":
    main()
