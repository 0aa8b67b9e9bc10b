"""Evaluation over a labelled folder: Dice and boundary F per image, the study's summary
(mean, median, outliers), a threshold sweep, and single vs double pass vs double pass with
horizontal-flip test-time augmentation."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from cutout import imageio
from cutout.metrics import boundary_f, dice
from cutout.segmentation.edges import refine
from cutout.segmentation.segmenter import Segmenter, binarise
from trainer.data import Pair

SWEEP = [round(t, 2) for t in np.arange(0.20, 0.86, 0.05)]


def summarise(values, ids=None, outliers: int = 5) -> dict:
    """Mean, median, std and the worst cases, as the study reported them."""
    v = np.asarray(list(values), np.float64)
    if len(v) == 0:
        return {"n": 0}
    order = np.argsort(v)
    worst = [{"id": (ids[i] if ids is not None else int(i)), "value": float(v[i])} for i in order[:outliers]]
    q1, q3 = np.percentile(v, [25, 75])
    return {
        "n": int(len(v)),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "std": float(v.std()),
        "min": float(v.min()),
        "q1": float(q1),
        "q3": float(q3),
        # The study's outliers: below Q1 - 1.5 IQR.
        "n_outliers": int((v < q1 - 1.5 * (q3 - q1)).sum()),
        "worst": worst,
    }


def worker_dice(settings, bundle: Path, pairs: list[Pair]) -> dict:
    """Dice of a bundle on labelled pairs, each photo segmented by the worker's own path
    (Segmenter.from_settings, then segment: the passes, refinement and threshold a worker
    uses, with the same run settings): how retraining scores champion and challenger alike.
    {"mean_dice", "dice" (per pair), "views" (per pair: garment, predicted, dice, signals: what
    cutout.release.garment_table takes), "run_settings"}."""
    from dataclasses import replace

    seg = Segmenter.from_settings(replace(settings, model_dir=Path(bundle)))
    scores, views = [], []
    for pair in pairs:
        prediction = seg.segment(imageio.read_photo_file(pair.image))
        scores.append(dice(prediction.mask, imageio.read_mask_file(pair.truth)))
        views.append({"garment": pair.source, "predicted": prediction.confidence, "dice": scores[-1],
                      "signals": prediction.confidence_parts})
    return {"mean_dice": float(np.mean(scores)) if scores else None, "dice": scores, "views": views,
            "run_settings": seg.run_settings}


def evaluate_pairs(first, second, pairs: list[Pair], tta: bool = True, gallery: Path | None = None,
                   worst: int = 8, thresholds: tuple[float | None, float | None] = (None, None),
                   progress=None) -> dict:
    """Evaluate loaded models (second may be None) on labelled pairs; progress(done, total)
    after each photo, if given."""
    seg = Segmenter(first, second, *thresholds)
    tta = tta or seg.tta  # a bundle calibrated with TTA is judged as the worker runs it
    plain = Segmenter(first, second, *thresholds, tta=False)
    mirrored = Segmenter(first, second, *thresholds, tta=True)
    variants = ["single"] + (["double"] + (["double_tta"] if tta else []) if second is not None else
                             (["single_tta"] if tta else []))
    rows = []
    sweep = {k: {t: [] for t in SWEEP} for k in ("single", "double") if k == "single" or second is not None}
    main = ("double" if second is not None else "single") + ("_tta" if seg.tta else "")
    started = time.time()
    keep = {}
    for pair in pairs:
        rgb = imageio.read_photo_file(pair.image)
        truth = imageio.read_mask_file(pair.truth)
        passes = {"plain": plain.passes(rgb)}
        if tta:
            passes["tta"] = mirrored.passes(rgb)
        # The worker's variant, as the worker makes it (refinement, masks and confidence).
        prediction = seg.finish(rgb, *passes["tta" if seg.tta else "plain"])
        first_prob, final, _ = passes["plain"]
        refined = prediction.prob if not seg.tta else refine(rgb, final, seg.final.meta.refine)
        probs = {"single": (refined if second is None else first_prob, seg.threshold_first)}
        if second is not None:
            probs["double"] = (refined, seg.threshold_second)
        if tta:
            probs["double_tta" if second is not None else "single_tta"] = (
                prediction.prob if seg.tta else refine(rgb, passes["tta"][1], seg.final.meta.refine), seg.threshold)
        row = {"id": pair.id, "garment": pair.source}
        for name, (prob, threshold) in probs.items():
            mask = binarise(prob, threshold)
            row[f"{name}_dice"] = dice(mask, truth)
            row[f"{name}_boundary_f"] = boundary_f(mask, truth)
        row.update(confidence=prediction.confidence, **{f"signal_{k}": v for k, v in prediction.confidence_parts.items()})
        for name in sweep:
            prob = probs[name][0]
            for t in SWEEP:
                sweep[name][t].append(dice(binarise(prob, t), truth))
        rows.append(row)
        if progress:
            progress(len(rows), len(pairs))
        if gallery is not None:
            keep[pair.id] = (rgb, binarise(*probs[main]), truth)
    ids = [r["id"] for r in rows]
    report = {"n": len(rows), "seconds": round(time.time() - started, 1), "models": {"first": first.version, "second": second.version if second else None},
              "thresholds": {"first": seg.threshold_first, "second": seg.threshold_second},
              "precision": seg.precisions}
    for name in variants:
        report[name] = {
            "dice": summarise([r[f"{name}_dice"] for r in rows], ids),
            "boundary_f": summarise([r[f"{name}_boundary_f"] for r in rows], ids),
        }
    report["threshold_sweep"] = {k: {str(t): float(np.mean(v)) if v else None for t, v in d.items()} for k, d in sweep.items()}
    report["variant"] = main  # what the worker runs; the top-level figures are its
    report["mean_dice"] = report[main]["dice"].get("mean")
    report["median_dice"] = report[main]["dice"].get("median")
    report["boundary_f"] = report[main]["boundary_f"].get("mean")
    report["automation"] = automation(rows, main, seg.final.meta.release)
    report["per_image"] = rows
    if gallery is not None and rows:
        write_gallery(gallery, keep, sorted(rows, key=lambda r: r[f"{main}_dice"])[:worst], main)
    return report


def automation(rows: list[dict], variant: str, rule: dict | None) -> dict:
    """Share of garments the release rule lets out without a person, and how many of those are
    right (every view at Dice >= the rule's good Dice, 0.95), with the whole automation curve, and
    how many garments the views' height and size checks hold back (with how many of them were
    right: what the checks cost), and the operating points measured on these garments (the
    threshold each precision would take here, and what it would release: on the studio's own
    holdout, what `--min-confidence` to choose)."""
    from cutout.release import GOOD_DICE, all_views_good, automation_curve, garment_table, operating_points, released

    garments = garment_table([{"garment": r["garment"], "predicted": r["confidence"], "dice": r[f"{variant}_dice"],
                               "signals": {k[len("signal_"):]: v for k, v in r.items() if k.startswith("signal_")}}
                              for r in rows])
    good = (rule or {}).get("good_dice", GOOD_DICE)
    disagree = [g for g in garments.values() if not g["views_agree"]]
    result = {"garments": len(garments), "rule": rule, "curve": automation_curve(garments, good),
              "right": all_views_good(garments, good), "good_dice": good,
              "views_disagree": {"garments": len(disagree), "right": sum(g["dice"] >= good for g in disagree)},
              "operating_points": operating_points(garments, good=good)}
    if rule:
        out = [g for g in garments.values() if released(g, rule["min_predicted_dice"])]
        result.update(released=round(len(out) / max(1, len(garments)), 4),
                      precision=round(sum(g["dice"] >= good for g in out) / len(out), 4) if out else None)
    else:
        result.update(released=None, precision=None)
    return result


def write_gallery(folder: Path, images: dict, worst_rows: list[dict], variant: str) -> None:
    """Side by side for the worst cases: prediction overlay | truth overlay."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for rank, row in enumerate(worst_rows, 1):
        rgb, mask, truth = images[row["id"]]
        pair = np.hstack([imageio.overlay(rgb, mask), imageio.overlay(rgb, truth)])
        name = f"{rank:02d}_{row['id']}_dice{row[f'{variant}_dice']:.3f}.jpg"
        (folder / name).write_bytes(imageio.encode_jpeg(pair))


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
