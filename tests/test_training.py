"""train.py: architecture, artifacts of a 1-epoch run, bad input, --evaluate-only."""

import io
import json
import logging
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

import train
from maskdetector.constants import PROJECT_ROOT


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_train(capsys):
    """Run train.py's main() in this process (TensorFlow loads once for the whole suite)."""

    def run(*args: str) -> Result:
        code = train.main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for needle in needles:
        assert needle in error_lines[0]


def test_cli_error_exits_2_without_traceback(tmp_path):
    """The real process: exit code 2 and a single error line, no traceback."""
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), "--data", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: data folder {tmp_path / 'nope'} does not exist"


def test_model_has_exactly_the_designed_layers():
    from maskdetector.vision.model import build_model

    model = build_model(2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Rescaling",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dropout",
        "Dense",
        "Dense",
    ]
    conv1, conv2 = model.layers[1], model.layers[3]
    assert (conv1.filters, conv1.kernel_size, conv2.filters, conv2.kernel_size) == (200, (3, 3), 100, (3, 3))
    assert model.layers[6].rate == 0.5
    assert (model.layers[7].units, model.layers[8].units) == (50, 2)
    assert model.input_shape == (None, 100, 100, 3)
    assert model.count_params() == 2_830_852
    assert build_model(3).output_shape == (None, 3)


def test_one_epoch_run_writes_every_artifact_and_they_load(face_folder, tmp_path, run_train, caplog):
    # a corrupt JPEG and a text file among the images: skipped and counted, not fatal
    (face_folder / "with_mask" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (face_folder / "without_mask" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        result = run_train("--data", str(face_folder), "--out", str(out), "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "skipped 2 unreadable" in caplog.text
    for name in (
        "mask_detector.keras",
        "labels.json",
        "metrics.json",
        "training_curves.png",
        "confusion_matrix.png",
        "training_log.csv",
    ):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "best.weights.h5").exists()

    labels = json.loads((out / "labels.json").read_text())
    assert labels["classes"] == ["with_mask", "without_mask"]
    assert labels["input_size"] == [100, 100] and labels["color_order"] == "RGB"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert set(metrics["test"]["per_class"]) == {"with_mask", "without_mask"}
    assert np.array(metrics["test"]["confusion_matrix"]).sum() == metrics["test"]["n"]
    assert metrics["skipped_files"] == 2
    total = sum(n for split in ("train", "validation", "test") for n in metrics["counts"][split]["faces"].values())
    assert total == 20
    assert "copies of one photo may be on both sides" in metrics["split"]  # 20 look-alike generated images
    assert metrics["epochs_run"] == 1 and metrics["seed"] == 42 and metrics["training_seconds"] > 0
    assert "largest face cut out by blazeface" in metrics["data_sources"][0]["kind"]  # the default
    assert {name: c["of"] for name, c in metrics["silent_channels"].items()} == {"conv1": 200, "conv2": 100}

    from maskdetector.vision.classifier import MaskClassifier

    classifier = MaskClassifier.load(out / "mask_detector.keras")
    assert classifier.class_names == ["with_mask", "without_mask"]
    with zipfile.ZipFile(out / "mask_detector.keras") as archive, archive.open("model.weights.h5") as weights:
        assert "optimizer" not in h5py.File(io.BytesIO(weights.read()), "r")  # no optimizer state shipped
    crop = np.zeros((60, 50, 3), np.uint8)
    [prediction] = classifier.classify([crop])
    assert prediction.label in classifier.class_names and 0.5 <= prediction.confidence <= 1.0

    # --test-split re-measures the report: the same held-out images, the same answers
    rescored = run_train(
        "--evaluate-only", "--test-split", "--model", str(out / "mask_detector.keras"), "--data", str(face_folder)
    )
    assert rescored.returncode == 0, rescored.stderr
    assert f"confusion matrix (rows true, columns predicted): {metrics['test']['confusion_matrix']}" in rescored.stdout
    assert f"on {metrics['test']['n']} images" in rescored.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("crop", "how"), [([], "largest face cut out by blazeface"), (["--crop-faces", "none"], "whole")]
)
def test_evaluate_only_scores_a_folder(face_folder, untrained_model, run_train, crop, how):
    result = run_train("--evaluate-only", "--model", str(untrained_model), "--data", str(face_folder), *crop)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "with_mask" in result.stdout and "confusion matrix" in result.stdout
    assert how in result.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("missing", "does not exist"),
        ("one_class", "at least 2 class"),
        ("empty_class", "no readable images"),
    ],
)
def test_bad_data_folder_is_a_one_line_error(tmp_path, face_folder, setup, needle, run_train):
    data = tmp_path / "missing"
    if setup == "one_class":
        data = tmp_path / "one"
        (data / "with_mask").mkdir(parents=True)
    elif setup == "empty_class":
        data = face_folder
        (data / "mask_weared_incorrect").mkdir()
    result = run_train("--data", str(data), "--out", str(tmp_path / "out"), "--epochs", "1")
    assert_one_line_error(result, needle)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_is_a_one_line_error(tmp_path, face_folder, run_train):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert_one_line_error(run_train("--data", str(face_folder), "--out", str(locked / "m")), "cannot write")


