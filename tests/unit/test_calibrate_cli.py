"""`cutout calibrate` writes a bundle's edge refinement, calibration and release rule; the
segmenter and `cutout evaluate` then use them."""

import csv
import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cutout.cli import main
from cutout.naming import VIEWS
from demo import synthetic
from tests.helpers import write_labelled_folder


@pytest.fixture
def studio_folder(tmp_path):
    """Four garments in three views each, named <photo>_<View> like `cutout studio-data --views`."""
    return write_labelled_folder(tmp_path / "studio-val", 4, size=(288, 192), views=VIEWS)


def test_calibrate_then_segment_and_evaluate_with_the_result(studio_folder, tiny_model, tmp_path):
    from cutout.config import Settings
    from cutout.segmentation import artefact
    from cutout.segmentation.confidence import predicted_dice
    from cutout.segmentation.segmenter import Segmenter

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_model, bundle)
    runner = CliRunner()
    result = runner.invoke(main, ["calibrate", str(studio_folder), "--model", str(bundle), "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["n"] == 12 and summary["garments"] == 4

    meta = artefact.read_meta(bundle / "second")
    assert meta.calibration["score"] and np.all(np.diff(meta.calibration["y"]) >= 0)
    assert "min_predicted_dice" in meta.release and meta.evaluation["studio"]["n"] == 12
    assert artefact.read_meta(bundle / "first").calibration is None, "the bundle's rule lives in its last stage"
    for plot in ("automation.png", "reliability.png"):
        image = cv2.imread(str(tmp_path / "plots" / plot))
        assert image is not None and min(image.shape[:2]) > 200 and image.std() > 10, f"{plot} is a drawn picture"
    views = list(csv.DictReader(open(tmp_path / "plots" / "views.csv")))
    assert len(views) == 12 and {"id", "garment", "dice", "predicted", "flip_agreement", "height_fraction",
                                 "garment_fraction"} <= set(views[0]), "what the release rule weighs, per view"

    seg = Segmenter.from_settings(Settings(model_dir=bundle))
    rgb = synthetic.studio_shot(7, size=(288, 192))[0][:, :, :3]
    prediction = seg.segment(rgb)
    assert prediction.confidence == pytest.approx(predicted_dice(prediction.confidence_parts, meta.calibration))
    assert ("refine_s" in prediction.timings) == (meta.refine is not None)

    result = runner.invoke(main, ["evaluate", str(studio_folder), "--model", str(bundle), "--json", "--no-tta"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert {"n", "mean_dice", "median_dice", "boundary_f", "automation"} <= set(report)
    assert report["boundary_f"] == pytest.approx(report["double"]["boundary_f"]["mean"])
    assert report["automation"]["garments"] == 4 and report["automation"]["rule"] == meta.release
    assert report["mean_dice"] == pytest.approx(summary["mean_dice"], abs=1e-6), "evaluate runs what calibrate chose"
    held = report["automation"]["views_disagree"]
    points = report["automation"]["operating_points"]
    assert [p["target_precision"] for p in points] == [0.99, 0.98, 0.97, 0.95, 0.90]
    result = runner.invoke(main, ["evaluate", str(studio_folder), "--model", str(bundle), "--no-tta"])
    assert result.exit_code == 0, result.output
    assert "12/12 photos" in result.output, "a long evaluation says where it is"
    assert f"views disagree on height or size: {held['garments']} garments held back" in result.output
    assert "automation curve (released share -> precision)" in result.output
    assert "on this data, the most released at a precision of 99%: " in result.output
