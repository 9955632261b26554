"""What the network trains on: the tf.data pipeline, the augmentation of training batches, loss weights."""

from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from maskdetector.training.datasets import LabelledFaces

if TYPE_CHECKING:  # the config type only: trainer imports this module
    from maskdetector.training.trainer import TrainingConfig

AUTOTUNE = tf.data.AUTOTUNE


def build_augmentation(seed: int) -> keras.Sequential:
    """Random changes applied to training batches only: geometry, light, blur and colour."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.04, fill_mode="reflect", seed=seed),
            layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed),
            layers.RandomShear(x_factor=0.05, y_factor=0.05, seed=seed),
            layers.RandomZoom((-0.15, 0.15), fill_mode="reflect", seed=seed),
            layers.RandomBrightness(0.15, seed=seed),
            layers.RandomContrast(0.2, seed=seed),
            layers.RandomSaturation((0.35, 0.65), seed=seed),
            # masks come in every colour and print: hue rotation and some grayscale keep the model off colour
            layers.RandomHue(0.25, value_range=(0, 255), seed=seed),
            layers.RandomGrayscale(0.1, seed=seed),
            layers.RandomGaussianBlur(factor=0.3, sigma=(0.0, 1.0), seed=seed),
            # a hand, a scarf or a logo over part of the face must not decide the label
            layers.RandomErasing(factor=0.25, scale=(0.02, 0.1), fill_value=127.0, value_range=(0, 255), seed=seed),
        ],
        name="augmentation",
    )


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    config: "TrainingConfig",
    *,
    augment: bool,
    weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Decoded images already sit in memory; batches are augmented in parallel and prefetched."""
    columns = (images, keras.utils.to_categorical(labels, n_classes))
    ds = tf.data.Dataset.from_tensor_slices(columns if weights is None else (*columns, weights))
    if augment:
        ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).map(lambda x, *rest: (tf.cast(x, tf.float32), *rest), num_parallel_calls=AUTOTUNE)
    if augment:
        augmentation = build_augmentation(config.seed)
        ds = ds.map(lambda x, *rest: (augmentation(x, training=True), *rest), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def balancing_weights(labels: np.ndarray, sources: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Per-image loss weights that (partly) balance the classes within each data source; mean weight 1.

    A class with n images of its source weighs n**-power per image: power 1 balances the classes fully,
    0 leaves them as they are. Scene crops are mostly masked faces: unweighted, the model learns "real photo
    => mask"; fully balanced, each rare unmasked face weighs six masked ones and real masks get called
    unmasked. Each source keeps its share of the total weight.
    """
    weights = np.empty(len(labels), np.float32)
    for source in np.unique(sources):
        in_source = sources == source
        present, sizes = np.unique(labels[in_source], return_counts=True)
        per_image = sizes.astype(np.float64) ** -power
        per_image *= in_source.sum() / (per_image * sizes).sum()
        for label, weight in zip(present, per_image, strict=True):
            weights[in_source & (labels == label)] = weight
    return weights


def training_weights(data: LabelledFaces, idx: np.ndarray, config: "TrainingConfig") -> np.ndarray:
    """Loss weights of the images `idx`: classes balanced within each source (`balancing_weights`), then
    scene crops times `config.scene_weight`: the app sees real faces, and the folder images are partly drawn-on."""
    sources = np.array(data.sources)[idx]
    weights = balancing_weights(data.labels[idx], sources, config.balance_power)
    weights[~np.isin(sources, [d.name for d in config.data_dirs])] *= config.scene_weight
    return weights
