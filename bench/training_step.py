"""Seconds a training step of the first-stage network takes here, per Keras backend and precision.

Keras 3 runs the same model on TensorFlow, JAX or PyTorch; which one trains fastest depends on
the CPU, so it is measured, not assumed. Run once per backend, in one session, and compare the
ratios:

    python bench/training_step.py                        # the project's TensorFlow
    KERAS_BACKEND=jax /path/to/jax-venv/bin/python bench/training_step.py

Each line: backend, precision, compilation, seconds a step (mean of --steps after a warm-up).
The timing is `cutout train`'s own probe (trainer.compute.step_seconds: the project's network and
loss), so the figure is the step training would take, less its input pipeline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


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
    from trainer.compute import step_seconds

    size = tuple(int(v) for v in args.size.split("x"))
    cfg = SimpleNamespace(arch=args.arch, input_size=size, depth=args.depth, base_filters=args.base_filters,
                          batch_size=args.batch_size)
    backend = keras.backend.backend()
    # TensorFlow and JAX compile with XLA or not; PyTorch's eager step is its default.
    compiles = {"tensorflow": [True, False], "jax": [True], "torch": [False]}.get(backend, [False])
    print(f"cpu: {cpu_info()}; {args.arch} {args.size} depth {args.depth} base {args.base_filters}, batch {args.batch_size}")
    for policy in args.precisions.split(","):
        for jit in compiles:
            s = step_seconds(policy, cfg, jit, args.steps)
            print(f"{backend:<10} {policy:<15} {'xla' if jit else 'eager':<5} {s:.3f} s a step", flush=True)


if __name__ == "__main__":
    main()
