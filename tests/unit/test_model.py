"""The model family, its artefact, the two-pass segmenter and confidence."""

import numpy as np
import pytest

from cutout.config import Settings


@pytest.mark.parametrize("size, depth, base", [((64, 64), 3, 4), ((96, 64), 4, 2), ((128, 192), 5, 2)])
def test_unet_builds_at_sizes_and_aspects(size, depth, base):
    from cutout.segmentation.unet import build_unet

    model = build_unet(size, depth=depth, base_filters=base)
    out = model.predict_on_batch(np.zeros((1, *size, 3), np.float32))
    assert out.shape == (1, *size, 1)


def test_study_variants_have_the_studys_widths():
    from cutout.segmentation.unet import build_unet

    model = build_unet((256, 256), depth=5, base_filters=32)
    convs = [l for l in model.layers if l.name.endswith("_conv")]
    assert convs[0].filters == 32
    assert model.get_layer("centre_a_conv").filters == 1024
    assert model.get_layer("down4b_conv").filters == 512


def test_side_not_divisible_is_refused():
    from cutout.segmentation.unet import build_unet

    with pytest.raises(ValueError, match="divisible"):
        build_unet((100, 64), depth=3)


def test_deeplab_largefov_has_the_large_field_of_view_at_an_eighth_of_the_input():
    from cutout.segmentation.networks import build

    model = build("deeplab", (96, 64), base_filters=4)
    out = model.predict_on_batch(np.zeros((1, 96, 64, 3), np.float32))
    assert out.shape == (1, 96, 64, 1)
    fc6 = model.get_layer("fc6_conv")
    assert fc6.dilation_rate == (12, 12) and fc6.filters == 64
    assert model.get_layer("conv5_1_conv").dilation_rate == (2, 2)
    assert model.get_layer("fc8").output.shape[1:3] == (12, 8), "scores at 1/8, then upsampled"
    with pytest.raises(ValueError, match="divisible by 8"):
        build("deeplab", (100, 64))
    with pytest.raises(ValueError, match="unknown architecture"):
        build("segnet", (64, 64))


def test_a_deeplab_stage_predicts_the_same_after_save_and_load(tmp_path):
    import keras

    from cutout.segmentation import artefact
    from cutout.segmentation.networks import build

    keras.utils.set_random_seed(4)
    model = build("deeplab", (64, 64), base_filters=4, name="atrous")
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    y = (np.random.default_rng(1).random((2, 64, 64, 1)) > 0.5).astype(np.float32)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2), loss="binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    before = model.predict_on_batch(x)[..., 0]
    meta = artefact.ModelMeta(name="atrous", stage="first", arch="deeplab", depth=3, base_filters=4,
                              input_size=(64, 64), fit="squash", mean=[0.0] * 3, std=[1.0] * 3, threshold=0.5)
    artefact.save(model, tmp_path / "m", meta)
    loaded = artefact.load(tmp_path / "m")
    assert artefact.read_meta(tmp_path / "m").arch == "deeplab"
    assert np.allclose(loaded.predict(x), before, atol=1e-6)
    fresh = build("deeplab", (64, 64), base_filters=4).predict_on_batch(x)[..., 0]
    assert not np.allclose(fresh, before, atol=1e-3), "an untrained model would not pass the comparison above"


def test_a_few_training_steps_lower_the_loss():
    import keras

    from cutout.segmentation.preprocess import fit_image, fit_mask, normalise
    from cutout.segmentation.unet import build_unet
    from demo.synthetic import studio_shot
    from trainer.losses import BceDiceLoss, dice_metric

    keras.utils.set_random_seed(1)
    xs, ys = [], []
    for seed in range(4):
        rgba, mask = studio_shot(seed, size=(192, 128))
        fitted, _ = fit_image(rgba[:, :, :3], (64, 64), "squash")
        xs.append(normalise(fitted, [128] * 3, [64] * 3))
        ys.append(fit_mask(mask, (64, 64), "squash")[..., None])
    x, y = np.stack(xs), np.stack(ys)
    model = build_unet((64, 64), depth=3, base_filters=4)
    model.compile(optimizer=keras.optimizers.RMSprop(3e-4), loss=BceDiceLoss(), metrics=[dice_metric])
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, epochs=15, batch_size=4, verbose=0)
    after = model.evaluate(x, y, verbose=0)[0]
    assert after < before


