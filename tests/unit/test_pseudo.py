"""`cutout pseudo-label`: unannotated photos segmented the worker's way, the confident ones kept
as a labelled folder that `cutout train --train-only` trains on without validating on it."""

import csv

import pytest
from click.testing import CliRunner

from cutout.config import Settings
from tests.helpers import write_labelled_folder


@pytest.fixture
def photos(tmp_path):
    folder = write_labelled_folder(tmp_path / "street", 4)
    (folder / "images" / "99.png").write_bytes(b"not a photo")
    return folder / "images"


def _rows(out):
    with (out / "pseudo.csv").open(newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def test_every_photo_is_scored_once_and_only_the_confident_are_linked(photos, tmp_path, tiny_model, monkeypatch):
    from cutout.segmentation.segmenter import Segmenter
    from trainer.pseudo import pseudo_label

    out = tmp_path / "pseudo"
    summary = pseudo_label(Settings(), tiny_model, photos, out, min_confidence=0.0)
    rows = _rows(out)
    assert summary["photos"] == 5 and summary["unreadable"] == 1 and summary["kept"] == 4
    assert rows["99"]["confidence"] == "", "an unreadable photo is listed, not fatal"
    assert sorted(p.stem for p in (out / "masks").iterdir()) == ["00", "01", "02", "03"]

    above_all = max(float(r["confidence"]) for r in rows.values() if r["confidence"]) + 1e-4
    monkeypatch.setattr(Segmenter, "segment", lambda *a: pytest.fail("a listed photo is segmented again"))
    assert pseudo_label(Settings(), tiny_model, photos, out, min_confidence=above_all)["kept"] == 0
    assert not list((out / "images").iterdir()), "a rerun re-cuts at the new confidence"
    assert pseudo_label(Settings(), tiny_model, photos, out, min_confidence=0.0)["kept"] == 4
    assert sorted(p.stem for p in (out / "images").iterdir()) == ["00", "01", "02", "03"]
    assert len(_rows(out)) == 5


def test_train_only_photos_train_and_never_validate(tmp_path, photos, tiny_model):
    from cutout.cli import main
    from cutout.segmentation import artefact
    from trainer.pseudo import pseudo_label

    data = write_labelled_folder(tmp_path / "data", 6, truth="cutouts")
    pseudo = tmp_path / "pseudo"
    pseudo_label(Settings(), tiny_model, photos, pseudo, min_confidence=0.0)
    # Name the pseudo-labelled photos apart from DATA's (00..05), as CCP's unlabelled ids are.
    for kind in ("images", "masks"):
        for path in sorted((pseudo / kind).iterdir()):
            path.rename(path.with_name(f"5{path.name}"))
    common = ["--size", "64x64", "--depth", "3", "--base-filters", "2", "--epochs", "1", "--batch-size", "2", "--no-xla"]
    runner = CliRunner()
    result = runner.invoke(main, ["train", str(data), "--out", str(tmp_path / "plain"), *common])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["train", str(data), "--out", str(tmp_path / "more"), "--train-only", str(pseudo), *common])
    assert result.exit_code == 0, result.output
    plain, more = (artefact.read_meta(tmp_path / m).training for m in ("plain", "more"))
    assert more["val_ids"] == plain["val_ids"], "validation is DATA's alone"
    assert more["n_train"] == plain["n_train"] + 4 and more["train_only"] == {str(pseudo): 4}

    clash = write_labelled_folder(tmp_path / "clash", 6)  # the same names as DATA's, so its validation photos
    result = runner.invoke(main, ["train", str(data), "--out", str(tmp_path / "no"), "--train-only", str(clash), *common])
    assert result.exit_code != 0 and "share names with validation photos" in str(result.exception)
