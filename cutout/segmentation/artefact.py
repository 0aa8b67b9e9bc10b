"""One stage's file format (Keras weights plus its ``model.json``), saving it and loading it
(cutout.bundle says what a stage and a bundle are and what their versions are called; how
fast a precision runs here is cutout.segmentation.runtime's to measure).

    <dir>/model.json          architecture, input size, fit, mean/std, tuned threshold,
                              training data summary and evaluation figures
    <dir>/model.weights.h5    Keras weights, without optimizer state (float32, or float16 to
                              ship at half size: `cutout train --weights-dtype`)
    <dir>/model.int8.*        optional: the same network quantized for OpenVINO (`cutout quantize`)

The architecture is rebuilt from model.json, so the same weights can run at another input
size (the U-Net is fully convolutional).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cutout.config import INFERENCE_PRECISIONS, ConfigError
from cutout.bundle import META, WEIGHTS, check_member, int8_network, members, stage_meta, stage_version, stages

FORMAT = 1
# Keys earlier stages wrote, with the values this code still runs them with: a second stage
# always focuses on the garment's box, nothing below it; one output, the garment.
RETIRED = {"focus": ("crop", "frame", None), "focus_below": (None, 0, 0.0), "outputs": (["garment"], None)}


@dataclass
class ModelMeta:
    name: str
    stage: str  # "first" or "second"
    depth: int
    base_filters: int
    input_size: tuple[int, int]  # (height, width)
    fit: str
    mean: list[float]
    std: list[float]
    threshold: float
    dilate_fraction: float | None = None  # second pass: how the first mask was dilated in training
    fill: list[float] | None = None  # second pass: the colour the background was blanked to
    training: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    # Tuned on validation for the bundle whose last stage this is (cutout calibrate):
    refine: dict | None = None  # guided-filter edge refinement {"radius", "eps"}
    calibration: dict | None = None  # confidence signals -> predicted Dice {"score", "x", "y"}
    release: dict | None = None  # the release rule {"min_predicted_dice", ...}
    tta: bool = False  # run with flip test-time augmentation (as calibrated) unless CUTOUT_TTA says otherwise
    arch: str = "unet"  # cutout.segmentation.networks.ARCHS

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["input_size"] = list(self.input_size)
        return {"format": FORMAT, **d}

    @classmethod
    def from_json(cls, d: dict) -> "ModelMeta":
        if d.get("format") != FORMAT:
            raise ValueError(f"unknown model format {d.get('format')!r}")
        if d.get("stage") == "second" and d.get("focus", "crop") != "crop":
            raise ValueError(f"a second stage that focuses on the whole frame ({d['focus']!r}) is no longer run: retrain it")
        for key, supported in RETIRED.items():
            if key in d and d[key] not in supported:
                raise ValueError(f"model.json says {key}={d[key]!r}, which this cutout no longer runs: retrain the stage")
        d = {k: v for k, v in d.items() if k != "format" and k not in RETIRED}
        d["input_size"] = tuple(d["input_size"])
        return cls(**d)


def read_meta(directory: Path) -> ModelMeta:
    return ModelMeta.from_json(stage_meta(directory))


def write_meta(directory: Path, meta: ModelMeta) -> None:
    (Path(directory) / META).write_text(json.dumps(meta.to_json(), indent=2) + "\n")


WEIGHTS_DTYPES = ("float32", "float16")


def save(model, directory: Path, meta: ModelMeta, weights_dtype: str = "float32") -> str:
    """Write weights and metadata; returns the model's version string.

    weights_dtype "float16" stores the weights at half size (see _store_half); the network is
    still built, and computes, in float32 or bfloat16 as before."""
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"weights_dtype must be one of {', '.join(WEIGHTS_DTYPES)}, not {weights_dtype!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if getattr(model, "optimizer", None) is not None:
        # Keras writes a compiled model's optimizer state too (doubling the file), and
        # clone_model keeps the compile state: rebuild the bare architecture instead.
        from cutout.segmentation.networks import build

        bare = build(meta.arch, meta.input_size, meta.depth, meta.base_filters, name=meta.name)
        bare.set_weights(model.get_weights())
        model = bare
    model.save_weights(directory / WEIGHTS)
    if weights_dtype == "float16":
        _store_half(directory / WEIGHTS)
    write_meta(directory, meta)
    return stage_version(directory)


def _store_half(path: Path) -> None:
    """Rewrite a Keras weights file with its float32 arrays as float16: half the bytes to ship,
    download and hash. Keras casts them back into the float32 variables on load. float16 keeps
    11 significant bits, more than the bfloat16 the workers compute in on CPUs that have it (8),
    so storing in it costs less than running in bfloat16 already does. A fresh file is written
    because HDF5 does not give back the space of replaced datasets."""
    import h5py

    def copy(source, target) -> None:
        target.attrs.update(source.attrs)
        for key, item in source.items():
            if isinstance(item, h5py.Group):
                copy(item, target.create_group(key))
                continue
            data = item[()]
            target.create_dataset(key, data=data.astype(np.float16) if data.dtype == np.float32 else data)
            target[key].attrs.update(item.attrs)

    half = path.with_name(path.name + ".half")
    with h5py.File(path, "r") as source, h5py.File(half, "w") as target:
        copy(source, target)
    half.replace(path)


@dataclass
class LoadedModel:
    meta: ModelMeta
    version: str
    keras_model: object
    input_size: tuple[int, int]
    precision: str = "float32"  # what the network computes in: float32, bfloat16 or int8 (weights stay float32)
    network: object = None  # the OpenVINO network, when that runs it (cutout.segmentation.engine)
    members: list = field(default_factory=list)  # a bag's other members (LoadedModel), see cutout.bundle

    @property
    def engine(self) -> str:
        """What runs the network: tensorflow or openvino."""
        return "openvino" if self.network is not None else "tensorflow"

    def _own(self, batch):
        if self.network is not None:
            return self.network(batch)
        # predict_on_batch runs a compiled tf.function: about 1.8x faster than eager calls here.
        return self.keras_model.predict_on_batch(batch)[..., 0]

    def predict_each(self, batch) -> list:
        """Each member's garment probabilities (N, H, W), this stage's own first (a plain
        stage's alone)."""
        return [self._own(batch), *(m._own(batch) for m in self.members)]

    def predict(self, batch):
        """Garment probabilities (N, H, W) for a normalised float32 batch (N, H, W, 3): a bag's
        is the mean of its members'."""
        return mean_of(self.predict_each(batch))


def mean_of(maps: list) -> np.ndarray:
    """The maps' mean; one map is its own mean, returned as it is (no copy on a plain stage)."""
    return maps[0] if len(maps) == 1 else np.mean(maps, axis=0, dtype=np.float32)


def _build(meta: ModelMeta, size: tuple[int, int], weights: Path, bfloat16: bool):
    import keras

    from cutout.segmentation.networks import build

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if bfloat16 else "float32")
    try:
        model = build(meta.arch, size, depth=meta.depth, base_filters=meta.base_filters, name=meta.name)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.load_weights(weights)
    return model