def test_boundary_weighting_counts_mistakes_at_edges_more_than_inside():
    from keras import ops

    from trainer.losses import BceDiceLoss, boundary_weights

    y = np.zeros((1, 32, 32, 1), np.float32)
    y[:, 8:24, 8:24] = 1
    near_edge = np.asarray(ops.convert_to_numpy(boundary_weights(y, width=2))) > 1
    assert near_edge[0, 8, 16, 0] and near_edge[0, 6, 16, 0] and not near_edge[0, 16, 16, 0]
    # The same number of wrong pixels (confidently wrong, p = 0.9 against truth 0 or the
    # reverse), once in a band along the edge, once in the middle of the background.
    edge_wrong = np.where(y > 0, 0.99, 0.01).astype(np.float32)
    edge_wrong[0, 6:8, 8:24] = 0.9  # two rows just outside the top edge
    inner_wrong = np.where(y > 0, 0.99, 0.01).astype(np.float32)
    inner_wrong[0, 28:30, 8:24] = 0.9  # two rows far from any edge
    bce = lambda loss, p: float(ops.convert_to_numpy(loss(y, p)))  # noqa: E731
    plain, weighted = BceDiceLoss(dice_weight=0.0), BceDiceLoss(dice_weight=0.0, boundary_weight=4.0)
    assert bce(plain, edge_wrong) == pytest.approx(bce(plain, inner_wrong), rel=1e-5), "unweighted: where does not matter"
    assert bce(weighted, edge_wrong) > 1.5 * bce(weighted, inner_wrong), "weighted: edge mistakes cost more"


def test_negative_weighting_counts_mistakes_on_negatives_more():
    from keras import ops

    from trainer.losses import BceDiceLoss, accuracy_metric, dice_metric

    truth = np.zeros((1, 32, 32, 1), np.float32)
    truth[:, 8:24, 8:24] = 1
    negatives = np.zeros_like(truth)
    negatives[:, 2:6, 8:24] = 1  # a head above the garment: the person, not garment
    y = np.concatenate([truth, negatives], axis=-1)
    on_negatives = np.where(truth > 0, 0.99, 0.01).astype(np.float32)
    on_negatives[0, 2:4, 8:24] = 0.9  # two rows of the head taken for garment
    elsewhere = np.where(truth > 0, 0.99, 0.01).astype(np.float32)
    elsewhere[0, 28:30, 8:24] = 0.9  # as many rows of backdrop
    bce = lambda loss, p: float(ops.convert_to_numpy(loss(y, p)))  # noqa: E731
    plain, weighted = BceDiceLoss(dice_weight=0.0), BceDiceLoss(dice_weight=0.0, negative_weight=4.0)
    assert bce(plain, on_negatives) == pytest.approx(bce(plain, elsewhere), rel=1e-5), "unweighted: where does not matter"
    assert bce(weighted, on_negatives) > 1.5 * bce(weighted, elsewhere), "weighted: the head costs more"
    # The loss and the metrics read the truth from the first channel only.
    single = float(ops.convert_to_numpy(plain(truth, on_negatives)))
    assert bce(plain, on_negatives) == pytest.approx(single, rel=1e-6)
    perfect = truth.copy()
    assert float(ops.convert_to_numpy(dice_metric(y, perfect))[0]) == pytest.approx(1.0)
    assert float(ops.convert_to_numpy(accuracy_metric(y, perfect))[0]) == pytest.approx(1.0)


def test_a_trained_model_predicts_the_same_after_save_and_load(tmp_path):
    import keras

    from cutout.segmentation import artefact
    from cutout.segmentation.unet import build_unet

    keras.utils.set_random_seed(3)
    model = build_unet((64, 64), depth=3, base_filters=4, name="roundtrip")
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    y = (np.random.default_rng(1).random((2, 64, 64, 1)) > 0.5).astype(np.float32)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2), loss="binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)  # moves weights and BatchNorm statistics off their initial values
    before = model.predict_on_batch(x)[..., 0]
    meta = artefact.ModelMeta(name="roundtrip", stage="first", depth=3, base_filters=4, input_size=(64, 64),
                              fit="squash", mean=[0.0] * 3, std=[1.0] * 3, threshold=0.5)
    version = artefact.save(model, tmp_path / "m", meta)
    loaded = artefact.load(tmp_path / "m")
    assert np.allclose(loaded.predict(x), before, atol=1e-6)
    fresh = build_unet((64, 64), depth=3, base_filters=4).predict_on_batch(x)[..., 0]
    assert not np.allclose(fresh, before, atol=1e-3), "an untrained model would not pass the comparison above"
    assert loaded.version == version and version.startswith("roundtrip-")