def test_out_that_is_a_file_is_a_one_line_error(tmp_path, face_folder, run_train):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run_train("--data", str(face_folder), "--out", str(blocker / "model")), "cannot write")


@pytest.mark.parametrize("problem", ["missing", "not_a_model", "no_labels"])
def test_bad_model_file_is_a_one_line_error(tmp_path, face_folder, untrained_model, problem, run_train):
    model = tmp_path / "mask_detector.keras"
    if problem == "not_a_model":
        model.write_text("this is not a keras file")
        (tmp_path / "labels.json").write_text((untrained_model.parent / "labels.json").read_text())
    elif problem == "no_labels":
        model.write_bytes(untrained_model.read_bytes())
    result = run_train("--evaluate-only", "--model", str(model), "--data", str(face_folder))
    needle = {"missing": "train.py", "not_a_model": "not a readable Keras model", "no_labels": "labels.json"}[problem]
    assert_one_line_error(result, needle)


def test_silent_channels_counts_convolution_channels_that_never_fire():
    from maskdetector.vision.model import build_model, silent_channels

    model = build_model(2)
    for name in ("conv1", "conv2"):  # non-negative weights on non-negative inputs: every channel fires
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([abs(kernel), bias])
    faces = np.random.default_rng(0).integers(1, 256, (4, 100, 100, 3)).astype(np.uint8)
    assert silent_channels(model, faces) == {"conv1": [], "conv2": []}
    kernel, bias = model.get_layer("conv2").get_weights()
    bias[:7] = -1e3  # seven channels that no input can switch on
    kernel[..., 7] *= -1  # and one that can never be positive (non-negative inputs, zero bias)
    model.get_layer("conv2").set_weights([kernel, bias])
    assert silent_channels(model, faces) == {"conv1": [], "conv2": list(range(8))}


