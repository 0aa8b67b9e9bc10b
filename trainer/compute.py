"""What a training step computes in, measured on this machine: bfloat16 or float32, XLA or
eager. CPUs differ between machines, so nothing is assumed."""

from __future__ import annotations

import logging
import math
import time

import numpy as np

log = logging.getLogger(__name__)


def step_seconds(policy: str, cfg, jit_compile: bool, steps: int = 4) -> float:
    """Mean seconds of a training step of cfg's network (arch, input_size, depth, base_filters,
    batch_size) in `policy`, after one step that builds and compiles it."""
    import keras

    from cutout.segmentation.networks import build
    from trainer.losses import BceDiceLoss

    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build(cfg.arch, cfg.input_size, cfg.depth, cfg.base_filters)
        model.compile(optimizer=keras.optimizers.RMSprop(3e-4), loss=BceDiceLoss(), jit_compile=jit_compile)
        x = np.random.default_rng(0).normal(size=(cfg.batch_size, *cfg.input_size, 3)).astype(np.float32)
        y = (x[..., :1] > 0).astype(np.float32)
        model.train_on_batch(x, y)  # compiles
        started = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        return (time.perf_counter() - started) / steps
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _compute_name(policy: str, jit_compile: bool) -> str:
    return f"{policy}+{'xla' if jit_compile else 'eager'}"


def choose_compute(cfg, device: str) -> tuple[str, bool, dict]:
    """(precision policy, XLA or not) for training, and what the choice was based on.

    Neither is assumed: CPUs differ from one machine to the next. XLA made the step 1.5x
    faster on the AVX-512 EPYCs, yet on a Xeon with AMX the eager step (oneDNN) was faster
    than XLA's, and in bfloat16 faster still (0.40 s against XLA float32's 0.59 at 288x192).
    So what is not given is measured here, now, with a few steps of the real model: "auto"
    precision follows runtime.measured_bfloat16 (bfloat16 only where native and clearly
    faster), each precision timed at its faster compilation; XLA or eager (None) is then
    whichever was faster in the chosen precision. A combination this runtime cannot compile
    is left out (why["failed"] says why), never the end of the training."""
    from cutout.segmentation.runtime import cpu_info, measured_bfloat16

    compiles = [True, False] if cfg.jit_compile is None else [cfg.jit_compile]
    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}

    def fastest(policy: str) -> float:
        for jit in compiles:
            name = _compute_name(policy, jit)
            try:
                seconds[name] = round(step_seconds(policy, cfg, jit), 4)
            except Exception as exc:  # noqa: BLE001 - what this runtime cannot run is not a choice
                # XLA refused DeepLab's bfloat16 step ("floating point types of different
                # precisions") on an EPYC with AVX-512 BF16: the other combinations still run.
                failed[name] = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
                log.warning("training cannot compute in %s here: %s", name, failed[name])
        return min((seconds[_compute_name(policy, jit)] for jit in compiles if _compute_name(policy, jit) in seconds),
                   default=math.inf)

    if cfg.precision != "auto":
        precision, why = cfg.precision, {"cpu": cpu_info(), "chosen_by": "--precision"}
    else:
        bfloat16, why = measured_bfloat16(fastest, device)
        precision = "mixed_bfloat16" if bfloat16 else "float32"
    if len(compiles) > 1:
        if not {_compute_name(precision, compiles[0])} & (seconds.keys() | failed.keys()):
            fastest(precision)  # bfloat16 was not in question, so nothing was tried yet
        why["chosen_by"] += "; XLA or eager: measured"
    jit_compile = min(compiles, key=lambda jit: seconds.get(_compute_name(precision, jit), math.inf))
    if failed:
        why["failed"] = failed
    if seconds:
        why["seconds"] = seconds
        log.info("training computes in %s (%s; seconds a step: %s)", _compute_name(precision, jit_compile),
                 why["chosen_by"], seconds)
    return precision, jit_compile, why
