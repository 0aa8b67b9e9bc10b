"""`cutout average`: weights of stages trained from one start, averaged into one stage."""

import numpy as np
import pytest
from click.testing import CliRunner


def _trained(tmp_path, name, seed, base_filters=4, calibrated=False):
    import keras

    from cutout.segmentation import artefact
    from cutout.segmentation.unet import build_unet

    keras.utils.set_random_seed(seed)
    model = build_unet((32, 32), depth=2, base_filters=base_filters, name="soup")
    x = np.random.default_rng(seed).normal(size=(4, 32, 32, 3)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2), loss="binary_crossentropy")
    model.fit(x, (x[..., :1] > 0).astype(np.float32), epochs=2, verbose=0)  # BatchNorm statistics move too
    meta = artefact.ModelMeta(name="soup", stage="second", depth=2, base_filters=base_filters, input_size=(32, 32),
                              fit="squash", mean=[0.0] * 3, std=[1.0] * 3, threshold=0.5, focus="crop",
                              focus_below=0.08 if seed == 1 else 0.0,
                              release={"min_predicted_dice": 0.97} if calibrated else None)
    artefact.save(model, tmp_path / name, meta)
    return tmp_path / name


def _weights(directory):
    from cutout.segmentation import artefact

    return artefact.load(directory).keras_model.get_weights()


def test_the_average_holds_each_weight_and_statistic_weighted_by_its_share(tmp_path):
    from cutout.segmentation import artefact
    from trainer.averaging import average

    a, b = _trained(tmp_path, "a", 1, calibrated=True), _trained(tmp_path, "b", 2)
    version = average([a, b], tmp_path / "ab", shares=[0.25, 0.75])
    wa, wb, wab = _weights(a), _weights(b), _weights(tmp_path / "ab")
    assert any(not np.allclose(x, y) for x, y in zip(wa, wb)), "two different networks, or the test proves nothing"
    for x, y, z in zip(wa, wb, wab):
        assert np.allclose(z, 0.25 * x + 0.75 * y, atol=1e-6)
    meta = artefact.read_meta(tmp_path / "ab")
    assert meta.focus_below == 0.08, "the first stage named gives the crop"
    assert meta.release is None and meta.calibration is None, "a rule tuned for one network is not the average's"
    assert [s["share"] for s in meta.training["averaged_from"]] == [0.25, 0.75]
    assert artefact.load(tmp_path / "ab").version == version


def test_a_stage_averaged_with_itself_predicts_as_before(tmp_path):
    from cutout.segmentation import artefact
    from trainer.averaging import average

    a = _trained(tmp_path, "a", 1)
    average([a, a], tmp_path / "aa", weights_dtype="float16")
    x = np.random.default_rng(9).normal(size=(2, 32, 32, 3)).astype(np.float32)
    assert np.abs(artefact.load(tmp_path / "aa").predict(x) - artefact.load(a).predict(x)).max() < 2e-3


def test_stages_of_different_architectures_are_refused_in_one_line(tmp_path):
    from trainer.cli import average

    a, wide = _trained(tmp_path, "a", 1), _trained(tmp_path, "wide", 2, base_filters=8)
    result = CliRunner().invoke(average, [str(a), str(wide), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "differs from" in result.output and "base_filters" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()
    result = CliRunner().invoke(average, [str(a), str(a), "--out", str(tmp_path / "x"), "--shares", "0.7,0.7"])
    assert result.exit_code == 1 and "summing to 1" in result.output
