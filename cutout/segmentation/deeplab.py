"""DeepLab-LargeFOV (Chen et al., ICLR 2015), the study's benchmark, narrowed for a CPU.

VGG-16's five convolution blocks, the last two pools at stride 1 so the features stay at 1/8 of
the input, the fifth block's convolutions atrous at rate 2; then "fc6" as a 3x3 convolution at
rate 12, which gives the large field of view the model is named for, "fc7" 1x1, and a 1x1
sigmoid head whose map is upsampled bilinearly (x8) to the input. Batch normalisation follows
every convolution: the original was fine-tuned from ImageNet weights, these are trained from
nothing, as the U-Net is. Widths are base_filters x (1, 2, 4, 8, 8) and 16 x base_filters for
fc6/fc7 (the original: 64 and 1024).
"""

from __future__ import annotations

STRIDE = 8  # the input's sides divide by this


def _conv_bn_relu(x, filters, name, kernel=3, rate=1):
    from keras import layers

    x = layers.Conv2D(filters, kernel, padding="same", dilation_rate=rate, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_deeplab_largefov(input_size=(256, 256), base_filters: int = 16, rate: int = 12, dropout: float = 0.5,
                           name: str = "deeplab"):
    """A Keras model mapping (H, W, 3) normalised RGB to (H, W, 1) garment probabilities."""
    import keras
    from keras import layers

    h, w = input_size
    for side in (h, w):
        if side is not None and side % STRIDE:
            raise ValueError(f"input side {side} is not divisible by {STRIDE}")
    inputs = keras.Input((h, w, 3), name="image")
    x = inputs
    blocks = [(1, 2, 2, 1), (2, 2, 2, 1), (4, 3, 2, 1), (8, 3, 1, 1), (8, 3, 1, 2)]  # width, convs, pool stride, rate
    for i, (width, convs, stride, conv_rate) in enumerate(blocks, start=1):
        for k in range(convs):
            x = _conv_bn_relu(x, base_filters * width, f"conv{i}_{k + 1}", rate=conv_rate)
        x = layers.MaxPooling2D(3, strides=stride, padding="same", name=f"pool{i}")(x)
    x = _conv_bn_relu(x, 16 * base_filters, "fc6", rate=rate)
    x = layers.Dropout(dropout, name="drop6")(x)
    x = _conv_bn_relu(x, 16 * base_filters, "fc7", kernel=1)
    x = layers.Dropout(dropout, name="drop7")(x)
    logits = layers.Conv2D(1, 1, name="fc8")(x)
    logits = layers.UpSampling2D(STRIDE, interpolation="bilinear", name="upsample")(logits)
    # float32 output keeps the loss stable under the mixed_bfloat16 policy.
    outputs = layers.Activation("sigmoid", dtype="float32", name="probability")(logits)
    return keras.Model(inputs, outputs, name=name)
