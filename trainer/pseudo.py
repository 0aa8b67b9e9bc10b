"""Pseudo-labels (the study's next step): photos without annotation segmented by a bundle the
worker's way, the masks it is confident of kept as a labelled folder for `cutout train --extra`.

What is kept is decided by the bundle's own calibrated confidence (its predicted Dice), the
same number the release rule reads: a photo below `min_confidence` is left out rather than
taught wrong. Every photo's mask and confidence are written (masks/, pseudo.csv) and only the
kept photos are linked into images/, so a rerun over the same folder segments only photos not
yet listed and re-cuts the rest at the new `min_confidence`.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import cv2

from cutout import imageio
from trainer.data import IMAGE_SUFFIXES

FIELDS = ("id", "confidence", "garment_share")


def _listed(table: Path) -> dict[str, dict]:
    if not table.exists():
        return {}
    with table.open(newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def pseudo_label(settings, bundle: Path, photos: Path, out: Path, min_confidence: float,
                 limit: int | None = None, progress=None) -> dict:
    """Segment every photo in `photos` (a folder of images, or one with images/) with `bundle`:
    out/masks/<id>.png and a row of out/pseudo.csv for each, a link in out/images/ for each at
    or above `min_confidence` (the labelled folder `cutout train` reads). Returns the counts and
    the confidence's quartiles."""
    from cutout.segmentation.segmenter import Segmenter

    source = photos / "images" if (photos / "images").is_dir() else photos
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise FileNotFoundError(f"no photos in {source}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    table = out / "pseudo.csv"
    done = _listed(table)
    seg = Segmenter.from_settings(replace(settings, model_dir=Path(bundle)))
    new_table = not table.exists()
    with table.open("a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if new_table:
            writer.writeheader()
        for n, path in enumerate(files, start=1):
            if path.stem not in done:
                try:
                    rgb = imageio.read_photo_file(path)
                except imageio.BadImage:
                    row = {"id": path.stem, "confidence": "", "garment_share": ""}
                else:
                    prediction = seg.segment(rgb)
                    cv2.imwrite(str(out / "masks" / f"{path.stem}.png"), prediction.mask)
                    row = {"id": path.stem, "confidence": f"{prediction.confidence:.5f}",
                           "garment_share": f"{(prediction.mask > 0).mean():.4f}"}
                writer.writerow(row)
                f.flush()  # a stopped run keeps what it did
                done[path.stem] = row
            if progress:
                progress(n, len(files))
    kept = 0
    for path in files:
        row, link = done[path.stem], out / "images" / path.name
        if row["confidence"] not in ("", None) and float(row["confidence"]) >= min_confidence:
            kept += 1
            if not link.is_symlink():
                link.symlink_to(path.resolve())
        elif link.is_symlink():
            link.unlink()
    confidences = sorted(float(r["confidence"]) for r in done.values() if r["confidence"] not in ("", None))
    return {"out": str(out), "photos": len(done), "unreadable": sum(r["confidence"] in ("", None) for r in done.values()),
            "kept": kept, "min_confidence": min_confidence,
            "model": seg.version,
            "confidence_quartiles": [round(confidences[int(q * (len(confidences) - 1))], 4) for q in (0.25, 0.5, 0.75)]
            if confidences else None}
