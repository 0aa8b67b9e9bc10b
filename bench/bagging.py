"""Bagging against flip TTA at equal network cost: does averaging two trained members of a
stage beat averaging one member with its mirror image, and does the members' disagreement say
more about a view's quality than the flip's?

    python bench/bagging.py runs/studio-val --member first=runs/c-first [--member second=DIR] \
        [--bundle cutout/segmentation/default_model] [--limit N]

Each view of the labelled folder is cut three ways, by the worker's path (two passes,
refinement, the bundle's thresholds): the bundle with flip TTA (2 network runs a stage), the
bagged stages without it (the bundle's stage averaged with --member's: 2 runs a stage), and the
bag with TTA (4 runs). Members must share the stage's input size and normalisation (a warm
start from it keeps them). Per way: mean and median Dice, boundary F, the share of garments
with every view at Dice >= 0.95, seconds in the networks a view; and how well each agreement
signal ranks views right (Dice >= 0.95) above wrong, as an AUC.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cutout import bundle, imageio  # noqa: E402
from cutout.config import Settings  # noqa: E402
from cutout.metrics import boundary_f, dice  # noqa: E402
from cutout.release import GOOD_DICE  # noqa: E402
from cutout.segmentation import artefact, runtime  # noqa: E402
from trainer.data import find_pairs  # noqa: E402


def auc(scores: list[float], good: list[bool]) -> float | None:
    """Probability that a right view scores above a wrong one (ties count half)."""
    pos = [s for s, g in zip(scores, good) if g]
    neg = [s for s, g in zip(scores, good) if not g]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--member", action="append", required=True, help="STAGE=DIR, repeatable (first, second)")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    settings = Settings.from_env()
    runtime.configure(settings.device, settings.tf_threads)
    from cutout.segmentation.runtime import cpu_info
    from cutout.segmentation.segmenter import Segmenter

    path = args.bundle or settings.model_dir
    first, second = artefact.load_bundle(path)
    stages = {"first": first, "second": second}
    bagged = dict(stages)
    for spec in args.member:
        stage, _, folder = spec.partition("=")
        if stage not in stages or stages[stage] is None or not folder:
            raise SystemExit(f"--member {spec!r}: give first=DIR or second=DIR of a stage the bundle has")
        bundle.check_member(bundle.stages(path)[stage == "second"], Path(folder))
        bagged[stage] = replace(bagged[stage], members=[*bagged[stage].members, artefact.load(Path(folder))])
    ways = {"bundle, flip TTA": Segmenter(first, second, tta=True),
            "bag, no TTA": Segmenter(bagged["first"], bagged["second"], tta=False),
            "bag, flip TTA": Segmenter(bagged["first"], bagged["second"], tta=True)}
    pairs = find_pairs(args.data)[:args.limit]
    rows = defaultdict(list)
    for n, pair in enumerate(pairs, 1):
        rgb, truth = imageio.read_photo_file(pair.image), imageio.read_mask_file(pair.truth)
        for name, seg in ways.items():
            started = time.perf_counter()
            first_prob, prob, agreements = seg.passes(rgb)
            network_s = time.perf_counter() - started
            prediction = seg.finish(rgb, first_prob, prob, agreements)
            rows[name].append({"garment": pair.source, "dice": dice(prediction.mask, truth),
                               "boundary_f": boundary_f(prediction.mask, truth), "network_s": network_s,
                               **agreements})
        if n % 25 == 0 or n == len(pairs):
            print(f"  {n}/{len(pairs)} views", file=sys.stderr, flush=True)
    print(f"cpu: {cpu_info()}; {len(pairs)} views of {args.data}; members: {', '.join(args.member)}")
    for name, views in rows.items():
        garments = defaultdict(list)
        for v in views:
            garments[v["garment"]].append(v["dice"])
        dices = [v["dice"] for v in views]
        good = [d >= GOOD_DICE for d in dices]
        signals = {k: auc([v[k] for v in views], good) for k in ("flip_agreement", "member_agreement")
                   if all(v[k] is not None for v in views)}
        print(f"{name:<18} Dice mean {np.mean(dices):.4f} median {np.median(dices):.4f} "
              f"boundary F {np.mean([v['boundary_f'] for v in views]):.4f} "
              f"garments all views good {np.mean([min(d) >= GOOD_DICE for d in garments.values()]):.1%} "
              f"networks {statistics.median(v['network_s'] for v in views):.3f} s a view; AUC "
              + ", ".join(f"{k} {a:.3f}" if a is not None else f"{k} n/a (views all right or all wrong)"
                           for k, a in signals.items()))


if __name__ == "__main__":
    main()