def test_weights_stored_in_float16_take_half_the_file_and_predict_as_before(tmp_path):
    import keras

    from tests.helpers import stored_dtypes

    from cutout.segmentation import artefact
    from cutout.segmentation.unet import build_unet

    keras.utils.set_random_seed(5)
    model = build_unet((64, 64), depth=3, base_filters=8, name="half")
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2), loss="binary_crossentropy")
    model.fit(x, (x[..., :1] > 0).astype(np.float32), epochs=2, verbose=0)
    before = model.predict_on_batch(x)[..., 0]
    meta = artefact.ModelMeta(name="half", stage="first", depth=3, base_filters=8, input_size=(64, 64),
                              fit="squash", mean=[0.0] * 3, std=[1.0] * 3, threshold=0.5)
    artefact.save(model, tmp_path / "full", meta)
    artefact.save(model, tmp_path / "half", meta, weights_dtype="float16")
    full, half = (tmp_path / d / "model.weights.h5" for d in ("full", "half"))
    # About two bytes saved per weight (the file's own structure, much the same in both, is most of a model this small).
    assert full.stat().st_size - half.stat().st_size >= 1.9 * sum(int(np.prod(w.shape)) for w in model.weights)
    assert stored_dtypes(half) == {"float16"}
    loaded = artefact.load(tmp_path / "half", precision="float32")
    assert {v.dtype for v in loaded.keras_model.weights} == {"float32"}, "the network still computes in float32"
    assert np.abs(loaded.predict(x) - before).max() < 2e-3
    assert loaded.version != artefact.load(tmp_path / "full", precision="float32").version, "another file, another version"
    with pytest.raises(ValueError, match="weights_dtype"):
        artefact.save(model, tmp_path / "bad", meta, weights_dtype="int8")


def test_retired_model_json_keys_load_only_with_the_values_still_run(tmp_path):
    """Stages written with the retired focus, focus_below and outputs keys still load when those
    say what this code runs (the shipped bundle's do), and are refused otherwise."""
    from cutout.segmentation import artefact

    meta = artefact.ModelMeta(name="m", stage="second", depth=3, base_filters=4, input_size=(64, 64), fit="squash",
                              mean=[0.0] * 3, std=[1.0] * 3, threshold=0.5)
    written = meta.to_json()
    assert not {"focus", "focus_below", "outputs"} & set(written)
    ok = {**written, "focus": "crop", "focus_below": None, "outputs": ["garment"]}
    assert artefact.ModelMeta.from_json(ok) == meta
    for retired in ({"focus": "frame"}, {"focus_below": 0.08}, {"outputs": ["garment", "negatives"]}):
        with pytest.raises(ValueError, match="no longer"):
            artefact.ModelMeta.from_json({**written, **retired})


def test_model_runs_at_another_input_size(tiny_model):
    from cutout.segmentation import artefact

    model = artefact.load(tiny_model / "first", input_size=(192, 128))
    assert model.predict(np.zeros((1, 192, 128, 3), np.float32)).shape == (1, 192, 128)


def test_bundle_layout(tiny_model, tmp_path):
    from cutout import bundle

    first, second = bundle.stages(tiny_model)
    assert first.name == "first" and second.name == "second"
    assert bundle.stages(tiny_model / "first") == (tiny_model / "first", None)
    with pytest.raises(FileNotFoundError, match="CUTOUT_MODEL"):
        bundle.stages(tmp_path)


def test_segmenter_two_passes_at_the_photos_size(tiny_model):
    from cutout.config import Settings
    from cutout.segmentation.segmenter import Segmenter
    from demo.synthetic import studio_shot

    seg = Segmenter.from_settings(Settings(model_dir=tiny_model))
    rgba, _ = studio_shot(0)
    result = seg.segment(rgba[:, :, :3])
    assert result.mask.shape == (1728, 1152) and result.first_mask.shape == (1728, 1152)
    assert set(np.unique(result.mask)) <= {0, 255}
    assert {"first_pass_s", "second_pass_s"} <= set(result.timings)
    assert "+" in seg.version
    single = Segmenter.from_settings(Settings(model_dir=tiny_model, second_pass=False))
    assert single.second is None and "+" not in single.version