def load(directory: Path, input_size: tuple[int, int] | None = None, precision: str = "float32",
         engine: str = "auto") -> LoadedModel:
    """One stage, computing in float32, in bfloat16, in int8 (its quantized network, on
    OpenVINO), or ("auto") in what measured fastest here at the thread settings already in
    force: bfloat16 where this CPU has it natively and it beat float32
    (runtime.measured_bfloat16), then int8 where the stage was quantized and it beat that
    (runtime.measured_int8); run by TensorFlow or OpenVINO (engine.choose). Weights stay
    float32 either way."""
    import tensorflow as tf

    from cutout.segmentation import engine as engines
    from cutout.segmentation.runtime import configured_threads, measured_bfloat16, measured_int8, predict_seconds

    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"precision must be one of {INFERENCE_PRECISIONS}, not {precision!r}")
    directory = Path(directory)
    meta = read_meta(directory)
    size = tuple(input_size or meta.input_size)
    weights = directory / WEIGHTS
    device = "gpu" if tf.config.get_visible_devices("GPU") else "cpu"
    on_openvino = engines.choose(engine, device) == "openvino"
    # Only int8 and auto look for a quantization (it hashes the weights to know it is theirs).
    quantized = int8_network(directory, size) if on_openvino and precision in ("int8", "auto") else None
    int8_ready = quantized is not None and all(int8_network(m, size) for m in members(directory))
    if precision == "int8" and not int8_ready:
        where = "" if on_openvino else " (int8 runs on OpenVINO, not TensorFlow)"
        raise ConfigError(f"CUTOUT_INFERENCE_PRECISION=int8 but {directory} has no int8 network from its weights "
                          f"at {size[0]}x{size[1]}{where}: run `cutout quantize` on the bundle")
    if on_openvino:
        # OpenVINO takes the float32 graph and computes in bfloat16 itself when asked to.
        model = _build(meta, size, weights, False)
        converted = engines.convert(model, size)
    candidates = {}

    def candidate(policy):
        """The network computing in `policy` (Keras's name for it, or int8), made once."""
        if policy not in candidates:
            if policy == "int8":
                candidates[policy] = engines.OpenVinoNetwork(engines.read(quantized), size, "int8", configured_threads())
            elif on_openvino:
                candidates[policy] = engines.OpenVinoNetwork(
                    converted, size, "bfloat16" if policy == "mixed_bfloat16" else "float32", configured_threads())
            else:
                candidates[policy] = _build(meta, size, weights, policy == "mixed_bfloat16")
        return candidates[policy]

    def seconds_of(policy):
        network = candidate(policy)
        return predict_seconds(network if on_openvino else network.predict_on_batch, size)

    if precision == "auto":
        faster, _ = measured_bfloat16(seconds_of, "cpu" if on_openvino else device)
        precision = "bfloat16" if faster else "float32"
        if int8_ready and measured_int8(seconds_of, "mixed_bfloat16" if faster else "float32")[0]:
            precision = "int8"
    chosen = candidate({"bfloat16": "mixed_bfloat16"}.get(precision, precision))
    # A bag's members run as the stage does (the choice of precision is the stage's, timed once).
    bagged = []
    for member in members(directory):
        check_member(directory, member)
        bagged.append(load(member, input_size, precision, engine))
    if on_openvino:
        # What the plugin computes in, as it says: float32 where the CPU lacks native bfloat16.
        return LoadedModel(meta, stage_version(directory), model, size, chosen.precision, chosen, bagged)
    return LoadedModel(meta, stage_version(directory), chosen, size, precision, members=bagged)


def load_bundle(path: Path, input_size: tuple[int, int] | None = None, second_pass: bool | None = None,
                precision: str = "float32", engine: str = "auto") -> tuple[LoadedModel, LoadedModel | None]:
    """(first, second or None) loaded from a bundle. second_pass: None = use it if the bundle
    has one, False = never, True = required. precision and engine: as for load."""
    first_dir, second_dir = stages(path)
    if second_pass and second_dir is None:
        raise FileNotFoundError(f"CUTOUT_SECOND_PASS is on but {path} has no second/ model")
    first = load(first_dir, input_size, precision, engine)
    second = (load(second_dir, input_size, precision, engine)
              if second_dir is not None and second_pass is not False else None)
    return first, second
