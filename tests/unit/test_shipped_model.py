"""What a newcomer runs on a fresh clone: the demo and `cutout evaluate`, with the shipped model."""

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from cutout import naming
from cutout.config import DEFAULT_MODEL_DIR
from demo import synthetic
from tests.helpers import write_labelled_folder

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOUT_")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def test_demo_prints_the_report_and_writes_outputs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cutout.cli", "demo", "--out", str(tmp_path)], env=clean_env(),
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "The sample garments, worst first" in out.stdout and synthetic.garment_id("studio-1") in out.stdout
    results = list((tmp_path / "bucket" / naming.RESULTS_PREFIX).glob("*/*"))
    for suffix in ("_mask.png", "_cutout.png", "_overlay.jpg", "_first.png"):
        assert len([p for p in results if p.name.endswith(suffix)]) == 12, suffix
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["garments"]) == 4 and not report["failed_shots"]
    assert sum(v.get("dice") is not None for g in report["garments"] for v in g["views"].values()) == 2
    rule = json.loads((DEFAULT_MODEL_DIR / "first" / "model.json").read_text())["release"]["min_predicted_dice"]
    counts = report["counts"]
    assert sum(counts.values()) == 4 and counts["waiting"] == 0, "every sample garment has its three views done"
    for g in report["garments"]:
        assert (g["status"] == "released") == (not g["reasons"]), g
        for view in g["views"].values():
            assert view["release_threshold"] == pytest.approx(rule, abs=1e-4), "the shipped model's own rule"


def test_evaluate_a_small_folder_with_the_shipped_model(tmp_path):
    write_labelled_folder(tmp_path, 3, size=(432, 288))
    out = subprocess.run([sys.executable, "-m", "cutout.cli", "evaluate", str(tmp_path), "--json",
                          "--csv", str(tmp_path / "per-image.csv"), "--gallery", str(tmp_path / "worst")],
                         env=clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["n"] == 3 and {"single", "threshold_sweep", "boundary_f", "automation"} <= set(report)
    rows = list(csv.DictReader(open(tmp_path / "per-image.csv")))
    per_image = [float(r["single_dice"]) for r in rows]  # the shipped bundle has one stage
    assert len(rows) == 3, "one row per photo"
    assert report["mean_dice"] == pytest.approx(statistics.mean(per_image))
    assert report["median_dice"] == pytest.approx(statistics.median(per_image))
    assert len(list((tmp_path / "worst").glob("*.jpg"))) == 3
