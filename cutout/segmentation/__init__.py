"""The segmentation model: its architectures by name (networks: the U-Net in unet, the study's
benchmark DeepLab-LargeFOV in deeplab), the study's preprocessing (preprocess), saving
and loading a stage (artefact), the two-pass segmenter and its confidence (segmenter), and
per-process TensorFlow set-up (runtime).

Importing this package loads neither TensorFlow nor Keras; they load when a model is built.
The producer, reports and migrations never import it.
"""
