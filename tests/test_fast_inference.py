"""The fast paths give the same answers as the slow ones: the TFLite classifier vs the Keras model, Haar on a
shrunk frame vs the full frame, and the settings that choose the classifier backend."""

import json

import numpy as np
import pytest
from conftest import SHARED

from maskdetector.constants import DEFAULT_MODEL_PATH, HOLDOUT_PERCENT
from maskdetector.errors import ModelError, UserError
from maskdetector.settings import resolve
from maskdetector.training.datasets import load_scene_crops
from maskdetector.vision.analyzers import build_analyzer
from maskdetector.vision.boxes import box_iou, resized
from maskdetector.vision.classifier import MaskClassifier
from maskdetector.vision.detectors import create_detector
from maskdetector.vision.preprocessing import read_image

PHOTO = "maksssksksss128"  # one large frontal face the default cascade finds


@pytest.fixture(scope="module")
def committed_model() -> tuple[MaskClassifier, MaskClassifier]:
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip("no committed model")
    return MaskClassifier.load(DEFAULT_MODEL_PATH, "tflite"), MaskClassifier.load(DEFAULT_MODEL_PATH, "keras")


def test_tflite_float_gives_the_keras_probabilities_for_any_batch_size(untrained_model):
    fast, reference = (
        MaskClassifier.load(untrained_model, "tflite-float"),
        MaskClassifier.load(untrained_model, "keras"),
    )
    assert fast.backend == "tflite-float" and reference.backend == "keras"
    images = np.random.default_rng(0).integers(0, 256, (7, 100, 100, 3)).astype(np.float32)
    for n in (1, 3, 1, 7, 0):  # the interpreter is resized whenever the face count changes
        np.testing.assert_allclose(fast.predict_batch(images[:n]), reference.predict_batch(images[:n]), atol=1e-5)
    assert fast.predict_batch(images[:0]).shape == (0, 2)


def test_the_whole_graph_and_its_98x98_copy_are_converted_apart():
    """The conversion cache tells the two apart: they have the same weights but not the same input."""
    from maskdetector.vision.classifier import TFLiteRunner
    from maskdetector.vision.model import build_model

    model = build_model(2)
    whole, trimmed = TFLiteRunner(model, trim=False), TFLiteRunner(model)
    images = np.random.default_rng(2).integers(0, 256, (1, 100, 100, 3)).astype(np.float32)  # the graphs' own batch
    np.testing.assert_allclose(whole(images), trimmed(images), atol=1e-5)


def test_only_the_input_pixels_that_reach_the_output_are_fed_to_tflite():
    import keras
    from keras import layers

    from maskdetector.vision.model import build_model, used_input_size

    model = build_model(2)
    assert used_input_size(model) == (98, 98)  # 47x47 conv2 output pools to 23x23: its last row/column is unused
    images = np.random.default_rng(1).integers(0, 256, (2, 100, 100, 3)).astype(np.float32)
    changed = images.copy()
    changed[:, 98:, :, :] = 0
    changed[:, :, 98:, :] = 255
    np.testing.assert_array_equal(model(images), model(changed))  # so dropping them is exact
    changed[:, 97, 0, :] += 50
    assert not np.array_equal(model(images), model(changed))  # and 98 is the smallest exact size
    even = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(2, 3), layers.MaxPooling2D(2), layers.Flatten()])
    assert used_input_size(even) == (8, 8)  # 6x6 pools to 3x3: every pixel counts
    same = keras.Sequential([keras.Input((9, 9, 3)), layers.Conv2D(2, 3, padding="same"), layers.Flatten()])
    assert used_input_size(same) == (9, 9)  # not a layer it reasons about: the whole input


def test_a_labels_file_that_lists_silent_channels_still_loads(tmp_path):
    """Models trained before the channel pruning went list their silent channels in labels.json; they load as
    they are and give the Keras model's probabilities."""
    from maskdetector.vision.model import build_model

    model = build_model(2)
    model.save(tmp_path / "mask_detector.keras")
    labels = {"classes": ["with_mask", "without_mask"], "silent_channels": {"conv1": [3, 150], "conv2": [0, 7]}}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    fast = MaskClassifier.load(tmp_path / "mask_detector.keras", "tflite-float")
    images = np.random.default_rng(3).integers(0, 256, (5, 100, 100, 3)).astype(np.float32)
    np.testing.assert_allclose(fast.predict_batch(images), model(images), atol=5e-5)


@pytest.fixture(scope="module")
def held_out_crops(committed_model):
    scenes = SHARED / "scenes-dev"
    if not scenes.is_dir():
        pytest.skip("../shared/datasets is not beside the project")
    names = committed_model[0].class_names
    crops = load_scene_crops(scenes, names, holdout=True, holdout_percent=HOLDOUT_PERCENT, min_side=0)
    return crops.images.astype(np.float32)


