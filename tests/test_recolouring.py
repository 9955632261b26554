"""Mask recolouring for training: finding the pale-blue mask, painting it, and wiring it into the input pipeline."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdetector.datasets import LabelledFaces, load_image_folder
from maskdetector.recolouring import mask_region, recolour
from maskdetector.training import TrainingConfig, make_dataset, recolouring_regions

PALE_BLUE_RGB = (200, 225, 240)
SKIN_RGB = (225, 180, 150)


def drawn_mask_face(with_mask: bool = True) -> np.ndarray:
    """A 100x100 RGB "face" like the observations photos: skin disc, pale-blue pleated mask on its lower half."""
    image = np.full((100, 100, 3), 40, np.uint8)
    cv2.circle(image, (50, 50), 40, SKIN_RGB, -1)
    if with_mask:
        cv2.ellipse(image, (50, 68), (30, 18), 0, 0, 360, PALE_BLUE_RGB, -1)
        for y in (60, 68, 76):  # pleats: darker lines, still pale blue
            cv2.line(image, (26, y), (74, y), (180, 205, 222), 1)
    return image


def test_mask_region_covers_the_drawn_mask_and_nothing_else():
    image = drawn_mask_face()
    region = mask_region(image)
    expected = np.all(image == PALE_BLUE_RGB, axis=-1) | np.all(image == (180, 205, 222), axis=-1)
    assert region[expected].all()  # the whole mask, pleats included
    assert not region[~expected].any()  # no skin, no background


def test_no_region_without_a_pale_blue_mask():
    assert not mask_region(drawn_mask_face(with_mask=False)).any()
    speck = drawn_mask_face(with_mask=False)
    cv2.circle(speck, (50, 70), 3, PALE_BLUE_RGB, -1)  # far too small to be a mask
    assert not mask_region(speck).any()
    assert not mask_region(np.full((100, 100, 3), PALE_BLUE_RGB, np.uint8)).any()  # a pale-blue wall, not a mask


def test_mask_region_finds_the_mask_on_real_observations_photos(shared_datasets: Path):
    """On the photos it is made for, the region sits on the lower half of the face, where the mask is drawn."""
    data = load_image_folder(shared_datasets / "observations", ["with_mask", "without_mask"])
    masked = data.images[data.labels == 0][::25]
    regions = [mask_region(image) for image in masked]
    found = [r for r in regions if r.any()]
    assert len(found) >= 0.8 * len(masked)
    rows = np.arange(100)[:, np.newaxis]
    centres = [float((rows * r).sum() / r.sum()) for r in found]
    assert np.median(centres) > 50


def test_recolour_paints_only_the_region_and_keeps_the_shading():
    import tensorflow as tf

    image = drawn_mask_face()
    region = mask_region(image)
    images = tf.constant(image[np.newaxis].astype(np.float32))
    regions = tf.constant(region[np.newaxis, ..., np.newaxis])

    painted = recolour(images, regions, probability=1.0, seed=1).numpy()[0]
    outside = region == 0
    assert np.array_equal(painted[outside], image[outside].astype(np.float32))
    assert np.abs(painted[region == 1] - image[region == 1]).mean() > 20  # a new colour
    # pleats stay darker than the mask around them
    pleat, cloth = painted[60, 50].max(), painted[64, 50].max()
    assert pleat < cloth

    untouched = recolour(images, regions, probability=0.0, seed=1).numpy()[0]
    assert np.array_equal(untouched, image.astype(np.float32))


def test_training_batches_recolour_masked_images_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Through make_dataset: each masked face's mask gets a new colour; unmasked images pass unchanged."""
    import maskdetector.training as training

    masked, bare = drawn_mask_face(), drawn_mask_face(with_mask=False)
    images = np.stack([masked, bare] * 4)
    labels = np.array([0, 1] * 4)
    data = LabelledFaces(images, labels, ["with_mask", "without_mask"], ["test"] * 8, 0)
    config = TrainingConfig(data_dirs=[], out_dir=tmp_path, batch_size=8, recolour_masks=1.0)
    regions = recolouring_regions(data, np.arange(8), config)
    assert regions[labels == 0].any(axis=(1, 2, 3)).all() and not regions[labels == 1].any()

    # the other augmentation layers switched off, to look at the recolouring alone
    monkeypatch.setattr(training, "build_augmentation", lambda seed: lambda x, training: x)
    images_out, onehot = next(iter(make_dataset(images, labels, 2, config, augment=True, regions=regions)))
    region = regions[0, ..., 0] == 1
    for x, y in zip(images_out.numpy(), onehot.numpy().argmax(axis=1), strict=True):  # shuffled: go by label
        if y == 1:
            assert np.array_equal(x, bare.astype(np.float32))
        else:
            assert np.array_equal(x[~region], masked[~region].astype(np.float32))
            assert np.abs(x[region] - masked[region]).mean() > 5


def test_recolouring_off_or_without_a_masked_class_gives_no_regions(tmp_path: Path):
    images = np.stack([drawn_mask_face()] * 2)
    off = TrainingConfig(data_dirs=[], out_dir=tmp_path, recolour_masks=0.0)
    on = TrainingConfig(data_dirs=[], out_dir=tmp_path, recolour_masks=0.5)
    data = LabelledFaces(images, np.array([0, 1]), ["with_mask", "without_mask"], ["test"] * 2, 0)
    other_classes = LabelledFaces(images, np.array([0, 1]), ["cat", "dog"], ["test"] * 2, 0)
    assert recolouring_regions(data, np.arange(2), off) is None
    assert recolouring_regions(other_classes, np.arange(2), on) is None
