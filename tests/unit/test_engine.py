"""OpenVINO runs the same networks as TensorFlow: same probabilities in float32, close ones in
bfloat16 where the CPU has it, the engine and precision said as they are."""

import numpy as np
import pytest

from cutout.config import ConfigError, Settings
from cutout.metrics import dice
from cutout.segmentation import artefact, engine, runtime


@pytest.mark.parametrize("asked, device, installed, expected", [
    ("auto", "cpu", True, "openvino"), ("auto", "gpu", True, "tensorflow"), ("auto", "cpu", False, "tensorflow"),
    ("tensorflow", "cpu", True, "tensorflow"), ("openvino", "cpu", True, "openvino")])
def test_auto_runs_openvino_on_the_cpu_where_it_is_installed(monkeypatch, asked, device, installed, expected):
    monkeypatch.setattr(engine, "openvino_available", lambda: installed)
    assert engine.choose(asked, device) == expected


def test_asking_for_openvino_where_it_is_missing_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(engine, "openvino_available", lambda: False)
    with pytest.raises(ConfigError, match=r"cutout\[worker\]"):
        engine.choose("openvino", "cpu")
    with pytest.raises(ValueError, match="engine"):
        engine.choose("onnx", "cpu")


def test_openvino_predicts_what_tensorflow_predicts_in_float32(tiny_model):
    rng = np.random.default_rng(0)
    tf_stage = artefact.load(tiny_model / "first", input_size=(96, 64), engine="tensorflow")
    ov_stage = artefact.load(tiny_model / "first", input_size=(96, 64), engine="openvino")
    assert (ov_stage.engine, ov_stage.precision, tf_stage.engine) == ("openvino", "float32", "tensorflow")
    for n in (1, 2, 1):  # one image, flip TTA's two, and back: each batch size compiled once
        x = rng.normal(size=(n, 96, 64, 3)).astype(np.float32)
        got = ov_stage.predict(x)
        assert got.shape == (n, 96, 64) and got.dtype == np.float32
        assert np.abs(got - tf_stage.predict(x)).max() < 1e-4
    kept = ov_stage.predict(x)
    ov_stage.predict(rng.normal(size=x.shape).astype(np.float32))
    assert np.array_equal(kept, ov_stage.predict(x)), "a result is the caller's, not the next call's buffer"


def test_upsampling_is_converted_as_one_resize_with_the_same_output(tiny_model):
    """The plugin runs Keras's repeat-based upsampling in reference code: the converter is
    given a resize instead, which must not change a single output."""
    stage = artefact.load(tiny_model / "first", input_size=(96, 64), engine="tensorflow")
    swapped = engine.for_conversion(stage.keras_model)
    x = np.random.default_rng(3).normal(size=(2, 96, 64, 3)).astype(np.float32)
    assert np.array_equal(np.asarray(swapped(x)), np.asarray(stage.keras_model(x)))
    ops = {op.get_type_name() for op in engine.convert(stage.keras_model, (96, 64)).get_ordered_ops()}
    assert "Interpolate" in ops and "Tile" not in ops


def test_threads_sharing_one_openvino_network_each_get_their_own_answer(tiny_model):
    from concurrent.futures import ThreadPoolExecutor

    stage = artefact.load(tiny_model / "first", input_size=(96, 64), engine="openvino")
    batches = [np.random.default_rng(i).normal(size=(1 + i % 2, 96, 64, 3)).astype(np.float32) for i in range(8)]
    alone = [stage.predict(x) for x in batches]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(stage.predict, batches * 4))
    for i, got in enumerate(together):
        assert np.array_equal(got, alone[i % len(batches)])


def test_openvino_bfloat16_is_close_and_said_only_where_the_cpu_has_it(tiny_model):
    x = np.random.default_rng(1).normal(size=(2, 96, 64, 3)).astype(np.float32)
    f32 = artefact.load(tiny_model / "first", input_size=(96, 64), engine="openvino")
    bf16 = artefact.load(tiny_model / "first", input_size=(96, 64), precision="bfloat16", engine="openvino")
    # The plugin computes in bfloat16 where the CPU has it natively, in float32 on AVX2 alone
    # whatever is asked, and on AVX-512 without it (Ice Lake) as it sees fit: said as it is.
    cpu = runtime.cpu_info()
    if cpu["native_bf16"] or not cpu["avx512f"]:
        assert bf16.precision == ("bfloat16" if cpu["native_bf16"] else "float32")
    assert bf16.precision == bf16.network.precision and f32.precision == "float32"
    assert np.abs(bf16.predict(x) - f32.predict(x)).max() < 0.05


@pytest.mark.parametrize("native, bf16_seconds, expected", [(False, 0.1, "float32"), (True, 0.5, "bfloat16"),
                                                            (True, 2.0, "float32")])
def test_auto_precision_on_openvino_is_measured_like_tensorflows(tiny_model, monkeypatch, native, bf16_seconds,
                                                                 expected):
    monkeypatch.setattr(runtime, "cpu_info", lambda: {"model": "Test CPU", "cores": 2, "avx2": True,
                                                      "avx512f": native, "native_bf16": native})
    asked = []

    def seconds(network, size):
        hint = network._config["INFERENCE_PRECISION_HINT"]
        asked.append(hint)
        return bf16_seconds if hint == "bf16" else 1.0

    monkeypatch.setattr(runtime, "predict_seconds", seconds)
    loaded = artefact.load(tiny_model / "first", input_size=(96, 64), precision="auto", engine="openvino")
    assert asked == (["f32", "bf16"] if native else []), "no probe without native bfloat16"
    assert loaded.network._config["INFERENCE_PRECISION_HINT"] == ("bf16" if expected == "bfloat16" else "f32")


def test_a_segmenter_on_openvino_cuts_what_it_cuts_on_tensorflow(tiny_model):
    from cutout.segmentation.segmenter import Segmenter

    rgb = np.random.default_rng(2).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    rgb[60:240, 50:150] = (200, 40, 40)
    cuts = {}
    for name in ("tensorflow", "openvino"):
        seg = Segmenter.from_settings(Settings(model_dir=tiny_model, inference_precision="float32",
                                               inference_engine=name, tta=True))
        assert seg.final.engine == name
        cuts[name] = seg.segment(rgb)
    assert dice(cuts["tensorflow"].mask, cuts["openvino"].mask) > 0.999
    assert abs(cuts["tensorflow"].confidence - cuts["openvino"].confidence) < 1e-3


def test_the_converter_is_told_not_to_report_to_intel_unless_the_operator_said_yes(tmp_path, monkeypatch):
    """OpenVINO's converter sends usage telemetry unless a consent file says no."""
    monkeypatch.setenv("HOME", str(tmp_path))
    engine.decline_telemetry()
    consent = tmp_path / "intel" / "openvino_telemetry"
    assert consent.read_text() == "0"
    consent.write_text("1")  # an operator's own answer stands
    engine.decline_telemetry()
    assert consent.read_text() == "1"