def test_training_and_inference_see_the_same_rgb_pixels(tmp_path: Path):
    """A pure-red image file and the same red in a BGR camera frame reach the model identically, as RGB."""
    import cv2

    from maskdetector.training.datasets import load_image_folder
    from maskdetector.vision.preprocessing import crop_face, faces_to_batch

    red_bgr = np.zeros((120, 120, 3), np.uint8)
    red_bgr[:, :] = (0, 0, 255)
    for name in ("red", "other"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.png"), red_bgr)

    training_input = load_image_folder(tmp_path).images[0]
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[100:220, 200:320] = red_bgr
    inference_input = faces_to_batch([crop_face(frame, (200, 100, 120, 120), margin=0.0)])[0]

    assert training_input.shape == inference_input.shape == (100, 100, 3)
    np.testing.assert_array_equal(training_input, inference_input)
    assert tuple(inference_input[50, 50]) == (255.0, 0.0, 0.0)  # red first: RGB


@pytest.mark.parametrize("power", [1.0, 0.5, 0.0])
def test_balancing_weights_within_each_source(power):
    from maskdetector.training.inputs import balancing_weights

    labels = np.array([0] * 8 + [1] * 2 + [0] * 3 + [1] * 3)
    sources = np.array(["scenes"] * 10 + ["observations"] * 6)
    weights = balancing_weights(labels, sources, power)
    scenes = sources == "scenes"
    # a rare unmasked scene face weighs (8/2)**power masked ones: fully balanced, half-way, or not at all
    assert weights[scenes & (labels == 1)][0] / weights[scenes & (labels == 0)][0] == pytest.approx(4.0**power)
    for source in ("scenes", "observations"):
        in_source = sources == source
        assert weights[in_source].sum() == pytest.approx(in_source.sum())  # each source keeps its share
    observations = ~scenes
    assert np.allclose(weights[observations], 1.0)  # already balanced: untouched
    assert weights.mean() == pytest.approx(1.0)


def test_init_model_starts_from_its_weights(face_folder, untrained_model, tmp_path, run_train):
    """Fine-tuning (your own photos, or continuing a run) starts from the given model, not from random weights."""
    import keras

    out = tmp_path / "out"
    result = run_train(
        "--data", str(face_folder), "--out", str(out), "--epochs", "1",
        "--learning-rate", "1e-12", "--init-model", str(untrained_model),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    before = keras.models.load_model(untrained_model, compile=False).get_weights()
    after = keras.models.load_model(out / "mask_detector.keras", compile=False).get_weights()
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(before, after, strict=True))
    assert json.loads((out / "metrics.json").read_text())["init_model"] == str(untrained_model)


def test_ema_saves_the_moving_average_not_the_last_weights(face_folder, untrained_model, tmp_path, run_train):
    """--ema-momentum keeps (and saves) a running average that trails the trained weights: at momentum 0.999
    it barely leaves the weights after the first step, while plain training walks on from there."""
    import keras

    def moved_from_start(*extra: str) -> float:
        out = tmp_path / f"ema{extra[-1]}"
        result = run_train(
            "--data", str(face_folder), "--out", str(out), "--epochs", "2", "--batch-size", "2",
            "--learning-rate", "1e-3", "--init-model", str(untrained_model), *extra,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        start = keras.models.load_model(untrained_model, compile=False).get_weights()
        saved = keras.models.load_model(out / "mask_detector.keras", compile=False).get_weights()
        return sum(float(np.abs(a - b).sum()) for a, b in zip(start, saved, strict=True))

    plain = moved_from_start("--ema-momentum", "0")
    averaged = moved_from_start("--ema-momentum", "0.999")
    assert 0 < averaged < 0.5 * plain
    assert json.loads((tmp_path / "ema0.999" / "metrics.json").read_text())["ema_momentum"] == 0.999


def test_init_model_with_other_classes_is_a_one_line_error(tmp_path, untrained_model, run_train):
    from conftest import make_face_folder

    three = make_face_folder(tmp_path / "three", per_class=4, classes=("a", "b", "c"))
    result = run_train("--data", str(three), "--out", str(tmp_path / "out"), "--init-model", str(untrained_model))
    assert_one_line_error(result, "predicts", "classes")


def _photo(rng: np.random.Generator) -> np.ndarray:
    """A 'photo' with structure at every scale: smooth blobs plus fine texture."""
    import cv2

    coarse = cv2.resize(rng.integers(0, 256, (6, 6, 3)).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
    return np.clip(coarse.astype(int) + rng.integers(-20, 21, (100, 100, 3)), 0, 255).astype(np.uint8)


def _with_drawn_mask(photo: np.ndarray) -> np.ndarray:
    masked = photo.copy()
    masked[55:90, 25:75] = (200, 225, 240)  # a pale-blue mask over the lower face: a quarter of the picture
    return masked


def test_copy_groups_join_drawn_on_masks_mirror_images_and_crops_of_one_photo():
    from maskdetector.training.datasets import LabelledFaces, copy_groups

    rng = np.random.default_rng(1)
    a, b, c, d = (_photo(rng) for _ in range(4))
    images = np.stack([a, _with_drawn_mask(a), a[:, ::-1], b, _with_drawn_mask(b), c, d])
    origins = ["a.jpg", "a_masked.jpg", "a_flipped.jpg", "b.jpg", "b_masked.jpg", "scene.jpg", "scene.jpg"]
    faces = LabelledFaces(images, np.array([1, 0, 1, 1, 0, 0, 1]), ["with_mask", "without_mask"], origins=origins)
    groups = copy_groups(faces)
    assert groups[0] == groups[1] == groups[2]  # a photo, its masked copy and its mirror image
    assert groups[3] == groups[4] != groups[0]  # another photo and its masked copy: a group of their own
    assert groups[5] == groups[6] not in (groups[0], groups[3])  # two faces cut from one scene photo


def test_split_never_puts_copies_of_one_photo_on_both_sides():
    """The test split scores photos the model has not seen in any form, in every class and source."""
    from maskdetector.training.datasets import LabelledFaces, copy_groups
    from maskdetector.training.splits import split
    from maskdetector.training.trainer import TrainingConfig

    rng = np.random.default_rng(2)
    photos = [_photo(rng) for _ in range(40)]
    images = np.stack([im for p in photos for im in (p, _with_drawn_mask(p))])
    labels = np.tile([1, 0], len(photos))
    faces = LabelledFaces(images, labels, ["with_mask", "without_mask"], ["observations"] * len(labels))
    groups = copy_groups(faces)
    assert len(set(groups)) == len(photos)
    parts, method = split(faces, TrainingConfig(data_dirs=[], out_dir=Path("unused")))
    assert "copies of one photo kept in one split" in method
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(labels)))
    seen = {name: set(groups[idx]) for name, idx in parts.items()}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["validation"]
    assert not seen["validation"] & seen["test"]
    for idx in parts.values():
        assert set(labels[idx]) == {0, 1} and 8 <= len(idx) <= 64


def test_split_of_images_that_all_look_alike_falls_back_to_a_plain_split(caplog):
    """Plain backgrounds can make a whole folder one group of 'copies': the split still serves every class."""
    from maskdetector.training.datasets import LabelledFaces
    from maskdetector.training.splits import split
    from maskdetector.training.trainer import TrainingConfig

    images = np.full((30, 100, 100, 3), 128, np.uint8)
    labels = np.tile([0, 1], 15)
    faces = LabelledFaces(images, labels, ["with_mask", "without_mask"], ["observations"] * 30)
    with caplog.at_level(logging.WARNING):
        parts, method = split(faces, TrainingConfig(data_dirs=[], out_dir=Path("unused")))
    assert "cannot be kept apart" in caplog.text and "may be on both sides" in method
    assert sorted(np.concatenate(list(parts.values()))) == list(range(30))
    assert all(set(labels[idx]) == {0, 1} for idx in parts.values())


def test_folder_images_are_reduced_to_their_largest_face(tmp_path):
    """Training sees faces cut out as the app cuts them; a photo without a face is kept whole."""
    import cv2

    from maskdetector.training.datasets import load_image_folder
    from maskdetector.vision.preprocessing import crop_face, face_to_input

    rng = np.random.default_rng(3)
    person, portrait = rng.integers(0, 256, (300, 200, 3), np.uint8), rng.integers(0, 256, (120, 100, 3), np.uint8)
    for name, image in (("with_mask", person), ("without_mask", portrait)):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.png"), image)
    boxes = {person.shape: [(10, 10, 20, 20), (60, 40, 80, 100)], portrait.shape: []}

    faces = load_image_folder(tmp_path, find_faces=lambda image: boxes[image.shape])

    np.testing.assert_array_equal(faces.images[0], face_to_input(crop_face(person, (60, 40, 80, 100))))
    np.testing.assert_array_equal(faces.images[1], face_to_input(portrait))
    assert faces.thumbnails is not None and faces.thumbnails.shape == (2, 32, 32)


def test_copies_are_found_on_whole_files_when_faces_are_cut_out(tmp_path):
    """A photo and its mirror image stay one group even when the detector frames their faces differently."""
    import cv2

    from maskdetector.training.datasets import LabelledFaces, copy_groups, load_image_folder

    rng = np.random.default_rng(4)
    photo, other = (cv2.resize(_photo(rng), (200, 200)) for _ in range(2))
    for name, images in (("with_mask", [photo, other]), ("without_mask", [photo[:, ::-1]])):
        (tmp_path / name).mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), image)
    framings = iter([[(0, 0, 90, 90)], [(0, 0, 90, 90)], [(60, 100, 90, 90)]])  # files load class by class

    faces = load_image_folder(tmp_path, find_faces=lambda image: next(framings))
    groups = copy_groups(faces)

    assert groups[0] == groups[2] != groups[1]  # the photo and its mirror; the other photo apart
    crops_only = LabelledFaces(faces.images, faces.labels, faces.class_names, origins=faces.origins)
    assert copy_groups(crops_only)[0] != copy_groups(crops_only)[2]  # the crops alone do not show the copy


