"""The design's CNN: two conv/pool stages, dropout and two dense layers."""

import keras
from keras import layers

from maskdetector.config import INPUT_SIZE


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