def test_the_second_pass_looks_only_inside_the_garments_box(tiny_model):
    from cutout.segmentation.preprocess import focus_crop
    from cutout.segmentation.segmenter import Segmenter, aspect
    from demo.synthetic import studio_shot

    seg = Segmenter.from_settings(Settings(model_dir=tiny_model))
    rgb = studio_shot(0)[0][:, :, :3]
    first_mask = np.zeros(rgb.shape[:2], np.uint8)
    first_mask[600:1000, 400:700] = 255
    prob = seg.second_pass(rgb, first_mask)[0]
    crop, region, box = focus_crop(rgb, first_mask, seg.second.meta.dilate_fraction, seg.second.meta.fill,
                                   aspect(seg.second.input_size))
    assert prob.shape == rgb.shape[:2]
    assert np.allclose(prob[box.slices], seg._probability(seg.second, crop, seg.threshold_second)[0] * region)
    outside = np.ones(prob.shape, bool)
    outside[box.slices] = region == 0
    assert prob[outside].max() == 0.0 and prob[box.slices][region == 1].max() > 0.0
    assert not seg.second_pass(rgb, np.zeros_like(first_mask))[0].any(), "no first mask, nothing to refine"


def test_confidence_definition():
    from cutout.segmentation.confidence import confidence_score

    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 2:8] = 255
    crisp = np.where(mask > 0, 0.99, 0.01).astype(np.float32)
    assert confidence_score(crisp, 0.5, mask, mask)[0] == 1.0
    vague = np.where(mask > 0, 0.6, 0.4).astype(np.float32)
    assert confidence_score(vague, 0.5, mask, mask)[0] == 0.0
    disagree = np.zeros_like(mask)
    disagree[2:8, 2:5] = 255
    score, parts = confidence_score(crisp, 0.5, mask, disagree)
    assert score == pytest.approx(2 * 18 / (36 + 18), abs=1e-4)
    assert confidence_score(np.zeros((4, 4), np.float32), 0.5, np.zeros((4, 4), np.uint8), None)[0] == 0.0
    assert parts["height_fraction"] == 0.6, "rows 2..7 of 10: what the report compares across a garment's views"


def test_saving_a_trained_model_ships_weights_only(tmp_path, tiny_model):
    import h5py
    import keras

    from cutout import bundle
    from cutout.segmentation import artefact

    loaded = artefact.load(tiny_model / "first")
    model = loaded.keras_model
    model.compile(optimizer=keras.optimizers.RMSprop(3e-4), loss="binary_crossentropy")
    model.train_on_batch(np.zeros((1, 96, 64, 3), np.float32), np.zeros((1, 96, 64, 1), np.float32))
    version = artefact.save(model, tmp_path / "m", loaded.meta)
    with h5py.File(tmp_path / "m" / bundle.WEIGHTS) as f:
        assert "optimizer" not in f
    model.save_weights(tmp_path / "m" / bundle.WEIGHTS)  # the same weights with optimizer state
    with h5py.File(tmp_path / "m" / bundle.WEIGHTS) as f:
        assert "optimizer" in f
    assert bundle.stage_version(tmp_path / "m") == version, "the version names the weights, not the file"


def test_flip_tta_is_a_run_setting_not_a_version(tiny_model):
    from cutout.config import Settings
    from cutout.metrics import dice
    from cutout.segmentation.preprocess import fit_image, focus_crop, normalise, unfit_probability
    from cutout.segmentation.segmenter import Segmenter, aspect, binarise
    from demo.synthetic import studio_shot

    # One precision for both: "auto" may time them apart on a CPU with native bfloat16.
    plain = Segmenter.from_settings(Settings(model_dir=tiny_model, inference_precision="float32"))
    tta = Segmenter.from_settings(Settings(model_dir=tiny_model, tta=True, inference_precision="float32"))
    from cutout import bundle

    assert tta.version == plain.version == bundle.version(tiny_model), "one identity, however it runs"
    assert tta.run_settings["tta"] is True and plain.run_settings["tta"] is False
    assert tta.run_settings["second_pass"] and tta.run_settings["precision"] == {"first": "float32", "second": "float32"}
    rgb = studio_shot(2, size=(288, 192))[0][:, :, :3]

    # Each network sees its input and the input's mirror image; the maps are averaged before upsampling.
    first = tta.first
    fitted, placement = fit_image(rgb, first.input_size, first.meta.fit, fill=first.meta.mean)
    x = normalise(fitted, first.meta.mean, first.meta.std)[None]
    averaged = (first.predict(x)[0] + first.predict(np.ascontiguousarray(x[:, :, ::-1]))[0][:, ::-1]) / 2
    expected_first = unfit_probability(averaged, placement, rgb.shape[:2])
    first_prob, final, agreements = tta.passes(rgb)
    assert np.allclose(first_prob, expected_first, atol=1e-5)
    assert not np.allclose(first_prob, plain.passes(rgb)[0], atol=1e-3), "the mirror image changes the map"

    second = tta.second
    crop, region, box = focus_crop(rgb, binarise(first_prob, tta.threshold_first), second.meta.dilate_fraction,
                                   second.meta.fill, aspect(second.input_size))
    fitted, crop_placement = fit_image(crop, second.input_size, second.meta.fit, fill=second.meta.mean)
    x = normalise(fitted, second.meta.mean, second.meta.std)[None]
    straight, mirror = second.predict(x)[0], second.predict(np.ascontiguousarray(x[:, :, ::-1]))[0][:, ::-1]
    agreement = dice(straight > tta.threshold, mirror > tta.threshold)
    assert agreements == {"flip_agreement": pytest.approx(agreement, abs=1e-6), "member_agreement": None}
    expected_final = unfit_probability((straight + mirror) / 2, crop_placement, crop.shape[:2]) * region
    assert np.allclose(final[box.slices], expected_final, atol=1e-5)
    assert tta.segment(rgb).confidence_parts["flip_agreement"] == pytest.approx(agreement, abs=1e-5)
    assert plain.segment(rgb).confidence_parts["flip_agreement"] == 1.0, "not measured without TTA"
    # Symmetric by construction: the mirrored photo gets the mirrored cut.
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    assert dice(tta.segment(mirrored).mask[:, ::-1], tta.segment(rgb).mask) > 0.99


