"""The Carvana U-Net the study used, with size, depth and width as parameters.

Encoder level i: 2 x (Conv3x3 -> BN -> ReLU) with base*2**i filters, then MaxPool.
Centre: 2 x (Conv3x3 -> BN -> ReLU) with base*2**depth filters.
Decoder level i: UpSampling x2, concat with the encoder's level i, 3 x (Conv3x3 -> BN -> ReLU).
Head: 1x1 conv, sigmoid: channel 0 the garment, then one channel per extra output (e.g. the
person's non-garment parts, an auxiliary task that only training reads).

The study's 256-px variant is depth=5, base=32 (32..512, centre 1024); its 1024-px variant is
depth=7, base=8 (8..512, centre 1024). Fully convolutional: any input whose sides divide by
2**depth works, so a 2:3 input such as 384x256 needs no squashing.
"""

from __future__ import annotations


def _conv_bn_relu(x, filters, name):
    from keras import layers

    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_unet(input_size=(256, 256), depth: int = 5, base_filters: int = 32, name: str = "unet"):
    """A Keras model mapping (H, W, 3) normalised RGB to (H, W, 1) garment probabilities.

    input_size may be (None, None) for a model that takes any size divisible by 2**depth.
    """
    import keras
    from keras import layers

    h, w = input_size
    for side in (h, w):
        if side is not None and side % (2 ** depth):
            raise ValueError(f"input side {side} is not divisible by 2**depth = {2 ** depth}")
    inputs = keras.Input((h, w, 3), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        filters = base_filters * 2 ** level
        x = _conv_bn_relu(x, filters, f"down{level}a")
        x = _conv_bn_relu(x, filters, f"down{level}b")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    centre = base_filters * 2 ** depth
    x = _conv_bn_relu(x, centre, "centre_a")
    x = _conv_bn_relu(x, centre, "centre_b")
    for level in reversed(range(depth)):
        filters = base_filters * 2 ** level
        x = layers.UpSampling2D(2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"concat{level}")([skips[level], x])
        for k in "abc":
            x = _conv_bn_relu(x, filters, f"up{level}{k}")
    logits = layers.Conv2D(1, 1, name="head")(x)
    # float32 output keeps the loss stable under the mixed_bfloat16 policy.
    outputs = layers.Activation("sigmoid", dtype="float32", name="probability")(logits)
    return keras.Model(inputs, outputs, name=name)
