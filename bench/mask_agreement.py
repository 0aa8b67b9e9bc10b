"""Do two versions of the worker's path cut the same masks? Dice between their final masks,
photo by photo, on a labelled folder (the studio-style validation set), and each version's
Dice against the truth.

    # masks of the code on PYTHONPATH (run once per version, e.g. a `git worktree` of the old commit)
    PYTHONPATH=<checkout> python bench/mask_agreement.py dump runs/studio-val --out runs/masks-new [--limit N]
    python bench/mask_agreement.py compare runs/masks-old runs/masks-new runs/studio-val

`dump` segments as a worker child does (CUTOUT_* settings apply: model, TTA, threads,
CUTOUT_INFERENCE_PRECISION) and writes one 0/255 PNG per photo plus timing.json; the
script imports `cutout` from PYTHONPATH first, so one copy of it measures any checkout
whose Segmenter has `from_settings` and `segment`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2

from cutout.metrics import dice


def dump(folder: Path, out: Path, limit: int | None) -> None:
    from cutout.config import Settings
    from cutout.imageio import read_photo_file
    from cutout.segmentation import runtime

    settings = Settings.from_env()
    runtime.configure(settings.device, settings.tf_threads)
    from cutout.segmentation.segmenter import Segmenter

    segmenter = Segmenter.from_settings(settings)
    images = sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    out.mkdir(parents=True, exist_ok=True)
    seconds = []
    for n, path in enumerate(images, 1):
        rgb = read_photo_file(path)
        started = time.perf_counter()
        mask = segmenter.segment(rgb).mask
        seconds.append(time.perf_counter() - started)
        cv2.imwrite(str(out / f"{path.stem}.png"), mask)
        if n % 50 == 0 or n == len(images):
            print(f"  {n}/{len(images)} photos", file=sys.stderr, flush=True)
    (out / "timing.json").write_text(json.dumps({"model": segmenter.version, "n": len(seconds),
                                                 "median_segment_s": statistics.median(seconds)}) + "\n")


def compare(old: Path, new: Path, folder: Path | None) -> None:
    names = sorted(p.name for p in new.glob("*.png") if (old / p.name).exists())
    if not names:
        raise SystemExit(f"no mask in {new} has a namesake in {old}")
    read = lambda d, n: cv2.imread(str(d / n), cv2.IMREAD_GRAYSCALE)  # noqa: E731
    agreement = {n: dice(read(old, n), read(new, n)) for n in names}
    values = sorted(agreement.values())
    print(f"{len(names)} photos: Dice between the two versions' masks mean {statistics.fmean(values):.5f}, "
          f"median {statistics.median(values):.5f}, min {values[0]:.5f}; "
          f"{sum(v >= 0.998 for v in values)} of {len(values)} at >= 0.998")
    for n in sorted(agreement, key=agreement.get)[:5]:
        print(f"  least alike: {n[:-4]} {agreement[n]:.5f}")
    if folder is not None:
        truth = {n: read(folder / "masks", n) for n in names if (folder / "masks" / n).exists()}
        for label, d in (("old", old), ("new", new)):
            scores = [dice(read(d, n), t) for n, t in truth.items()]
            print(f"  {label}: Dice against the truth mean {statistics.fmean(scores):.4f}, median {statistics.median(scores):.4f}")
    for label, d in (("old", old), ("new", new)):
        timing = json.loads((d / "timing.json").read_text()) if (d / "timing.json").exists() else {}
        if timing:
            print(f"  {label}: {timing['model']}, segment() median {timing['median_segment_s'] * 1000:.0f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("dump")
    d.add_argument("folder", type=Path)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--limit", type=int)
    c = commands.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    c.add_argument("folder", type=Path, nargs="?")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.folder, args.out, args.limit)
    else:
        compare(args.old, args.new, args.folder)


if __name__ == "__main__":
    main()
