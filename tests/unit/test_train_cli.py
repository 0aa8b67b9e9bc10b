"""`cutout train` end to end on a tiny synthetic folder: artefact, log, curves, tuned threshold,
and a second pass trained on the first pass's predictions."""

import json

import pytest
from click.testing import CliRunner

from tests.helpers import stored_dtypes, write_labelled_folder


@pytest.fixture
def folder(tmp_path):
    return write_labelled_folder(tmp_path / "data", 6, truth="cutouts")


def test_train_first_and_second_pass(folder, tmp_path):
    from cutout import bundle
    from cutout.cli import main
    from cutout.segmentation import artefact

    runner = CliRunner()
    common = ["--size", "64x64", "--depth", "3", "--base-filters", "2", "--epochs", "2", "--batch-size", "2", "--no-xla"]
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "first"), *common])
    assert result.exit_code == 0, result.output
    meta = artefact.read_meta(tmp_path / "first")
    sweep = meta.evaluation["threshold_sweep_mean_dice"]
    assert meta.stage == "first" and meta.threshold == float(max(sweep, key=sweep.get)), "the best of the sweep"
    assert meta.training["n_train"] == 5 and meta.training["n_val"] == 1 and len(meta.training["val_ids"]) == 1
    assert meta.evaluation["n"] == 1 and "threshold_sweep_mean_dice" in meta.evaluation
    header = (tmp_path / "first" / "training_log.csv").read_text().splitlines()[0]
    assert "seconds" in header and "learning_rate" in header, "the log shows the step size the plateau rule set"
    assert meta.training["lr_patience"] == 2
    assert meta.training["jit_compile"] is False, "--no-xla is kept, not measured over"
    for name in ("model.weights.h5", "training_log.csv", "curves.png", "validation.json"):
        assert (tmp_path / "first" / name).exists(), name

    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "second"), "--second-pass",
                                  str(tmp_path / "first"), "--learning-rate", "1e-4", "--weights-dtype", "float16", *common])
    assert result.exit_code == 0, result.output
    second = artefact.read_meta(tmp_path / "second")
    assert meta.training["weights_dtype"] == "float32" and second.training["weights_dtype"] == "float16"
    assert stored_dtypes(tmp_path / "second" / "model.weights.h5") == {"float16"}, "the file stores what --weights-dtype asked"
    assert meta.training["learning_rate"] == 3e-4 and second.training["learning_rate"] == 1e-4
    first_epoch = (tmp_path / "second" / "training_log.csv").read_text().splitlines()[:2]
    rate = float(first_epoch[1].split(",")[first_epoch[0].split(",").index("learning_rate")])
    assert rate == pytest.approx(1e-4), "the optimiser starts at the rate asked for"
    assert second.stage == "second" and second.dilate_fraction == 0.03 and second.fill == meta.mean
    assert second.training["first_pass_model"] == bundle.stage_version(tmp_path / "first")
    assert second.training["val_ids"] == meta.training["val_ids"], "same split as the first pass"
    assert json.loads((tmp_path / "second" / "validation.json").read_text())["double"]["dice"]["n"] == 1


def test_a_deeplab_first_stage_trains_warm_starts_and_leads_a_unet_second(folder, tmp_path):
    from cutout.cli import main
    from cutout.segmentation import artefact

    runner = CliRunner()
    common = ["--size", "64x64", "--base-filters", "2", "--epochs", "1", "--batch-size", "2", "--no-xla"]
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "first"), "--arch", "deeplab", *common])
    assert result.exit_code == 0, result.output
    assert artefact.read_meta(tmp_path / "first").arch == "deeplab"
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "again"),
                                  "--init-from", str(tmp_path / "first"), *common])
    assert result.exit_code == 0, result.output
    assert artefact.read_meta(tmp_path / "again").arch == "deeplab", "a warm start keeps the architecture it starts from"
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "second"), "--depth", "3",
                                  "--second-pass", str(tmp_path / "first"), *common])
    assert result.exit_code == 0, result.output
    second = artefact.read_meta(tmp_path / "second")
    assert second.arch == "unet" and second.training["first_pass_model"].startswith("unet-")


def test_a_time_budget_stops_training_early_and_keeps_the_model(folder, tmp_path):
    from cutout.cli import main
    from cutout.segmentation import artefact

    common = ["--size", "64x64", "--depth", "3", "--base-filters", "2", "--batch-size", "2", "--no-xla"]
    result = CliRunner().invoke(main, ["train", str(folder), "--out", str(tmp_path / "m"), "--epochs", "5",
                                       "--budget-minutes", "0.0001", *common])
    assert result.exit_code == 0, result.output
    training = artefact.read_meta(tmp_path / "m").training
    assert training["epochs_run"] == 1 and training["stopped_by_budget"] and training["budget_minutes"] == 0.0001
    assert (tmp_path / "m" / "model.weights.h5").exists()


def test_negatives_are_weighed_in_both_passes(folder, tmp_path):
    """A folder with negatives/ (as `cutout studio-data` writes) trains with --negative-weight;
    photos without a negatives file count as having none."""
    import cv2
    import numpy as np

    from cutout.cli import main
    from cutout.segmentation import artefact

    (folder / "negatives").mkdir()
    for path in sorted((folder / "cutouts").glob("*.png"))[:4]:
        alpha = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, 3]
        ring = cv2.dilate(alpha, np.ones((9, 9), np.uint8)) & ~alpha  # just outside the garment
        cv2.imwrite(str(folder / "negatives" / path.name), ring)
    runner = CliRunner()
    common = ["--size", "64x64", "--depth", "3", "--base-filters", "2", "--epochs", "1", "--batch-size", "2",
              "--no-xla", "--negative-weight", "3"]
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "first"), *common])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "second"),
                                  "--second-pass", str(tmp_path / "first"), *common])
    assert result.exit_code == 0, result.output
    for stage in ("first", "second"):
        training = artefact.read_meta(tmp_path / stage).training
        assert training["negative_weight"] == 3.0
        assert 3 <= training["n_train_with_negatives"] <= 4  # four files; one photo may be in validation


def test_dilate_jitter_varies_the_training_photos_focus_and_keeps_validation_at_the_workers(folder, tmp_path,
                                                                                              monkeypatch):
    from cutout.cli import main
    from cutout.segmentation import artefact
    from trainer import inputs

    seen = []
    real = inputs.focus_crop

    def recording(rgb, mask, dilate_fraction, fill, aspect):
        seen.append(float(dilate_fraction))
        return real(rgb, mask, dilate_fraction, fill, aspect)

    runner = CliRunner()
    common = ["--size", "64x64", "--depth", "3", "--base-filters", "2", "--epochs", "1", "--batch-size", "2", "--no-xla"]
    assert runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "first"), *common]).exit_code == 0
    monkeypatch.setattr(inputs, "focus_crop", recording)
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "second"), "--second-pass",
                                  str(tmp_path / "first"), "--dilate", "0.04", "--dilate-jitter", "0.02", *common])
    assert result.exit_code == 0, result.output
    meta = artefact.read_meta(tmp_path / "second")
    assert meta.dilate_fraction == 0.04 and meta.training["dilate_jitter"] == 0.02
    n_train = meta.training["n_train"]
    train_dilations, val_dilations = seen[:n_train], seen[n_train:n_train + meta.training["n_val"]]
    assert all(0.02 <= d <= 0.06 for d in train_dilations) and len(set(train_dilations)) == n_train
    assert val_dilations == [0.04], "validation is focused as the worker focuses"
