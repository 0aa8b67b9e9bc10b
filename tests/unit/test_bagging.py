"""Bagged stages: members beside a stage's own weights, averaged, their disagreement a signal."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from tests.helpers import make_tiny_bundle


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Two tiny bundles of the same shape with different weights (seeds)."""
    root = tmp_path_factory.mktemp("bags")
    return make_tiny_bundle(root / "a", seed=0), make_tiny_bundle(root / "b", seed=1)


def _copy(bundle, to):
    shutil.copytree(bundle, to)
    return to


def test_a_bag_is_named_by_all_its_weights_and_a_plain_stage_keeps_its_name(bundles, tmp_path):
    from cutout import bundle

    a, b = bundles
    bag = _copy(a, tmp_path / "bag")
    plain = bundle.version(bag)
    assert plain == bundle.version(a), "copying changes nothing"
    where = bundle.bag(bag / "first", b / "first")
    assert where.parent == bag / "first" / bundle.MEMBERS and (where / bundle.WEIGHTS).exists()
    assert sorted(p.name for p in where.iterdir()) == [bundle.META, bundle.WEIGHTS]
    bagged = bundle.version(bag)
    assert bagged != plain and bagged.startswith("tiny-first-"), "new weights, new version; same name"
    assert bundle.version(bag).endswith(plain.rsplit("+", 1)[1]), "the second stage is untouched"
    bundle.bag(bag / "first", b / "first")
    assert bundle.version(bag) == bagged and len(bundle.members(bag / "first")) == 1, "adding again replaces"


def test_a_member_trained_for_another_input_is_refused_in_one_line(bundles, tmp_path):
    from cutout import bundle
    from cutout.errors import OperationalError, describe

    a, b = bundles
    other = make_tiny_bundle(tmp_path / "other", input_size=(64, 96))
    with pytest.raises(OperationalError, match="input_size differ") as refused:
        bundle.bag(_copy(a, tmp_path / "bag") / "first", other / "first")
    assert "\n" not in describe(refused.value)
    with pytest.raises(OperationalError, match="its stage"):
        bundle.bag(tmp_path / "bag" / "first", b / "second")
    bundle.bag(tmp_path / "bag" / "second", b / "second")
    with pytest.raises(OperationalError, match="a bag itself"):
        bundle.bag(_copy(a, tmp_path / "again") / "second", tmp_path / "bag" / "second")


def test_a_bag_averages_its_members_and_measures_their_agreement(bundles, tmp_path):
    from cutout import bundle
    from cutout.config import Settings
    from cutout.metrics import dice
    from cutout.segmentation.preprocess import fit_image, normalise
    from cutout.segmentation.segmenter import Segmenter
    from demo.synthetic import studio_shot

    a, b = bundles
    bag = _copy(a, tmp_path / "bag")
    bundle.bag(bag / "second", b / "second")
    run = dict(inference_precision="float32", tta=False)
    plain = Segmenter.from_settings(Settings(model_dir=a, **run))
    other = Segmenter.from_settings(Settings(model_dir=b, **run))
    bagged = Segmenter.from_settings(Settings(model_dir=bag, **run))
    assert bagged.version == bundle.version(bag) != plain.version
    assert [m.version for m in bagged.second.members] == [other.second.version]
    assert not bagged.first.members

    second = bagged.second
    rgb = studio_shot(2, size=(288, 192))[0][:, :, :3]
    fitted, _ = fit_image(rgb, second.input_size, second.meta.fit, fill=second.meta.mean)
    x = normalise(fitted, second.meta.mean, second.meta.std)[None]
    own, theirs = plain.second.predict(x), other.second.predict(x)
    assert not np.allclose(own, theirs, atol=1e-3), "the members differ"
    assert np.allclose(second.predict(x), (own + theirs) / 2, atol=1e-6), "a bag's map is its members' mean"

    first_prob, final, agreements = bagged.passes(rgb)
    assert agreements["flip_agreement"] is None
    crop_first = plain.passes(rgb)[0]
    assert np.allclose(first_prob, crop_first), "the plain first stage runs as before"
    # The agreement is measured where the members ran: on the second stage's input.
    assert 0.0 <= agreements["member_agreement"] <= 1.0
    prediction = bagged.segment(rgb)
    assert prediction.confidence_parts["member_agreement"] == pytest.approx(agreements["member_agreement"], abs=1e-5)
    assert plain.segment(rgb).confidence_parts["member_agreement"] == 1.0, "not measured without a bag"

    # A bag of a stage with itself cuts as the stage and agrees with itself fully, with TTA too.
    twin = _copy(a, tmp_path / "twin")
    shutil.copytree(a / "first", twin / "first" / bundle.MEMBERS / "copy")
    for tta in (False, True):
        alone = Segmenter.from_settings(Settings(model_dir=a, inference_precision="float32", tta=tta))
        doubled = Segmenter.from_settings(Settings(model_dir=twin, inference_precision="float32", tta=tta))
        first_alone, final_alone, _ = alone.passes(rgb)
        first_twin, final_twin, agreed = doubled.passes(rgb)
        assert np.allclose(first_twin, first_alone, atol=1e-6) and np.allclose(final_twin, final_alone, atol=1e-6)
        assert agreed["member_agreement"] == 1.0 and (agreed["flip_agreement"] is not None) == tta
    assert dice(doubled.segment(rgb).mask, alone.segment(rgb).mask) == 1.0


def test_cutout_bag_adds_members_and_says_the_new_version(bundles, tmp_path):
    from cutout import bundle
    from cutout.cli import main

    a, b = bundles
    bag = _copy(a, tmp_path / "bag")
    result = CliRunner().invoke(main, ["bag", str(bag / "first"), str(b / "first")])
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout.strip().splitlines()[-1])
    assert said["version"] == bundle.stage_version(bag / "first") != bundle.stage_version(a / "first")
    assert said["members"] == [bundle.stage_version(b / "first")]
    refused = CliRunner().invoke(main, ["bag", str(bag / "first"), str(b / "second")])
    assert refused.exit_code == 1 and refused.output.startswith("error: ") and "its stage" in refused.output
