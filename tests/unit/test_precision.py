"""Training precision is chosen at run time from this machine's CPU, never assumed."""

import pytest

from cutout.segmentation import runtime
from trainer import training
from trainer.training import TrainConfig, choose_precision


def fake_cpu(native):
    return lambda: {"model": "Test CPU", "cores": 2, "avx2": True, "avx512f": native, "native_bf16": native}


def test_without_native_bfloat16_auto_is_float32_and_measures_nothing(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(False))
    monkeypatch.setattr(training, "_step_seconds", lambda *a: pytest.fail("no probe on such a CPU"))
    precision, why = choose_precision(TrainConfig(data=None, out=None), "cpu")
    assert precision == "float32" and why["cpu"]["model"] == "Test CPU"


@pytest.mark.parametrize("bf16_seconds, expected", [(0.5, "mixed_bfloat16"), (0.95, "float32"), (2.0, "float32")])
def test_with_native_bfloat16_the_faster_measured_policy_wins(monkeypatch, bf16_seconds, expected):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(True))
    monkeypatch.setattr(training, "_step_seconds",
                        lambda policy, cfg: bf16_seconds if policy == "mixed_bfloat16" else 1.0)
    precision, why = choose_precision(TrainConfig(data=None, out=None), "cpu")
    assert precision == expected and why["seconds"] == {"float32": 1.0, "mixed_bfloat16": bf16_seconds}


def test_an_explicit_precision_is_kept(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_info", fake_cpu(False))
    assert choose_precision(TrainConfig(data=None, out=None, precision="mixed_bfloat16"), "cpu")[0] == "mixed_bfloat16"


def test_this_machine_is_described():
    info = runtime.cpu_info()
    assert info["model"] and info["cores"] >= 1 and isinstance(info["native_bf16"], bool)
