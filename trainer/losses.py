"""The study's loss (BCE + Dice, Dice weighted higher) and training metrics, in Keras ops."""

from __future__ import annotations

import keras
from keras import ops


def soft_dice(y_true, y_pred, smooth: float = 1.0):
    """Per-image soft Dice, shape (batch,)."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
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
    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 2.0, boundary_weight: float = 0.0, name="bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.boundary_weight = boundary_weight

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1 - 1e-7)
        bce = -(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
        if self.boundary_weight:
            w = boundary_weights(y_true, weight=self.boundary_weight)
            bce = ops.sum(bce * w, axis=(1, 2, 3)) / ops.sum(w, axis=(1, 2, 3))
        else:
            bce = ops.mean(bce, axis=(1, 2, 3))
        return self.bce_weight * bce + self.dice_weight * (1.0 - soft_dice(y_true, y_pred))

    def get_config(self):
        return {**super().get_config(), "bce_weight": self.bce_weight, "dice_weight": self.dice_weight, "boundary_weight": self.boundary_weight}


def dice_metric(y_true, y_pred):
    """Hard Dice at 0.5, per image; Keras averages it over the epoch."""
    return soft_dice(y_true, ops.cast(y_pred > 0.5, "float32"), smooth=1e-6)


dice_metric.__name__ = "dice"
