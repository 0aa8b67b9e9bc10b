"""Training precision and XLA are chosen at run time from this machine, never assumed."""

import os

import pytest

from cutout.segmentation import runtime
from trainer import compute
from trainer.compute import choose_compute
from trainer.training import TrainConfig


def fake_cpu(native):
    return lambda: {"model": "Test CPU", "cores": 2, "avx2": True, "avx512f": native, "native_bf16": native}


def fake_steps(monkeypatch, seconds: dict):
    """step_seconds answers from `seconds` ({"policy+xla|eager": s}) and records what was probed."""
    probed = []

    def step(policy, cfg, jit_compile):
        name = compute._compute_name(policy, jit_compile)
        probed.append(name)
        return seconds[name]

    monkeypatch.setattr(compute, "step_seconds", step)
    return probed


def test_given_precision_and_xla_measure_nothing(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(False))
    monkeypatch.setattr(compute, "step_seconds", lambda *a: pytest.fail("nothing to choose"))
    precision, xla, why = choose_compute(TrainConfig(data=None, out=None, precision="mixed_bfloat16", jit_compile=False), "cpu")
    assert (precision, xla) == ("mixed_bfloat16", False) and why["cpu"]["model"] == "Test CPU"


def test_without_native_bfloat16_only_xla_against_eager_in_float32_is_measured(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(False))
    probed = fake_steps(monkeypatch, {"float32+xla": 1.0, "float32+eager": 1.5})
    precision, xla, why = choose_compute(TrainConfig(data=None, out=None), "cpu")
    assert (precision, xla) == ("float32", True)
    assert sorted(probed) == ["float32+eager", "float32+xla"], "bfloat16 is never tried where it is emulated"


@pytest.mark.parametrize("seconds, expected", [
    # bfloat16 clearly faster, best eagerly (the AMX Xeon's case)
    ({"float32+xla": 0.59, "float32+eager": 0.46, "mixed_bfloat16+xla": 0.63, "mixed_bfloat16+eager": 0.40},
     ("mixed_bfloat16", False)),
    # bfloat16 faster, but not by the margin: float32 at its own fastest
    ({"float32+xla": 0.50, "float32+eager": 0.70, "mixed_bfloat16+xla": 0.47, "mixed_bfloat16+eager": 0.80},
     ("float32", True)),
    # bfloat16 slower everywhere (the AVX-512 EPYCs' case)
    ({"float32+xla": 0.48, "float32+eager": 0.72, "mixed_bfloat16+xla": 0.51, "mixed_bfloat16+eager": 0.90},
     ("float32", True)),
])
def test_with_native_bfloat16_the_fastest_measured_combination_wins(monkeypatch, seconds, expected):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(True))
    fake_steps(monkeypatch, seconds)
    precision, xla, why = choose_compute(TrainConfig(data=None, out=None), "cpu")
    assert (precision, xla) == expected and why["seconds"] == seconds


def test_a_combination_that_does_not_compile_is_left_out(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(True))
    seconds = {"float32+xla": 2.8, "float32+eager": 2.3, "mixed_bfloat16+eager": 1.1}

    def step(policy, cfg, jit_compile):
        name = compute._compute_name(policy, jit_compile)
        if name not in seconds:
            raise RuntimeError("Seen floating point types of different precisions in %SelectV2\nmore")
        return seconds[name]

    monkeypatch.setattr(compute, "step_seconds", step)
    precision, xla, why = choose_compute(TrainConfig(data=None, out=None, arch="deeplab"), "cpu")
    assert (precision, xla) == ("mixed_bfloat16", False) and why["seconds"] == seconds
    assert why["failed"] == {"mixed_bfloat16+xla": "RuntimeError: Seen floating point types of different precisions "
                                                   "in %SelectV2"}


def test_a_combination_that_failed_is_not_tried_again(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(True))
    probed = []

    def step(policy, cfg, jit_compile):
        probed.append(compute._compute_name(policy, jit_compile))
        if jit_compile:
            raise RuntimeError("XLA cannot compile this")
        return 1.0 if policy == "float32" else 2.0

    monkeypatch.setattr(compute, "step_seconds", step)
    assert choose_compute(TrainConfig(data=None, out=None), "cpu")[:2] == ("float32", False)
    assert sorted(probed) == ["float32+eager", "float32+xla", "mixed_bfloat16+eager", "mixed_bfloat16+xla"], \
        "each combination is probed once"


def test_a_given_xla_setting_is_kept_while_precision_is_measured(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(True))
    probed = fake_steps(monkeypatch, {"float32+xla": 1.0, "mixed_bfloat16+xla": 0.5})
    assert choose_compute(TrainConfig(data=None, out=None, jit_compile=True), "cpu")[:2] == ("mixed_bfloat16", True)
    assert sorted(probed) == ["float32+xla", "mixed_bfloat16+xla"]


def test_this_machine_is_described():
    info = runtime.cpu_info()
    flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":")[1].split())
    assert info["model"] and info["cores"] == os.cpu_count()
    assert info["native_bf16"] == bool(flags & {"avx512_bf16", "amx_bf16"}), "read off the CPU's own flags"


def _onednn_in_a_fresh_process(given: str | None, onednn: bool) -> tuple[str | None, str]:
    """(TF_ENABLE_ONEDNN_OPTS, whether oneDNN runs) in a new process: TensorFlow reads the
    variable once, when it loads."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    code = ("import os; from cutout.segmentation import runtime; "
            f"runtime.configure('cpu', 1, onednn={onednn}); "
            "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), runtime.onednn_enabled())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    value, enabled = out.stdout.split()
    return (None if value == "None" else value), enabled


@pytest.mark.parametrize("given, expected", [(None, ("1", "True")), ("0", ("0", "False"))])
def test_onednn_kernels_are_asked_for_unless_the_operator_says_otherwise(given, expected):
    assert _onednn_in_a_fresh_process(given, onednn=True) == expected


def test_without_the_callers_say_onednn_is_tensorflows_own_choice():
    value, _ = _onednn_in_a_fresh_process(None, onednn=False)
    assert value is None, "the variable is left unset: TensorFlow decides by the CPU"


def test_onednn_is_asked_for_only_where_the_networks_run_flip_tta(tmp_path):
    """One image a pass makes oneDNN slower: off with CUTOUT_TTA=0, and with it unset for a
    bundle calibrated without TTA (its last stage decides, as in the segmenter)."""
    import json

    def bundle(tta_first, tta_second):
        path = tmp_path / f"b{tta_first}{tta_second}"
        for stage, tta in (("first", tta_first), ("second", tta_second)):
            (path / stage).mkdir(parents=True)
            (path / stage / "model.json").write_text(json.dumps({"tta": tta}))
        return path

    assert runtime.onednn_pays(None, bundle(False, True)) is True
    assert runtime.onednn_pays(None, bundle(True, False)) is False
    assert runtime.onednn_pays(True, bundle(False, False)) is True
    assert runtime.onednn_pays(False, bundle(True, True)) is False
    assert runtime.onednn_pays(None, tmp_path / "missing") is True, "loading reports a bad bundle, not this"
    assert runtime.onednn_pays(None) is True


def test_a_failed_probe_leaves_float32_as_the_policy():
    import keras

    with pytest.raises(ValueError, match="divisible"):
        compute.step_seconds("mixed_bfloat16", TrainConfig(data=None, out=None, arch="deeplab", input_size=(36, 20)),
                             jit_compile=False)
    assert keras.mixed_precision.global_policy().name == "float32"