def test_a_real_photo_is_cut_down_to_its_annotated_face(tmp_path, shared_datasets):
    """With the default detector a street photo trains as the face in it, framed like the app frames faces."""
    import shutil
    import xml.etree.ElementTree as ET

    from maskdetector.training.datasets import load_image_folder
    from maskdetector.vision.detectors import create_detector
    from maskdetector.vision.preprocessing import crop_face, face_to_input, read_image

    scenes = shared_datasets / "scenes-dev"
    box = ET.parse(scenes / "annotations" / "maksssksksss128.xml").getroot().find("object/bndbox")
    x0, y0, x1, y1 = (int(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
    for name in ("with_mask", "without_mask"):
        (tmp_path / name).mkdir()
        shutil.copy(scenes / "images" / "maksssksksss128.png", tmp_path / name / "photo.png")
    photo = read_image(scenes / "images" / "maksssksksss128.png")

    loaded = load_image_folder(tmp_path, find_faces=create_detector("blazeface").detect).images[0].astype(int)

    annotated = face_to_input(crop_face(photo, (x0, y0, x1 - x0, y1 - y0))).astype(int)
    assert np.abs(loaded - annotated).mean() < np.abs(face_to_input(photo).astype(int) - annotated).mean() / 2


def test_test_split_without_evaluate_only_is_a_usage_error(face_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--data", str(face_folder), "--test-split"])
    assert exit_info.value.code == 2
    assert "--test-split goes with --evaluate-only" in capsys.readouterr().err


def test_scene_crops_weigh_scene_weight_times_a_balanced_folder_image():
    from maskdetector.training.datasets import LabelledFaces
    from maskdetector.training.inputs import training_weights
    from maskdetector.training.trainer import TrainingConfig

    labels = np.array([0, 0, 1, 1, 0, 0, 0, 1])
    sources = ["observations"] * 4 + ["scenes-dev"] * 4
    faces = LabelledFaces(np.zeros((8, 100, 100, 3), np.uint8), labels, ["with_mask", "without_mask"], sources)
    config = TrainingConfig(data_dirs=[Path("data/observations")], out_dir=Path("unused"), scene_weight=1.5)
    weights = training_weights(faces, np.arange(8), config)
    np.testing.assert_allclose(weights[:4], 1.0)  # balanced folder: weight 1 each
    assert weights[4:].sum() == pytest.approx(1.5 * 4)  # the scene source's total weight, times 1.5
    assert weights[7] > weights[4]  # its rare unmasked face still weighs more than a masked one


def test_a_two_class_model_fine_tunes_into_three_classes(tmp_path, untrained_model):
    """--init-model of a with/without-mask model starts a 3-class model: the shared classes keep their output
    weights, the new class starts as a less likely copy of without_mask."""
    from maskdetector.training.trainer import starting_weights
    from maskdetector.vision.classifier import MaskClassifier

    start = MaskClassifier.load(untrained_model)
    names = ["with_mask", "without_mask", "mask_weared_incorrect"]
    weights = starting_weights(start, names)
    old_kernel, old_bias = start.model.get_weights()[-2:]
    kernel, bias = weights[-2:]
    assert kernel.shape == (old_kernel.shape[0], 3)
    order = [list(start.class_names).index(n) for n in names[:2]]
    assert np.array_equal(kernel[:, :2], old_kernel[:, order])
    assert np.array_equal(kernel[:, 2], old_kernel[:, order[1]]) and bias[2] < bias[1]


def test_adding_a_source_never_moves_another_sources_images_between_splits():
    """Each source is split on its own: a leave-one-source-out run tests the other sources on the same images."""
    from maskdetector.training.datasets import LabelledFaces, concatenate
    from maskdetector.training.splits import split
    from maskdetector.training.trainer import TrainingConfig

    rng = np.random.default_rng(3)

    def source(name: str, n: int) -> LabelledFaces:
        images = np.stack([_photo(rng) for _ in range(n)])
        return LabelledFaces(images, np.tile([0, 1], n // 2), ["with_mask", "without_mask"], [name] * n)

    a, b = source("a", 40), source("b", 30)
    config = TrainingConfig(data_dirs=[], out_dir=Path("unused"))
    alone, _ = split(a, config)
    together, _ = split(concatenate([a, b]), config)
    for name in alone:
        assert list(alone[name]) == [i for i in together[name] if i < len(a)]


def _scene_folder(root: Path) -> Path:
    """A VOC scenes folder of one generated photo with one face of each scene class, 60 px each."""
    import cv2

    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    cv2.imwrite(str(root / "images" / "s.png"), np.random.default_rng(4).integers(0, 256, (120, 300, 3), np.uint8))
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x}</xmin><ymin>30</ymin><xmax>{x + 60}</xmax>"
        f"<ymax>90</ymax></bndbox></object>"
        for name, x in (("with_mask", 10), ("without_mask", 110), ("mask_weared_incorrect", 210))
    )
    (root / "annotations" / "s.xml").write_text(f"<annotation><filename>s.png</filename>{objects}</annotation>")
    return root


def test_a_two_class_model_scored_on_three_class_scenes_counts_worn_incorrectly_as_not_compliant(
    tmp_path, untrained_model
):
    from maskdetector.training.scoring import score_scenes
    from maskdetector.vision.classifier import MaskClassifier

    scenes = _scene_folder(tmp_path / "scenes")
    _, scores = score_scenes(MaskClassifier.load(untrained_model), scenes, holdout_percent=0, all_images=True)
    assert scores["n"] == 3 and list(scores["per_class"]) == ["with_mask", "without_mask", "mask_weared_incorrect"]
    matrix = np.array(scores["confusion_matrix"])
    assert matrix.sum(axis=1).tolist() == [1, 1, 1] and matrix[:, 2].sum() == 0  # never predicted: not a class
    said_mask = matrix[:, 0]
    assert scores["compliance_accuracy"] == pytest.approx((said_mask[0] + 2 - said_mask[1:].sum()) / 3)


def test_leave_out_trains_without_a_source_and_scores_all_of_it(tmp_path, run_train):
    from conftest import make_face_folder

    kept = make_face_folder(tmp_path / "kept")
    other = make_face_folder(tmp_path / "other", per_class=6)
    out = tmp_path / "out"
    result = run_train(
        "--data", str(kept), "--data", str(other), "--leave-out", "other", "--crop-faces", "none",
        "--epochs", "1", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["test_by_source"]) == ["kept"]
    [(title, scores)] = metrics["left_out"].items()
    assert "other" in title and scores["n"] == 12
    assert "left out of training" in result.stdout and (out / "mistakes.png").is_file()


def test_leave_out_of_an_unknown_source_is_a_usage_error(face_folder, capsys):
    with pytest.raises(SystemExit) as exc:
        train.parse_args(["--data", str(face_folder), "--leave-out", "nope"])
    assert exc.value.code == 2 and "not one of the sources" in capsys.readouterr().err
