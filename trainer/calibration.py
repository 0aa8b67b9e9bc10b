"""`cutout calibrate`: on labelled studio-style validation garments, search the edge refinement
and threshold, fit the confidence calibration (trainer.confidence_fit) and choose the release
rule's threshold (cutout.release.choose_release), and write them into the bundle. Fitted on
validation garments, never on training ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cutout.release import all_views_good, automation_curve, choose_release, garment_table, operating_points
from cutout.segmentation.confidence import FEATURES
from trainer.confidence_fit import fit_calibration


# Edge refinement candidates (full-resolution window radius, regularisation; None = off) and
# thresholds, tried together: the refined map's best threshold is not the raw map's.
REFINE_GRID = (None, {"radius": 16, "eps": 1e-3}, {"radius": 32, "eps": 1e-3}, {"radius": 48, "eps": 1e-3})
THRESHOLDS = (0.3, 0.4, 0.5)
DICE_TOLERANCE = 0.002  # among set-ups within this of the best mean Dice, the best edges win


def candidates(grid=REFINE_GRID, thresholds=THRESHOLDS) -> list[tuple[dict | None, float]]:
    return [(params, t) for params in grid for t in thresholds]


def measure(seg, pairs, options, progress=None) -> list[list[dict]]:
    """Per photo, per (refinement, threshold) option: Dice, boundary F and the confidence signals."""
    from cutout import imageio
    from cutout.metrics import boundary_f, dice
    from cutout.segmentation.edges import refine

    results = []
    for n, pair in enumerate(pairs, 1):
        rgb, truth = imageio.read_photo_file(pair.image), imageio.read_mask_file(pair.truth)
        first_prob, final, agreements = seg.passes(rgb)
        refined = {}
        per = []
        for params, threshold in options:
            key = None if params is None else (params["radius"], params["eps"])
            if key not in refined:  # each refinement once, for all its thresholds
                refined[key] = refine(rgb, final, params)
            prediction = seg.finish(rgb, first_prob, refined[key], agreements, refine_params=None, threshold=threshold)
            per.append({"id": pair.id, "garment": pair.source, "dice": dice(prediction.mask, truth),
                        "boundary_f": boundary_f(prediction.mask, truth), "signals": prediction.confidence_parts})
        results.append(per)
        if progress:
            progress(n, len(pairs))
    return results


def write_views(path: Path, views: list[dict], rows: list[dict]) -> None:
    """One line per validation view: its measured Dice and boundary F, the predicted Dice and
    every signal, so a person can see which garments the rule holds back and why, and try
    other rules without running the model again."""
    import csv

    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        # the height and area signals: what the release rule's views_agree compares across views
        extra = ("height_fraction", "garment_fraction")
        out.writerow(["id", "garment", "dice", "boundary_f", "predicted", *FEATURES, *extra])
        for view, row in zip(views, rows):
            out.writerow([view["id"], view["garment"], round(view["dice"], 5), round(view["boundary_f"], 5),
                          round(row["predicted"], 5), *(view["signals"].get(k, "") for k in (*FEATURES, *extra))])


def calibrate(bundle: Path, data: Path, plots: Path | None = None, limit: int | None = None, progress=None,
              tta: bool = True) -> dict:
    """Tune the edge refinement, fit the calibration and choose the release rule of a bundle on
    a labelled studio-style validation folder (three views per garment: <photo>_<View>), and
    write them into the bundle's last stage's model.json."""
    from cutout.bundle import last_stage
    from cutout.segmentation import artefact
    from cutout.segmentation.segmenter import Segmenter
    from trainer.data import find_pairs
    from trainer.plots import write_plots

    first, second = artefact.load_bundle(bundle)
    seg = Segmenter(first, second, tta=tta)
    pairs = find_pairs(data)[:limit]
    options = candidates()
    measured = measure(seg, pairs, options, progress)
    means = [{"dice": float(np.mean([m[k]["dice"] for m in measured])),
              "boundary_f": float(np.mean([m[k]["boundary_f"] for m in measured]))} for k in range(len(options))]
    best_dice = max(m["dice"] for m in means)
    allowed = [k for k in range(len(options)) if means[k]["dice"] >= best_dice - DICE_TOLERANCE]
    chosen = max(allowed, key=lambda k: means[k]["boundary_f"])
    views = [m[chosen] for m in measured]
    calibration = fit_calibration([v["signals"] for v in views], [v["dice"] for v in views],
                                  [v["garment"] for v in views])
    from cutout.segmentation.confidence import predicted_dice

    rows = [{"garment": v["garment"], "predicted": predicted_dice(v["signals"], calibration), "dice": v["dice"],
             "signals": v["signals"]} for v in views]
    garments = garment_table(rows)
    release = choose_release(garments)
    release["operating_points"] = operating_points(garments)
    last = last_stage(bundle)
    meta = artefact.read_meta(last)
    meta.refine, meta.calibration, meta.release = options[chosen][0], calibration, release
    meta.threshold = options[chosen][1]
    meta.tta = tta
    dice = np.array([v["dice"] for v in views])
    meta.evaluation = {**meta.evaluation, "studio": {
        "data": str(data), "n": len(views), "garments": len(garments),
        "mean_dice": float(dice.mean()), "median_dice": float(np.median(dice)),
        "mean_boundary_f": means[chosen]["boundary_f"],
        "threshold": meta.threshold,
        "candidates": [{"refine": options[k][0], "threshold": options[k][1], **means[k]} for k in range(len(options))],
        "released": release["validation"]["released"], "precision": release["validation"]["precision"],
        "all_views_good": all_views_good(garments)}}
    artefact.write_meta(last, meta)
    if plots is not None:
        write_plots(plots, automation_curve(garments), release, [r["predicted"] for r in rows], list(dice))
        write_views(Path(plots) / "views.csv", views, rows)
    return {"model": str(bundle), "refine": meta.refine, "threshold": meta.threshold, "calibration_score": calibration["score"],
            "calibration_mse": calibration["mse"], "calibration_cv_mse": calibration["cv_mse"], "release": release, **meta.evaluation["studio"]}
