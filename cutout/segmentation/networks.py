"""The architectures a stage can have, by the name model.json and `cutout train --arch` use."""

from __future__ import annotations

ARCHS = ("unet", "deeplab")


def build(arch: str, input_size, depth: int = 5, base_filters: int = 16, name: str | None = None):
    """The Keras model of `arch` at `input_size` (height, width); depth is the U-Net's alone."""
    if arch == "unet":
        from cutout.segmentation.unet import build_unet

        return build_unet(input_size, depth, base_filters, name=name or "unet")
    if arch == "deeplab":
        from cutout.segmentation.deeplab import build_deeplab_largefov

        return build_deeplab_largefov(input_size, base_filters, name=name or "deeplab")
    raise ValueError(f"unknown architecture {arch!r}: one of {', '.join(ARCHS)}")

