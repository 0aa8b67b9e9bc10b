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
    assert meta.stage == "first" and 0.2 <= meta.threshold <= 0.85
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
    assert second.focus == "crop" and meta.focus == "frame"
    assert second.training["first_pass_model"] == bundle.stage_version(tmp_path / "first")
    assert second.training["val_ids"] == meta.training["val_ids"], "same split as the first pass"
    assert json.loads((tmp_path / "second" / "validation.json").read_text())["double"]["dice"]["n"] == 1


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


def test_a_negatives_head_is_trained_on_request_and_kept_by_warm_starts(folder, tmp_path):
    """--negatives-head adds the second output; a warm start from such a model keeps it unless
    told not to (and cannot drop it); the worker's garment channel is what gets evaluated."""
    import cv2
    import numpy as np

    from cutout.cli import main
    from cutout.segmentation import artefact

    (folder / "negatives").mkdir()
    for path in sorted((folder / "cutouts").glob("*.png")):
        alpha = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, 3]
        cv2.imwrite(str(folder / "negatives" / path.name), cv2.dilate(alpha, np.ones((9, 9), np.uint8)) & ~alpha)
    runner = CliRunner()
    common = ["--size", "64x64", "--depth", "3", "--base-filters", "2", "--epochs", "1", "--batch-size", "2", "--no-xla"]
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "plain"), *common])
    assert result.exit_code == 0, result.output
    assert artefact.read_meta(tmp_path / "plain").outputs == ["garment"]
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "head"), "--init-from",
                                  str(tmp_path / "plain"), "--negatives-head", *common])
    assert result.exit_code == 0, result.output
    assert artefact.read_meta(tmp_path / "head").outputs == ["garment", "negatives"]
    assert 0.0 <= artefact.read_meta(tmp_path / "head").evaluation["mean_dice"] <= 1.0
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "again"), "--init-from",
                                  str(tmp_path / "head"), *common])
    assert result.exit_code == 0, result.output
    assert artefact.read_meta(tmp_path / "again").outputs == ["garment", "negatives"]
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "dropped"), "--init-from",
                                  str(tmp_path / "head"), "--no-negatives-head", *common])
    assert result.exit_code == 2 and "a warm start keeps them" in result.output, "one line, not a traceback"


def test_dilate_jitter_varies_the_training_photos_focus_and_keeps_validation_at_the_workers(folder, tmp_path,
                                                                                              monkeypatch):
    from cutout.cli import main
    from cutout.segmentation import artefact
    from trainer import training

    seen, belows = [], []
    real = training.focus_crop

    def recording(rgb, mask, dilate_fraction, fill, aspect, below=0.0):
        seen.append(float(dilate_fraction))
        belows.append(below)
        return real(rgb, mask, dilate_fraction, fill, aspect, below)

    runner = CliRunner()
    common = ["--size", "64x64", "--depth", "3", "--base-filters", "2", "--epochs", "1", "--batch-size", "2", "--no-xla"]
    assert runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "first"), *common]).exit_code == 0
    monkeypatch.setattr(training, "focus_crop", recording)
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "second"), "--second-pass",
                                  str(tmp_path / "first"), "--dilate", "0.04", "--dilate-jitter", "0.02",
                                  "--focus-below", "0.1", *common])
    assert result.exit_code == 0, result.output
    meta = artefact.read_meta(tmp_path / "second")
    assert meta.dilate_fraction == 0.04 and meta.training["dilate_jitter"] == 0.02
    assert meta.focus_below == 0.1 and set(belows) == {0.1}, "training and the worker focus alike below the hem"
    n_train = meta.training["n_train"]
    train_dilations, val_dilations = seen[:n_train], seen[n_train:n_train + meta.training["n_val"]]
    assert all(0.02 <= d <= 0.06 for d in train_dilations) and len(set(train_dilations)) == n_train
    assert val_dilations == [0.04], "validation is focused as the worker focuses"


def test_widen_focus_adds_whole_parts_of_the_negatives_and_never_takes_anything_away():
    import numpy as np

    from trainer.training import widen_focus

    predicted = np.zeros((40, 40), np.uint8)
    predicted[10:30, 10:20] = 255
    negatives = np.zeros_like(predicted)
    negatives[2:6, 30:36] = 255  # a bag
    negatives[32:38, 2:8] = 255  # a foot
    negatives[12:16, 12:16] = 255  # skin the first pass already took in
    assert np.array_equal(widen_focus(predicted, negatives, 0.0, np.random.default_rng(0)), predicted)
    every = widen_focus(predicted, negatives, 1.0, np.random.default_rng(0))
    assert np.array_equal(every, np.maximum(predicted, negatives))
    some = [widen_focus(predicted, negatives, 0.5, np.random.default_rng(seed)) for seed in range(20)]
    for widened in some:
        assert (widened[predicted > 0] == 255).all(), "the first pass's mask stays"
        for part in (np.s_[2:6, 30:36], np.s_[32:38, 2:8]):
            assert len(np.unique(widened[part])) == 1, "a part is added whole or not at all"
    assert len({w.tobytes() for w in some}) > 1, "which parts is drawn per photo"


def test_focus_negatives_widens_the_training_photos_focus_and_keeps_validation_at_the_workers(folder, tmp_path,
                                                                                              monkeypatch):
    import cv2
    import numpy as np

    from cutout.cli import main
    from cutout.segmentation import artefact
    from cutout.segmentation.segmenter import Segmenter
    from trainer import training

    # A "bag" in the top-left corner of every photo, far from the drawn garment.
    (folder / "negatives").mkdir()
    for image in sorted((folder / "images").glob("*.png")):
        h, w = cv2.imread(str(image)).shape[:2]
        bag = np.zeros((h, w), np.uint8)
        bag[2:12, 2:10] = 255
        cv2.imwrite(str(folder / "negatives" / image.name), bag)
    focused = []
    real = training.focus_crop

    def recording(rgb, mask, dilate_fraction, fill, aspect, below=0.0):
        focused.append(bool(mask[2:12, 2:10].all()))
        return real(rgb, mask, dilate_fraction, fill, aspect, below)

    runner = CliRunner()
    common = ["--size", "64x64", "--depth", "3", "--base-filters", "2", "--epochs", "1", "--batch-size", "2", "--no-xla"]
    assert runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "first"), *common]).exit_code == 0
    monkeypatch.setattr(training, "focus_crop", recording)

    def centre_only(self, rgb):  # a first pass that finds the garment in the middle, never the bag
        prob = np.zeros(rgb.shape[:2], np.float32)
        prob[rgb.shape[0] // 4:-rgb.shape[0] // 4, rgb.shape[1] // 4:-rgb.shape[1] // 4] = 1
        return prob

    monkeypatch.setattr(Segmenter, "first_pass", centre_only)
    result = runner.invoke(main, ["train", str(folder), "--out", str(tmp_path / "second"), "--second-pass",
                                  str(tmp_path / "first"), "--focus-negatives", "1", *common])
    assert result.exit_code == 0, result.output
    meta = artefact.read_meta(tmp_path / "second")
    assert meta.training["focus_negatives"] == 1.0
    n_train = meta.training["n_train"]
    assert all(focused[:n_train]), "every training photo's focus takes in the bag"
    assert not any(focused[n_train:n_train + meta.training["n_val"]]), "validation is focused as the worker focuses"