def test_bfloat16_inference_keeps_the_weights_and_close_outputs(tiny_model):
    """bfloat16 changes what the convolutions compute in, not the weights: the same bundle
    predicts within bfloat16's precision of float32, and says which it runs."""
    from cutout.segmentation import artefact

    x = np.random.default_rng(0).normal(size=(1, 96, 64, 3)).astype(np.float32)
    f32 = artefact.load(tiny_model / "first", input_size=(96, 64), engine="tensorflow")
    bf16 = artefact.load(tiny_model / "first", input_size=(96, 64), precision="bfloat16", engine="tensorflow")
    assert (f32.precision, bf16.precision) == ("float32", "bfloat16")
    assert bf16.keras_model.get_layer("down0a_conv").compute_dtype == "bfloat16"
    assert bf16.predict(x).dtype == np.float32
    assert np.abs(bf16.predict(x) - f32.predict(x)).max() < 0.05
    assert np.array_equal(bf16.keras_model.get_weights()[0], f32.keras_model.get_weights()[0])
    with pytest.raises(ValueError, match="precision"):
        artefact.load(tiny_model / "first", precision="float16")


def test_a_segmenter_says_what_each_stage_computes_in(tiny_model):
    """auto decides per stage, so a report naming one stage's precision can hide the other's."""
    from cutout.segmentation import artefact
    from cutout.segmentation.segmenter import Segmenter

    f32 = artefact.load(tiny_model / "first", input_size=(96, 64))
    bf16 = artefact.load(tiny_model / "second", input_size=(96, 64), precision="bfloat16", engine="tensorflow")
    mixed = Segmenter(f32, bf16)
    assert mixed.precisions == {"first": "float32", "second": "bfloat16"}
    assert mixed.precision == "first float32, second bfloat16"
    assert Segmenter(f32, f32).precision == "float32" and Segmenter(f32).precisions == {"first": "float32"}


@pytest.mark.parametrize("native, bf16_seconds, expected", [(False, 0.1, "float32"), (True, 0.5, "bfloat16"),
                                                            (True, 0.95, "float32"), (True, 2.0, "float32")])
def test_auto_precision_is_bfloat16_only_where_native_and_measured_faster(tiny_model, monkeypatch, native,
                                                                          bf16_seconds, expected):
    from cutout.segmentation import artefact, runtime

    monkeypatch.setattr(runtime, "cpu_info", lambda: {"model": "Test CPU", "cores": 2, "avx2": True,
                                                      "avx512f": native, "native_bf16": native})
    timed = []

    def seconds(predict, size):
        policy = predict.__self__.dtype_policy.name  # Keras's predict_on_batch, bound to its model
        timed.append(policy)
        return bf16_seconds if policy == "mixed_bfloat16" else 1.0

    monkeypatch.setattr(runtime, "predict_seconds", seconds)
    loaded = artefact.load(tiny_model / "first", input_size=(96, 64), precision="auto", engine="tensorflow")
    assert loaded.precision == expected
    assert timed == (["float32", "mixed_bfloat16"] if native else []), "no probe without native bfloat16"
    assert loaded.keras_model.dtype_policy.name == ("mixed_bfloat16" if expected == "bfloat16" else "float32")
