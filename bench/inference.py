"""Per-stage time for one 1152x1728 studio shot through both passes, and the model's achieved
GFLOP/s beside this machine's float32 GEMM GFLOP/s measured in the same run (a ratio is what
to compare across machines).

    python bench/inference.py [--model BUNDLE] [--repeat 5] [--cores 1] [--against ddeb2d2]

It runs on --cores cores (default 1: a worker child's share when the pool runs one child
per core, the worker's default), so TensorFlow and OpenCV size their pools as in a child.
--against REV (repeatable) also runs that commit's own bench/inference.py, from a temporary git worktree
on the same cores, right after this one, and prints its stages beside this one's and the ratio
of the two totals.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cutout import imageio  # noqa: E402
from cutout.config import Settings  # noqa: E402
from cutout.segmentation import artefact, runtime  # noqa: E402
from demo import synthetic  # noqa: E402


def conv_flops(keras_model) -> float:
    """Multiply-adds x 2 of every convolution for one image (BN/ReLU/pooling are negligible)."""
    total = 0.0
    for layer in keras_model.layers:
        if layer.__class__.__name__ == "Conv2D":
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2.0 * h * w * kh * kw * c_in * c_out
    return total


def gemm_gflops(n: int = 2048, repeat: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# The environment this bench was started with, before runtime.configure adds its own defaults
# (TF_ENABLE_ONEDNN_OPTS): a baseline commit runs as it would have run, with its own defaults.
CALLER_ENV = dict(os.environ)


STAGE_LINE = re.compile(r"^\s+([a-z_]+)\s+([\d.]+) ms$", re.M)


def stage_lines(output: str) -> dict[str, float]:
    """The per-stage lines ("  decode   36.2 ms") of a bench's output, by stage."""
    return {name: float(ms) for name, ms in STAGE_LINE.findall(output)}


def baseline_stages(rev: str, repeat: int) -> dict[str, float]:
    """`rev`'s own benchmark, run from a temporary worktree with this process's CPU affinity
    (inherited): its per-stage milliseconds, "total" among them."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "-f", str(tree), rev],
                       check=True, capture_output=True)
        try:
            run = subprocess.run([sys.executable, "bench/inference.py", "--repeat", str(repeat)], cwd=tree,
                                 env={**CALLER_ENV, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], capture_output=True)
    stages = stage_lines(run.stdout)
    if run.returncode or "total" not in stages:
        raise SystemExit(f"{rev}'s bench/inference.py failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return stages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Settings.from_env().model_dir)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cores", type=int, default=1, help="run on this many cores (0 = all)")
    parser.add_argument("--against", metavar="REV", action="append", default=[],
                        help="also time this commit's own bench, same cores, same run (repeatable)")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    if args.cores:
        cores = cores[:args.cores]
        os.sched_setaffinity(0, cores)  # before TensorFlow and OpenCV start their pools
    settings = Settings.from_env()
    runtime.configure("auto", len(cores), onednn=runtime.onednn_pays(settings.tta, args.model))  # as a worker child
    from cutout.segmentation.segmenter import Segmenter

    first, second = artefact.load_bundle(args.model, precision=settings.inference_precision,
                                          engine=settings.inference_engine)
    seg = Segmenter(first, second, tta=settings.tta)  # as a worker runs it (CUTOUT_TTA overrides)
    rgba, _ = synthetic.studio_shot(7)
    # Written by libpng (OpenCV), as a studio's software writes its PNGs, not by the worker's own
    # encoder, whose files decode differently fast: the same input for every commit compared.
    png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))[1].tobytes()

    stages = {"decode": [], "first_pass": [], "second_pass": [], "refine_edges": [], "confidence": [],
              "encode_outputs": [], "total": []}
    for i in range(args.repeat + 1):
        t0 = time.perf_counter()
        rgb = imageio.decode_png(png, 40_000_000)
        t1 = time.perf_counter()
        result = seg.segment(rgb)
        t2 = time.perf_counter()
        imageio.encode_png(result.first_mask)
        imageio.encode_png(result.mask)
        imageio.encode_png(imageio.rgba_cutout(rgb, result.mask))
        imageio.encode_jpeg(imageio.overlay(rgb, result.mask))
        t3 = time.perf_counter()
        if i == 0:
            continue  # the first call traces and compiles the predict function
        stages["decode"].append(t1 - t0)
        stages["first_pass"].append(result.timings["first_pass_s"])
        stages["second_pass"].append(result.timings.get("second_pass_s", 0.0))
        stages["refine_edges"].append(result.timings.get("refine_s", 0.0))
        stages["confidence"].append(result.timings.get("confidence_s", 0.0))
        stages["encode_outputs"].append(t3 - t2)
        stages["total"].append(t3 - t0)

    # Network time alone, on the batch a shot runs (two images with flip TTA: oneDNN's cost
    # per call makes one image a different measurement), to set against the FLOP count.
    batch = 2 if seg.tta else 1
    x1 = np.zeros((batch, *first.input_size, 3), np.float32)
    net1 = statistics.median(_timed(lambda: first.predict(x1)) for _ in range(args.repeat))
    flops = batch * conv_flops(first.keras_model)
    net2 = 0.0
    if second:
        x2 = np.zeros((batch, *second.input_size, 3), np.float32)
        net2 = statistics.median(_timed(lambda: second.predict(x2)) for _ in range(args.repeat))
        flops += batch * conv_flops(second.keras_model)
    gemm = gemm_gflops()

    print(f"model {seg.version}  inputs {first.input_size}{' + ' + str(second.input_size) if second else ''}")
    print(f"on {len(cores)} core(s) of {runtime.cpu_info()['model']}; networks in {seg.precision} on {seg.final.engine}, "
          f"oneDNN {'on' if runtime.onednn_enabled() else 'off'}")
    print(f"shot 1152x1728, median of {args.repeat} runs after one warm-up:")
    for name, values in stages.items():
        print(f"  {name:<15} {statistics.median(values) * 1000:8.1f} ms")
    passes = statistics.median(stages["first_pass"]) + statistics.median(stages["second_pass"])
    print(f"  of the passes, the networks {(net1 + net2) * 1000:.1f} ms and the work around them "
          f"{(passes - net1 - net2) * 1000:.1f} ms (fitting, upsampling, the second pass's focus)")
    print(f"  all but the networks {(statistics.median(stages['total']) - net1 - net2) * 1000:8.1f} ms")
    achieved = flops / (net1 + net2) / 1e9
    print(f"networks alone   {(net1 + net2) * 1000:8.1f} ms for {flops / 1e9:.2f} GFLOP ({batch} image(s) a pass) "
          f"-> {achieved:.1f} GFLOP/s")
    print(f"float32 GEMM     {gemm:8.1f} GFLOP/s (numpy 2048x2048, same run)")
    print(f"model / GEMM     {achieved / gemm:8.2f}")
    total = statistics.median(stages["total"]) * 1000
    for rev in args.against:
        before = baseline_stages(rev, args.repeat)
        print(f"against {rev}'s own bench (same cores, same run), ms:")
        for name, values in stages.items():
            if name in before:
                now = statistics.median(values) * 1000
                print(f"  {name:<15} {now:8.1f} {before[name]:8.1f}  {now / before[name] if before[name] else 0:5.2f}x")
        print(f"{rev} total {before['total']:8.1f} ms (its own bench, same cores, same run): "
              f"this / {rev} {total / before['total']:.2f}")


if __name__ == "__main__":
    main()
