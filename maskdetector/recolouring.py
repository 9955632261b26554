"""Mask recolouring: training faces whose mask is a pale-blue surgical mask get masks of other colours.

Every `with_mask` photo in the observations set wears the same drawn-on pale-blue mask, so a model trained
on it learns "pale blue over the mouth" and calls real black, pink or orange masks unmasked. `mask_region`
finds that pale-blue area once, when the data is loaded; `recolour` paints it a random colour during training,
keeping the mask's own shading (its pleats and edges), before the geometric augmentation moves the face.
"""

import cv2
import numpy as np
import tensorflow as tf

MASKED_CLASS = "with_mask"  # the class whose images get recoloured; the others are left alone
# Pale blue in OpenCV's HSV (hue 0-180): surgical-mask blue, not saturated, bright.
HUE_RANGE = (90, 115)
SATURATION_RANGE = (10, 90)
MIN_VALUE = 150
MIN_AREA = 0.02  # of the image: smaller pale-blue patches are not a mask on a face crop
MAX_AREA = 0.6  # of the image: larger ones are a background or a shirt


def mask_region(image_rgb: np.ndarray) -> np.ndarray:
    """A 0/1 uint8 map of the image's pale-blue mask (the largest such patch, holes filled), or all zeros.

    Takes the model's input form (preprocessing.face_to_input: uint8 RGB).
    """
    hsv = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2HSV)
    hue, saturation, value = cv2.split(hsv)
    pale_blue = (
        (hue >= HUE_RANGE[0])
        & (hue <= HUE_RANGE[1])
        & (saturation >= SATURATION_RANGE[0])
        & (saturation <= SATURATION_RANGE[1])
        & (value >= MIN_VALUE)
    ).astype(np.uint8)
    region = np.zeros_like(pale_blue)
    contours, _ = cv2.findContours(pale_blue, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if contours:
        cv2.drawContours(region, [max(contours, key=cv2.contourArea)], -1, 1, thickness=cv2.FILLED)
    if not MIN_AREA <= region.mean() <= MAX_AREA:
        region[:] = 0
    return region


def mask_regions(images_rgb: np.ndarray) -> np.ndarray:
    """`mask_region` of each image in a (N, H, W, 3) uint8 RGB batch, as (N, H, W, 1) uint8."""
    return np.stack([mask_region(image) for image in images_rgb])[..., np.newaxis]


def recolour(images: tf.Tensor, regions: tf.Tensor, probability: float, seed: int | None = None) -> tf.Tensor:
    """Paint the mask region of each image, with `probability`, one random colour times the mask's shading.

    images: float (N, H, W, 3) 0-255; regions: (N, H, W, 1) 0/1. The shading is each
    pixel's brightness over the region's mean brightness, so folds and edges stay visible on any colour.
    """
    regions = tf.cast(regions, images.dtype)
    n = tf.shape(images)[0]
    brightness = tf.reduce_max(images, axis=-1, keepdims=True)
    area = tf.maximum(tf.reduce_sum(regions, axis=(1, 2, 3), keepdims=True), 1.0)
    mean_brightness = tf.reduce_sum(brightness * regions, axis=(1, 2, 3), keepdims=True) / area
    shading = brightness / tf.maximum(mean_brightness, 1.0)
    colours = tf.random.uniform((n, 1, 1, 3), 0.0, 255.0, seed=seed)
    painted = tf.clip_by_value(colours * shading, 0.0, 255.0)
    chosen = tf.cast(tf.random.uniform((n, 1, 1, 1), seed=seed) < probability, images.dtype)
    return images + chosen * regions * (painted - images)
