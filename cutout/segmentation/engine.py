"""What executes a stage's network at inference: TensorFlow itself, or OpenVINO's CPU runtime.

The networks are Keras models either way (trained, saved and loaded by Keras); OpenVINO only
runs the same graph, converted in memory when the stage loads (about 2 s a stage). On CPUs it
is the faster runtime for these small-channel U-Nets: on one core of a Xeon with AMX
(2026-12-02, commit 711438f) the shipped stages' TTA batches took 23 + 39 ms in bfloat16
against TensorFlow's 58 + 101 ms, and in float32 107 + 199 ms against 124 + 220, with float32
probabilities equal to TensorFlow's to 1e-4 (tests/unit/test_engine.py; masks identical:
docs/benchmarks.md). GPUs stay TensorFlow's.

A stage quantized to int8 (`cutout quantize`, bundle.int8_network) runs as OpenVINO's int8
graph: on one core of an Ice Lake Xeon (AVX-512 VNNI, no bfloat16; 2026-12-07) the shipped
stages' TTA batches took 41 + 71 ms against float32's 151 + 271.

CUTOUT_INFERENCE_ENGINE: auto (OpenVINO where it is installed and the networks run on the
CPU, else TensorFlow), tensorflow, or openvino.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from cutout.config import INFERENCE_ENGINES as ENGINES
from cutout.config import ConfigError

_core = None


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def choose(engine: str, device: str) -> str:
    """The engine to run on: `engine` as configured, `device` the one TensorFlow uses ("cpu" or
    "gpu", runtime.configure's answer)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "openvino" and not openvino_available():
        raise ConfigError("CUTOUT_INFERENCE_ENGINE=openvino but OpenVINO is not installed here: "
                          "pip install 'cutout[worker]'")
    if engine == "auto":
        return "openvino" if device == "cpu" and openvino_available() else "tensorflow"
    return engine


def decline_telemetry() -> None:
    """OpenVINO's model converter reports its use to Intel unless the user's consent file
    (~/intel/openvino_telemetry) says no: a worker fleet has no one to ask, so it says no,
    as `opt_in_out --opt_out` would. A file already there (an operator's own answer) is kept."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package, nothing is sent
        return
    checker = OptInChecker()
    if checker.consent_file_base_dir() is not None and not Path(checker.consent_file()).exists():
        checker.update_result(ConsentCheckResult.DECLINED)


def _nearest_resize_layer():
    import keras

    class NearestResize(keras.layers.Layer):
        """UpSampling2D's nearest-neighbour upsampling as one image resize: the converter makes
        Keras's own (a repeat along each axis) into Tile and Transpose ops that the CPU plugin
        runs in reference code, and a resize into one Interpolate with a vectorised kernel. At an
        integer factor both copy each pixel into the same block, so the outputs are identical."""

        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = tuple(factor)

        def call(self, x):
            size = (x.shape[1] * self.factor[0], x.shape[2] * self.factor[1])
            return keras.ops.image.resize(x, size, interpolation="nearest")

    return NearestResize


def for_conversion(keras_model):
    """The same network (its layers and weights shared, not copied) with each nearest-neighbour
    UpSampling2D as a NearestResize: OpenVINO's plugin ran Keras's repeat (Tile and Transpose)
    in reference code; as one resize, on one core of a Xeon with AMX (2026-12-02, commit
    711438f), the shipped stages' TTA batches took 23 + 39 ms in bfloat16 instead of 27 + 45."""
    import keras

    nearest = _nearest_resize_layer()

    def swap(layer):
        if isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "nearest":
            return nearest(layer.size, name=layer.name, dtype=layer.dtype_policy)
        return layer

    return keras.models.clone_model(keras_model, clone_function=swap)


def convert(keras_model, size: tuple[int, int]):
    """The Keras network as an OpenVINO model of any batch size at `size` (height, width)."""
    import warnings

    import openvino as ov

    decline_telemetry()

    with warnings.catch_warnings():
        # Keras warns that a positional input does not match its named one; the graph is the same.
        warnings.simplefilter("ignore", UserWarning)
        return ov.convert_model(for_conversion(keras_model), input=[(-1, *size, 3)])


def _the_core():
    """One OpenVINO runtime per process, made when first needed."""
    import openvino as ov

    global _core
    if _core is None:
        _core = ov.Core()
    return _core


def read(path: Path):
    """A network OpenVINO saved (the int8 IR `cutout quantize` writes), to run like a converted one."""
    return _the_core().read_model(str(path))


class OpenVinoNetwork:
    """A Keras stage converted to OpenVINO: call it with a normalised float32 batch (N, H, W, 3)
    for the probabilities (N, H, W) of its first output. Compiled once per batch size seen
    (one image, or two with flip TTA): a static shape lets the CPU plugin pick its kernels."""

    def __init__(self, converted, size: tuple[int, int], precision: str, threads: int = 0):
        self._model = converted
        self._size = size
        self._int8 = precision == "int8"
        self._config = {
            # An int8 graph's quantized convolutions run in int8 whatever the hint; the rest in float32.
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bfloat16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # Worker children share a machine: where their threads run is the OS's and the
            # process's affinity's business, not a choice each child's plugin makes alone.
            "ENABLE_CPU_PINNING": False,
            **({"INFERENCE_NUM_THREADS": threads} if threads else {}),
        }
        self._requests: dict[int, object] = {}
        # An infer request holds one call's input and output: a process that segments from
        # several threads (a thread pool, an embedding program) takes turns.
        self._lock = threading.Lock()

    def _request(self, n: int):
        if n not in self._requests:
            model = self._model.clone()
            model.reshape([n, *self._size, 3])
            self._requests[n] = _the_core().compile_model(model, "CPU", self._config).create_infer_request()
        return self._requests[n]

    @property
    def precision(self) -> str:
        """What the compiled network computes in, as the CPU plugin reports it (it falls back to
        float32 where the CPU has no native bfloat16, whatever was asked); int8 for a quantized graph."""
        import openvino as ov

        if self._int8:
            return "int8"
        hint = self._request(1).get_compiled_model().get_property("INFERENCE_PRECISION_HINT")
        return "bfloat16" if hint == ov.Type.bf16 else "float32"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, np.float32)
        with self._lock:
            request = self._request(batch.shape[0])
            request.infer({0: batch})
            # The output tensor is the request's own buffer, overwritten by the next call.
            return np.array(request.get_output_tensor(0).data[..., 0])
