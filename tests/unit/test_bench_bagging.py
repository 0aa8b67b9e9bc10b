"""bench/bagging.py: bagged stages against flip TTA on the worker's path."""

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import write_labelled_folder

ROOT = Path(__file__).resolve().parents[2]


def test_a_bag_of_a_stage_with_itself_cuts_as_the_stage_and_agrees_with_itself(tmp_path, tiny_model):
    data = write_labelled_folder(tmp_path / "val", 2, views=("Front", "Back"))
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "bagging.py"), str(data), "--bundle", str(tiny_model),
                          "--member", f"second={tiny_model / 'second'}"],
                         capture_output=True, text=True, timeout=600, env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": ""})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = {line.split("  ")[0].strip(): line for line in run.stdout.splitlines() if "Dice mean" in line}
    assert set(lines) == {"bundle, flip TTA", "bag, no TTA", "bag, flip TTA"}
    mean = {name: float(re.search(r"Dice mean ([\d.]+)", line).group(1)) for name, line in lines.items()}
    assert mean["bag, flip TTA"] == mean["bundle, flip TTA"], "a stage averaged with itself is the stage"
    assert "member_agreement" in lines["bag, no TTA"] and "flip_agreement" in lines["bundle, flip TTA"]
