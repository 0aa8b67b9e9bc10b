"""Seconds a training step of the first-stage network takes here, per Keras backend and precision.

Keras 3 runs the same model on TensorFlow, JAX or PyTorch; which one trains fastest depends on
the CPU, so it is measured, not assumed. Run once per backend, in one session, and compare the
ratios:

    python bench/training_step.py                        # the project's TensorFlow
    KERAS_BACKEND=jax /path/to/jax-venv/bin/python bench/training_step.py

Each line: backend, precision, compilation, seconds a step (median of --steps after a warm-up).
The model and loss are the project's own (cutout.segmentation, trainer.losses), so the figure is
the step `cutout train` would take, less its input pipeline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def step_seconds(arch: str, size, depth: int, base: int, batch: int, policy: str, jit, steps: int) -> float:
    import keras

    from cutout.segmentation.networks import build
    from trainer.losses import BceDiceLoss

    keras.mixed_precision.set_global_policy(policy)
    model = build(arch, size, depth=depth, base_filters=base)
    model.compile(optimizer=keras.optimizers.RMSprop(3e-4), loss=BceDiceLoss(negative_weight=2.0), jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *size, 3)).astype(np.float32)
    y = np.concatenate([(x[..., :1] > 0), (x[..., 1:2] > 1)], axis=-1).astype(np.float32)
    model.train_on_batch(x, y)  # builds and compiles
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - started)
    keras.mixed_precision.set_global_policy("float32")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="unet")
    parser.add_argument("--size", default="288x192")
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    args = parser.parse_args()
    import keras

    from cutout.segmentation.runtime import cpu_info

    size = tuple(int(v) for v in args.size.split("x"))
    backend = keras.backend.backend()
    # TensorFlow and JAX compile with XLA or not; PyTorch's eager step is its default.
    compiles = {"tensorflow": [True, False], "jax": [True], "torch": [False]}.get(backend, [False])
    print(f"cpu: {cpu_info()}; {args.arch} {args.size} depth {args.depth} base {args.base_filters}, batch {args.batch_size}")
    for policy in args.precisions.split(","):
        for jit in compiles:
            s = step_seconds(args.arch, size, args.depth, args.base_filters, args.batch_size, policy, jit, args.steps)
            print(f"{backend:<10} {policy:<15} {'xla' if jit else 'eager':<5} {s:.3f} s a step", flush=True)


if __name__ == "__main__":
    main()
