"""`cutout quantize`: a stage's int8 network is made from the worker path's own inputs, runs
only on the weights and size it was made from, is chosen by measurement, and is not kept when
its masks move."""

import json
import shutil

import numpy as np
import pytest

from cutout import bundle
from cutout.config import ConfigError
from cutout.errors import OperationalError
from cutout.segmentation import artefact, runtime
from tests.helpers import make_tiny_bundle, write_labelled_folder


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """A tiny bundle quantized on synthetic studio views (its random weights cut random masks,
    so any loss against the truth is let through; test_worse_masks_are_not_kept allows none)."""
    from trainer import quantize

    model = make_tiny_bundle(tmp_path_factory.mktemp("model"))
    data = write_labelled_folder(tmp_path_factory.mktemp("views"), 6, views=("Front", "Back"))
    saved, quantize.MAX_LOSS = quantize.MAX_LOSS, 1.0
    try:
        report = quantize.quantize(model, data, calibration_views=4, check_views=3)
    finally:
        quantize.MAX_LOSS = saved
    return model, data, report


def test_every_stage_gains_an_int8_network_made_from_its_weights(quantized):
    model, _, report = quantized
    for stage in ("first", "second"):
        made = json.loads((model / stage / bundle.INT8_META).read_text())
        assert made["weights"] == bundle.weights_digest(model / stage) and made["input_size"] == [96, 64]
        assert made["samples"] == 4, "the four calibration views as the bundle runs them (no flip TTA here)"
        assert made["check"]["views"] == 3 and set(made["check"]["mean_dice_against_truth"]) == {"float32", "int8"}
        assert bundle.int8_network(model / stage, (96, 64)) == model / stage / bundle.INT8
    assert 0 < made["check"]["agreement"]["mean_dice"] <= 1
    assert report["check"] == made["check"] and set(report["milliseconds_per_image"]) == {"first", "second"}


def test_int8_runs_close_to_float32_and_says_so(quantized):
    model = quantized[0]
    x = np.random.default_rng(0).normal(size=(2, 96, 64, 3)).astype(np.float32)
    f32 = artefact.load(model / "first", precision="float32", engine="openvino")
    int8 = artefact.load(model / "first", precision="int8", engine="openvino")
    assert (int8.precision, int8.engine) == ("int8", "openvino")
    assert np.abs(int8.predict(x) - f32.predict(x)).max() < 0.1
    assert not np.array_equal(int8.predict(x), f32.predict(x)), "the int8 graph is what ran"


def test_a_stale_quantization_never_runs(quantized, tmp_path):
    model = shutil.copytree(quantized[0], tmp_path / "model")
    assert bundle.int8_network(model / "first", (128, 96)) is None, "another input size: shapes are fixed"
    make_tiny_bundle(tmp_path / "retrained", seed=1)
    shutil.copy(tmp_path / "retrained" / "first" / bundle.WEIGHTS, model / "first" / bundle.WEIGHTS)
    assert bundle.int8_network(model / "first", (96, 64)) is None, "weights retrained in place"
    with pytest.raises(ConfigError, match="cutout quantize"):
        artefact.load(model / "first", precision="int8", engine="openvino")
    with pytest.raises(ConfigError, match="OpenVINO, not TensorFlow"):
        artefact.load(quantized[0] / "first", precision="int8", engine="tensorflow")


@pytest.mark.parametrize("native, int8_seconds, expected", [
    (False, 0.3, "int8"), (False, 0.95, "float32"),  # int8 must be clearly faster than float32
    (True, 0.3, "int8"), (True, 0.48, "bfloat16")])  # and than bfloat16 where that is native and won
def test_auto_takes_int8_where_it_measures_faster(quantized, monkeypatch, native, int8_seconds, expected):
    monkeypatch.setattr(runtime, "cpu_info", lambda: {"model": "Test CPU", "cores": 2, "avx2": True,
                                                      "avx512f": True, "native_bf16": native})

    def seconds(network, size):
        if network._int8:
            return int8_seconds
        return 0.5 if network._config["INFERENCE_PRECISION_HINT"] == "bf16" else 1.0  # bfloat16 wins over float32

    monkeypatch.setattr(runtime, "predict_seconds", seconds)
    loaded = artefact.load(quantized[0] / "first", precision="auto", engine="openvino")
    assert loaded.network._int8 == (expected == "int8")
    assert loaded.network._config["INFERENCE_PRECISION_HINT"] == ("bf16" if expected == "bfloat16" else "f32")


def test_auto_without_a_quantization_stays_float32(tiny_model, monkeypatch):
    monkeypatch.setattr(runtime, "cpu_info", lambda: {"model": "Test CPU", "cores": 2, "avx2": True,
                                                      "avx512f": True, "native_bf16": False})
    assert artefact.load(tiny_model / "first", precision="auto", engine="openvino").precision == "float32"


def test_worse_masks_are_not_kept(quantized, tmp_path, monkeypatch):
    from trainer import quantize

    model = make_tiny_bundle(tmp_path / "model")
    monkeypatch.setattr(quantize, "MAX_LOSS", -1.0)  # int8 would have to beat float32 by a whole Dice
    with pytest.raises(OperationalError, match="was not kept"):
        quantize.quantize(model, quantized[1], calibration_views=4, check_views=3)
    for stage in ("first", "second"):
        assert not list((model / stage).glob("model.int8.*")), "no quantization left behind"


@pytest.mark.parametrize("loss, kept", [(1.0, True), (-1.0, False)])
def test_a_retrained_candidate_is_quantized_when_the_current_bundle_is(quantized, tmp_path, monkeypatch, loss, kept):
    from trainer import quantize, retrain

    current, data, _ = quantized
    candidate = make_tiny_bundle(tmp_path / "candidate", seed=2)
    monkeypatch.setattr(quantize, "MAX_LOSS", loss)
    monkeypatch.setattr(quantize, "CALIBRATION_VIEWS", 4)
    got = retrain.quantize_like(current, candidate, data)
    assert isinstance(got, dict) == kept and (kept or got.startswith("not quantized"))
    assert (bundle.int8_network(candidate / "second", (96, 64)) is not None) == kept
    assert retrain.quantize_like(candidate if not kept else make_tiny_bundle(tmp_path / "plain"), candidate, data) is None