def test_tflite_float_agrees_with_keras_on_real_scenes_dev_crops(committed_model, held_out_crops):
    reference = committed_model[1]
    fast = MaskClassifier(reference.model, reference.class_names, "tflite-float")
    fast_probs, reference_probs = fast.predict_batch(held_out_crops), reference.predict_batch(held_out_crops)
    np.testing.assert_array_equal(fast_probs.argmax(axis=1), reference_probs.argmax(axis=1))
    assert np.abs(fast_probs - reference_probs).max() < 1e-4
    one = held_out_crops[:1]  # batch 1, the live stream's usual case
    np.testing.assert_allclose(fast.predict_batch(one), reference.predict_batch(one), atol=1e-4)


def test_the_int8_path_gives_the_keras_label_on_every_held_out_crop_alone_or_in_batches(
    committed_model, held_out_crops
):
    fast, reference = committed_model
    assert fast.backend == "tflite"
    assert len(held_out_crops) > 500  # every face size, the smallest included
    expected = reference.predict_batch(held_out_crops).argmax(axis=1)
    batched = fast.predict_batch(held_out_crops)  # batches of 64 (and the rest)
    np.testing.assert_array_equal(batched.argmax(axis=1), expected)
    alone = np.concatenate([fast.predict_batch(held_out_crops[i : i + 1]) for i in range(len(held_out_crops))])
    np.testing.assert_array_equal(alone.argmax(axis=1), expected)  # batch 1, the live stream's usual case
    for size in (2, 3, 5):  # one interpreter per batch size: each gives the same labels
        sized = np.concatenate([fast.predict_batch(held_out_crops[i : i + size]) for i in range(0, 60, size)])
        np.testing.assert_array_equal(sized.argmax(axis=1), expected[: len(sized)])
    assert np.abs(batched - reference.predict_batch(held_out_crops)).max() < 0.05  # confidences stay close
    # few faces need the float32 check (the 3-class model: 84 of 2 x 635, 6.6%)
    assert fast._run.checked < 0.10 * 2 * len(held_out_crops)


def test_the_int8_path_serves_any_number_of_classes(tmp_path):
    from maskdetector.vision.model import build_model

    build_model(3).save(tmp_path / "mask_detector.keras")
    classes = ["with_mask", "without_mask", "mask_weared_incorrect"]
    (tmp_path / "labels.json").write_text(json.dumps({"classes": classes}))
    fast = MaskClassifier.load(tmp_path / "mask_detector.keras")
    reference = MaskClassifier.load(tmp_path / "mask_detector.keras", "keras")
    images = np.random.default_rng(4).integers(0, 256, (9, 100, 100, 3)).astype(np.float32)
    np.testing.assert_array_equal(fast.predict_batch(images).argmax(1), reference.predict_batch(images).argmax(1))
    (prediction,) = fast.classify([images[0].astype(np.uint8)])
    assert prediction.label in classes and len(prediction.probabilities) == 3


def test_unknown_backend_is_refused(untrained_model):
    with pytest.raises(ModelError, match="unknown classifier backend 'onnx'"):
        MaskClassifier.load(untrained_model, "onnx")
    with pytest.raises(
        UserError, match="--backend / MASKDETECTOR_BACKEND: Input should be 'tflite', 'tflite-float' or 'keras'"
    ):
        resolve({"BACKEND": "onnx"})


def test_backend_setting_reaches_the_classifier(untrained_model, monkeypatch):
    assert resolve({})["BACKEND"] == "tflite"
    monkeypatch.setenv("MASKDETECTOR_BACKEND", "keras")
    settings = resolve({"MODEL": str(untrained_model), "DETECTOR": "haar"})
    analyzer = build_analyzer(settings)
    assert analyzer.classifier.classifier.backend == "keras"


@pytest.mark.parametrize("name", ["haar", "haar-multi"])
def test_haar_on_a_shrunk_frame_finds_the_same_faces_in_frame_coordinates(shared_datasets, name):
    photo = read_image(shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png")
    frame = resized(photo, 1280 / photo.shape[1])  # a large frame: searched at a quarter of its width
    full = create_detector(name, min_face_size=24, detect_width=None).detect(frame)
    shrunk = create_detector(name, min_face_size=24, detect_width=320).detect(frame)
    assert full and shrunk
    height, width = frame.shape[:2]
    for x, y, w, h in shrunk:
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
    for box in full:  # every face of the full frame is found again, at the same place
        assert max(box_iou(box, found) for found in shrunk) > 0.6
    assert max(w for _, _, w, _ in shrunk) > 320 / 2  # the face is large in frame pixels, not in the shrunk ones


def test_frames_narrower_than_detect_width_are_searched_as_they_are(shared_datasets):
    photo = read_image(shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png")
    narrow = resized(photo, 300 / photo.shape[1])
    assert create_detector("haar", detect_width=320).detect(narrow) == create_detector(
        "haar", detect_width=None
    ).detect(narrow)
