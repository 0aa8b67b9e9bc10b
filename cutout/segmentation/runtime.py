"""Per-process set-up: TensorFlow's threads and device before the first op runs, and the
allocator's reuse of a shot's memory.

Called in each worker child (never in the Celery parent: TensorFlow is not fork-safe) and
at the start of training or evaluation.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys
from contextlib import contextmanager
from pathlib import Path

from cutout.config import ConfigError

log = logging.getLogger(__name__)
_done = False
_threads = 0  # what configure set: OpenVINO's networks use as many threads (engine.py)


@contextmanager
def _quiet_native_stderr(quiet: bool = True):
    """TensorFlow's native start-up lines (CUDA probing, absl's "before InitializeLog", cuInit
    on a machine without a GPU) go to file descriptor 2 before any log level applies: hide them
    while TensorFlow starts, unless `quiet` is off (CUTOUT_DEBUG). Python exceptions are unaffected."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# glibc's mallopt parameters, and the values keep_freed_memory sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's maximum: a shot's largest array (an 8 MB float map) stays under it
TRIM_THRESHOLD = 256 << 20  # freed memory a process keeps for its next shot, at most


def keep_freed_memory() -> bool:
    """Let this process reuse the memory of one shot's large arrays for the next.

    glibc serves an allocation of more than 128 KB (at first) from a fresh mmap and gives it
    back to the kernel when it is freed, so every full-frame array a shot makes (the decoded
    photo, each 8 MB probability map, the cutout) faults its pages in again: about 5,000 page
    faults a shot, and the edge refinement took twice as long as its arithmetic. Raising the
    mmap and trim thresholds keeps freed arrays in the heap, where the next shot's arrays of the
    same sizes find them (0 faults a shot once warm), at the price of the memory a process holds
    between shots (a worker child 1.20 GB resident instead of 1.06; TRIM_THRESHOLD at most). A
    no-op (False) without glibc."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return False
    except (AttributeError, ValueError, OSError):  # not a POSIX system that names its C library
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def configure(device: str = "auto", threads: int = 0, onednn: bool = True, quiet: bool = True) -> str:
    """Returns the device actually used: "gpu" or "cpu".

    onednn: run TensorFlow's oneDNN CPU kernels even where TensorFlow would not by itself.
    Its own kernels are built for plain AVX; the oneDNN ones pick the CPU's instructions at
    run time, but TensorFlow turns them on only on CPUs with AVX-512 VNNI/BF16 or AMX (where
    the shipped bundle was trained and calibrated). On one core of an AVX2-only EPYC (Zen 3)
    they made a forward pass of two images (flip TTA's batch) 0.71x (288x192) and 0.67x
    (384x256) as long and a training step 0.7x (eager) to 0.9x (XLA), but a pass of ONE image
    1.1x and 1.6x: with a Keras model's weights in variables, oneDNN reorders them on every
    call, and one image does not pay for that: callers that run the networks ask onednn_pays.
    Probabilities agree to 1e-6. Read once, when TensorFlow loads; an operator's
    TF_ENABLE_ONEDNN_OPTS wins."""
    global _done, _threads
    if not _done:
        keep_freed_memory()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if onednn:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    with _quiet_native_stderr(quiet):
        try:
            import tensorflow as tf
        except ImportError:
            raise ConfigError("TensorFlow is not installed here: segmentation needs pip install 'cutout[worker]' "
                              "(or 'cutout[trainer]')") from None
        if _done:
            return "gpu" if tf.config.get_visible_devices("GPU") else "cpu"
        gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise ConfigError("CUTOUT_DEVICE=gpu but TensorFlow sees no GPU")
    used = "cpu" if device == "cpu" or not gpus else "gpu"
    try:
        if used == "cpu":
            tf.config.set_visible_devices([], "GPU")
        else:
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            # OpenCV's resizes, filters and codecs have their own pool, sized to every core.
            import cv2

            cv2.setNumThreads(threads)
    except RuntimeError as exc:
        # The runtime already started in this process (a test, an embedding program): keep its setup.
        log.warning("TensorFlow already initialised; device and thread settings not applied: %s", exc)
        used = "gpu" if tf.config.get_visible_devices("GPU") else "cpu"
    _done = True
    _threads = threads
    log.info("TensorFlow %s on %s (%s intra-op threads, oneDNN %s)", tf.__version__, used, threads or "default",
             "on" if onednn_enabled() else "off")
    return used


def configured_threads() -> int:
    """The threads configure gave each runtime in this process; 0 = the runtime decides."""
    return _threads


def onednn_pays(tta: bool | None, bundle: Path | None = None) -> bool:
    """configure's onednn for a process that runs a bundle's networks: on, unless they run one
    image a pass, i.e. without flip TTA (CUTOUT_TTA=0, or unset and the bundle calibrated
    without it, as the segmenter decides). A bundle that cannot be read here leaves it on: its
    loading reports the problem."""
    if tta is None and bundle is not None:
        from cutout import bundle as bundles

        try:
            tta = bool(bundles.stage_meta(bundles.last_stage(bundle)).get("tta", False))
        except (OSError, ValueError):
            pass
    return tta is not False


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs its oneDNN kernels (decided when it loaded)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow without the probe: say what was asked for
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"
    return bool(_pywrap_util_port.IsMklEnabled())


def cpu_info() -> dict:
    """This machine's CPU, read at run time (machines differ from one session to the next):
    its model name and whether it computes bfloat16 natively (AVX-512 BF16 or AMX)."""
    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not name:
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux: the name platform gives, no flags (so no bfloat16 assumed)
        pass
    return {"model": name or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "avx2": "avx2" in flags, "avx512f": "avx512f" in flags, "native_bf16": bool(flags & {"avx512_bf16", "amx_bf16"})}


# bfloat16 or int8 must beat float32 by this much: timings on a shared host wander by a few
# per cent, and a coin toss would make processes on one machine compute differently for nothing.
MARGIN = 0.9


def measured_bfloat16(seconds_of, device: str = "cpu") -> tuple[bool, dict]:
    """Whether to compute in bfloat16 here: only on a CPU that does it natively (AVX-512 BF16,
    AMX) *and* when seconds_of(policy), measured here and now for "float32" and
    "mixed_bfloat16", says it is clearly faster (by MARGIN). Emulated bfloat16 (AVX2-only
    CPUs) was 6x slower, and even native support was slower for some layer sizes, so nothing is
    assumed. Returns the decision and what it was based on (for model cards and logs)."""
    cpu = cpu_info()
    if device == "gpu":
        return False, {"cpu": cpu, "chosen_by": "auto: a GPU (bfloat16 not measured there)"}
    if not cpu["native_bf16"]:
        return False, {"cpu": cpu, "chosen_by": "auto: no native bfloat16 on this CPU"}
    seconds = {policy: round(seconds_of(policy), 4) for policy in ("float32", "mixed_bfloat16")}
    faster = seconds["mixed_bfloat16"] < MARGIN * seconds["float32"]
    return faster, {"cpu": cpu, "chosen_by": "auto: measured", "seconds": seconds}


def measured_int8(seconds_of, against: str = "float32") -> tuple[bool, dict]:
    """Whether a quantized stage runs in int8 here: when seconds_of("int8"), measured here and
    now, is clearly faster (by MARGIN) than seconds_of(against), what would run otherwise
    ("float32", or "mixed_bfloat16" where that won). With AMX int8 gained 4 % over bfloat16
    (docs/experiments.md), while on an Ice Lake Xeon (AVX-512 VNNI, no bfloat16) it ran the
    stages 3.1-3.7x faster than float32."""
    seconds = {precision: round(seconds_of(precision), 4) for precision in (against, "int8")}
    faster = seconds["int8"] < MARGIN * seconds[against]
    return faster, {"cpu": cpu_info(), "chosen_by": "auto: measured", "seconds": seconds}


def predict_seconds(predict, size: tuple[int, int], repeat: int = 3) -> float:
    """Seconds one prediction of a batch of one takes here, after a first call that traces or
    compiles: what `measured_bfloat16` compares."""
    import time

    import numpy as np

    x = np.zeros((1, *size, 3), np.float32)
    predict(x)  # traces, or compiles
    started = time.perf_counter()
    for _ in range(repeat):
        predict(x)
    return (time.perf_counter() - started) / repeat
