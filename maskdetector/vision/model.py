"""The design's CNN: two conv/pool stages, dropout and two dense layers."""

import keras
import numpy as np
from keras import layers

from maskdetector.constants import INPUT_SIZE


def build_model(n_classes: int) -> keras.Model:
    """Input 100x100x3 RGB in 0..255 -> class probabilities.

    The Rescaling layer (no weights) keeps pixel scaling inside the saved model, so callers only
    need preprocessing.face_to_input.
    """
    height, width = INPUT_SIZE
    return keras.Sequential(
        [
            keras.Input(shape=(height, width, 3), name="face_rgb"),
            layers.Rescaling(1.0 / 255, name="rescale"),
            layers.Conv2D(200, (3, 3), activation="relu", name="conv1"),
            layers.MaxPooling2D((2, 2), name="pool1"),
            layers.Conv2D(100, (3, 3), activation="relu", name="conv2"),
            layers.MaxPooling2D((2, 2), name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dropout(0.5, name="dropout"),
            layers.Dense(50, activation="relu", name="dense"),
            layers.Dense(n_classes, activation="softmax", name="probabilities"),
        ],
        name="mask_cnn",
    )


def used_input_size(model: keras.Model) -> tuple[int, int]:
    """Height and width of the top-left part of the input that can reach the output.

    Valid convolutions and 2x2 pooling drop the last row and column whenever a size is odd: the design's 47x47
    conv2 output pools to 23x23, so its last row and column are never used, and with them the input's last two
    rows and columns (100x100 -> 98x98, 4% less arithmetic, the same output). Any layer this function does
    not know about makes it answer the whole input.
    """
    whole = (model.input_shape[1], model.input_shape[2])
    if not isinstance(model, keras.Sequential):
        return whole
    size = list(whole)
    stages: list[tuple[tuple[int, int], tuple[int, int]]] = []  # (window, stride) of each spatial layer
    for layer in model.layers:
        if isinstance(layer, layers.Flatten):
            break
        if isinstance(layer, (layers.Rescaling, layers.Dropout, layers.Activation, layers.ReLU)):
            continue
        if isinstance(layer, layers.Conv2D) and layer.padding == "valid" and tuple(layer.dilation_rate) == (1, 1):
            window, stride = tuple(layer.kernel_size), tuple(layer.strides)
        elif isinstance(layer, layers.MaxPooling2D) and layer.padding == "valid":
            window, stride = tuple(layer.pool_size), tuple(layer.strides)
        else:
            return whole
        stages.append((window, stride))
        size = [(n - k) // s + 1 for n, k, s in zip(size, window, stride, strict=True)]
    else:
        return whole  # no Flatten: the output keeps a spatial layout
    for window, stride in reversed(stages):
        size = [(n - 1) * s + k for n, k, s in zip(size, window, stride, strict=True)]
    return size[0], size[1]


def with_input_size(model: keras.Sequential, size: tuple[int, int]) -> keras.Sequential:
    """The same layers and weights on a different input size (see used_input_size)."""
    channels = model.input_shape[-1]
    clone = keras.Sequential(
        [keras.Input(shape=(*size, channels))]
        + [layer.__class__.from_config(layer.get_config()) for layer in model.layers],
        name=model.name,
    )
    clone.set_weights(model.get_weights())
    return clone


def silent_channels(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> dict[str, list[int]]:
    """Indices of the channels of each ReLU convolution whose output is 0 on every one of `images`.

    A channel that never fires on the training images gets no gradient and stays silent for good (the
    "dying ReLU"): capacity the model has lost. Too high a learning rate silences most of conv2 in the first
    epoch, so training reports the count.
    """
    convs = [
        layer
        for layer in model.layers
        if isinstance(layer, layers.Conv2D) and layer.get_config()["activation"] == "relu"
    ]
    if not convs or not len(images):
        return {}
    probe = keras.Model(model.inputs[0], [layer.output for layer in convs])
    peaks = [np.zeros(layer.filters, np.float32) for layer in convs]
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start : start + batch_size].astype(np.float32), training=False)
        for peak, output in zip(peaks, outputs if len(convs) > 1 else [outputs], strict=True):
            np.maximum(peak, np.asarray(output).max(axis=(0, 1, 2)), out=peak)
    return {layer.name: np.flatnonzero(peak <= 0).tolist() for layer, peak in zip(convs, peaks, strict=True)}
