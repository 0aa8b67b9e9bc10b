"""A training run's inputs: photos and masks fitted to the model's input once, up front, with
the functions the worker uses (for a second stage, focused on the first stage's own
predictions as the worker focuses them), then a tf.data pipeline that shuffles, flips, jitters
colour, normalises and batches on both cores while the model trains."""

from __future__ import annotations

import logging

import numpy as np

from cutout.imageio import read_mask_file, read_photo_file
from cutout.segmentation import artefact
from cutout.segmentation.preprocess import fit_image, fit_mask, focus_crop
from trainer.data import Pair

log = logging.getLogger(__name__)


def load(pairs: list[Pair], cfg, first: artefact.LoadedModel | None, fill, threshold,
          jitter: float = 0.0, with_negatives: bool = False):
    """Fitted uint8 photos and float masks (N,H,W,1; with_negatives N,H,W,2, the second
    channel the pair's negatives, zero where it has none); for the second pass, focused on
    first-pass predictions as the worker focuses them (a photo where the first pass found nothing
    is left out: the worker never runs the second model on it), each with its focus region's
    dilation drawn from cfg.dilate_fraction +- `jitter`.

    Why the jitter: trained behind one fixed dilation, the second model learns that the garment
    ends a fixed distance inside the blanked border, and it cannot give back what the first pass
    missed (the bundle shipped before the jitter, at 1152x1728: 1.4 % of the garment on average
    lay outside the focus region; widening it to 5 % at inference cost 0.008 mean Dice, to 8 %
    0.08). Varying the border makes the edge a property of the photo, not of the blank."""
    from cutout.segmentation.segmenter import Segmenter, aspect, binarise

    segmenter = Segmenter(first) if first is not None else None
    dilations = np.random.default_rng(cfg.seed).uniform(-jitter, jitter, len(pairs)) + cfg.dilate_fraction
    xs, ys = [], []
    for pair, dilation in zip(pairs, dilations):
        rgb = read_photo_file(pair.image)
        truth = read_mask_file(pair.truth)
        if truth.shape != rgb.shape[:2]:
            raise ValueError(f"{pair.id}: mask {truth.shape} and photo {rgb.shape[:2]} differ in size")
        negatives = None
        if with_negatives:
            negatives = read_mask_file(pair.negatives) if pair.negatives else np.zeros_like(truth)
            if negatives.shape != truth.shape:
                raise ValueError(f"{pair.id}: negatives {negatives.shape} and photo {rgb.shape[:2]} differ in size")
        if segmenter is not None:
            predicted = binarise(segmenter.first_pass(rgb), threshold)
            cropped = focus_crop(rgb, predicted, dilation, fill, aspect(cfg.input_size))
            if cropped is None:
                log.warning("%s: the first pass found no garment; left out of the second pass", pair.id)
                continue
            rgb, _, box = cropped
            truth = truth[box.slices]
            negatives = negatives[box.slices] if negatives is not None else None
        fitted, _ = fit_image(rgb, cfg.input_size, cfg.fit, fill=fill)
        xs.append(fitted)
        channels = [truth] if negatives is None else [truth, negatives]
        ys.append(np.stack([fit_mask(c, cfg.input_size, cfg.fit) for c in channels], axis=-1))
    return np.stack(xs), np.stack(ys)


def pipeline(x, y, mean, std, cfg, training: bool):
    import tensorflow as tf

    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)

    def augment(image, mask):
        image = tf.cast(image, tf.float32) / 255.0
        if cfg.flip:
            flip = tf.random.uniform(()) < 0.5
            image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
            mask = tf.cond(flip, lambda: tf.image.flip_left_right(mask), lambda: mask)
        if cfg.colour:
            # Mild only: the study found stronger augmentation hurt.
            image = tf.image.random_brightness(image, 0.05)
            image = tf.image.random_contrast(image, 0.9, 1.1)
            image = tf.image.random_saturation(image, 0.9, 1.1)
            image = tf.clip_by_value(image, 0.0, 1.0)
        return image * 255.0, mask

    def norm(image, mask):
        return (tf.cast(image, tf.float32) - mean) / std, mask

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=cfg.seed, reshuffle_each_iteration=True)
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(norm, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)
