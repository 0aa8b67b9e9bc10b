"""bench/loop.py on a tiny set: a studio's day and night through the real producer, worker,
review actions and trainer, with what it prints checked against what it measured."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.integration.conftest import PG_ADMIN_URL, REDIS_URL, ROOT

pytestmark = pytest.mark.integration


def test_a_day_and_a_night_of_the_loop_on_a_tiny_set(tiny_model, tmp_path):
    out = tmp_path / "loop"
    run = subprocess.run(
        [sys.executable, "bench/loop.py", "--synthetic", "--days", "2", "--garments", "8", "--model", str(tiny_model),
         "--retrain-minutes", "0.3", "--epochs", "2", "--patience", "2", "--min-training-pairs", "3",
         "--holdout-percent", "20", "--studio-holdout", "2", "--workers", "1", "--tf-threads", "1", "--out", str(out),
         "--admin-url", PG_ADMIN_URL, "--broker", REDIS_URL],
        cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert re.fullmatch(r"loop: day 2 released \d+/8 \(\d+%\), true precision (n/a|[01]\.\d{3}), live .+ "
                        r"\[[01]\.\d{3}, [01]\.\d{3}\], mode (shadow|releasing), holdout Dice [01]\.\d{4}", lines[-1]), lines[-1]
    assert (out / "loop.png").stat().st_size > 10_000
    days = json.loads((out / "loop.json").read_text())
    first, second = days
    # Day 1: every version starts in shadow mode; the team sees every garment.
    assert first["mode_before"] == "shadow" and first["released"] == 0 and first["reviewed"] == 8
    assert first["approved_views"] + first["corrected_views"] == 24
    assert first["live"]["reviewed"] == first["would_release"], "every would-be release was reviewed, and counted"
    assert first["live"]["right"] == first["would_right"], "the fleet's evidence agrees with the truth"
    assert next(x for x in lines if x.startswith("day 1:")).startswith("day 1: model ")
    # The night retrained on the day's reviews (one garment held out) and decided by its gate.
    night = first["night"]
    assert night["training"] == 21 and night["holdout"] == 3, night
    assert night["outcome"] in ("promoted", "kept the current model")
    assert set(night["holdout_dice"]) == {"current", "candidate"}
    assert (second["version"] != first["version"]) == (night["outcome"] == "promoted"), "the worker follows the gate"
    assert second["reviewed"] + second["released"] == 8
    # Every morning the model in service is scored on the two garments nobody reviews.
    assert first["studio_holdout"]["garments"] == second["studio_holdout"]["garments"] == 2
    assert lines[-1].endswith(f"holdout Dice {second['studio_holdout']['mean_dice']:.4f}")
