"""The study's loss (BCE + Dice, Dice weighted higher) and training metrics, in Keras ops.

The truth is the first channel of y_true. A second channel, where present, marks negatives
(what looks like garment but is not: the person's skin, shoes, bags); BCE weighs a mistake
there 1 + negative_weight times (the cut's commonest mistakes are there, not on the edge).
"""

from __future__ import annotations

import keras
from keras import ops


def truth(y_true):
    """The garment channel of y_true (the first)."""
    return ops.cast(y_true[..., :1], "float32")


def garment(y_pred):
    """The garment channel of a prediction (the first)."""
    return ops.cast(y_pred[..., :1], "float32")


def soft_dice(y_true, y_pred, smooth: float = 1.0):
    """Per-image soft Dice of the garment, shape (batch,)."""
    y_true = truth(y_true)
    y_pred = garment(y_pred)
    axes = (1, 2, 3)
    inter = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return (2.0 * inter + smooth) / (total + smooth)


def boundary_weights(y_true, width: int = 5, weight: float = 2.0):
    """1 everywhere, 1+weight within `width` px of the truth's edge (the study's future work)."""
    y = ops.cast(y_true, "float32")
    k = 2 * width + 1
    dilated = ops.max_pool(y, k, strides=1, padding="same")
    eroded = -ops.max_pool(-y, k, strides=1, padding="same")
    return 1.0 + weight * (dilated - eroded)


@keras.saving.register_keras_serializable(package="cutout")
class BceDiceLoss(keras.losses.Loss):
    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 2.0, boundary_weight: float = 0.0,
                 negative_weight: float = 0.0, name="bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.boundary_weight = boundary_weight
        self.negative_weight = negative_weight

    def call(self, y_true, y_pred):
        y = truth(y_true)
        y_pred = ops.clip(garment(y_pred), 1e-7, 1 - 1e-7)
        bce = -(y * ops.log(y_pred) + (1 - y) * ops.log(1 - y_pred))
        w = ops.ones_like(y)
        if self.boundary_weight:
            w = boundary_weights(y, weight=self.boundary_weight)
        if self.negative_weight and y_true.shape[-1] > 1:
            w = w * (1.0 + self.negative_weight * ops.cast(y_true[..., 1:2], "float32"))
        bce = ops.sum(bce * w, axis=(1, 2, 3)) / ops.sum(w, axis=(1, 2, 3))
        return self.bce_weight * bce + self.dice_weight * (1.0 - soft_dice(y, y_pred))

    def get_config(self):
        return {**super().get_config(), "bce_weight": self.bce_weight, "dice_weight": self.dice_weight,
                "boundary_weight": self.boundary_weight, "negative_weight": self.negative_weight}


def dice_metric(y_true, y_pred):
    """Hard Dice at 0.5, per image; Keras averages it over the epoch."""
    return soft_dice(y_true, ops.cast(y_pred > 0.5, "float32"), smooth=1e-6)


dice_metric.__name__ = "dice"


def accuracy_metric(y_true, y_pred):
    """Share of pixels on the right side of 0.5, per image."""
    right = ops.cast(truth(y_true) > 0.5, "float32") == ops.cast(garment(y_pred) > 0.5, "float32")
    return ops.mean(ops.cast(right, "float32"), axis=(1, 2, 3))


accuracy_metric.__name__ = "accuracy"
