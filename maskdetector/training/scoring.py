"""Scoring trained models: test splits per source, held-out scene crops, whole folders and left-out sources."""

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from maskdetector.constants import FACE_MARGIN
from maskdetector.errors import UserError
from maskdetector.training.datasets import (
    SCENE_CLASSES,
    LabelledFaces,
    concatenate,
    load_image_folder,
    load_scene_crops,
)
from maskdetector.training.metrics import format_scores, score
from maskdetector.types import Box
from maskdetector.vision.classifier import MaskClassifier
from maskdetector.vision.detectors import create_detector

log = logging.getLogger(__name__)

# Real faces measured for the report: crops with both sides at least this long (webcam faces are large).
REAL_EVAL_MIN_SIDE = 32


def face_finder(detector: str | None) -> Callable[[np.ndarray], list[Box]] | None:
    """The `detect` of the named face detector, for cutting faces out of folder images (None: keep them whole)."""
    return create_detector(detector).detect if detector else None


def folder_kind(crop_faces: str | None) -> str:
    """How class-folder images were read, for the report."""
    if not crop_faces:
        return "class folders, whole images"
    return f"class folders, the largest face cut out by {crop_faces} (margin {FACE_MARGIN}); whole if none found"


def load_real_holdout(scenes_dir: Path, class_names: list[str], holdout_percent: int) -> LabelledFaces:
    """Face crops (both sides >= REAL_EVAL_MIN_SIDE) of the scene images training never sees: the real-photo test."""
    return load_scene_crops(
        scenes_dir, class_names, holdout=True, holdout_percent=holdout_percent, min_side=REAL_EVAL_MIN_SIDE
    )


def load_for(model_path: Path, class_names: list[str]) -> MaskClassifier:
    """Load a model that must predict exactly the data's classes (UserError otherwise)."""
    classifier = MaskClassifier.load(model_path)
    if list(classifier.class_names) != class_names:
        raise UserError(f"{model_path} predicts {list(classifier.class_names)}, but the data has classes {class_names}")
    return classifier


def score_split(classifier: MaskClassifier, data: LabelledFaces, idx: np.ndarray) -> tuple[np.ndarray, dict]:
    """Predictions for the images `idx` of `data`, and their scores: all together ("test") and per data source
    ("test_by_source")."""
    predicted = classifier.predict_indices(data.images[idx])
    truth, sources, names = data.labels[idx], np.array(data.sources)[idx], data.class_names
    return predicted, {
        "test": score(truth, predicted, names),
        "test_by_source": {s: score(truth[sources == s], predicted[sources == s], names) for s in sorted(set(sources))},
    }


def score_folder(classifier: MaskClassifier, data_dir: Path, crop_faces: str | None) -> tuple[str, dict]:
    """A title and the scores of a labelled folder, faces cut out as in training."""
    data = load_image_folder(data_dir, classifier.class_names, face_finder(crop_faces))
    scores = score(data.labels, classifier.predict_indices(data.images), data.class_names)
    return f"{data_dir} ({folder_kind(crop_faces)})", scores


def score_scenes(
    classifier: MaskClassifier, scenes_dir: Path, holdout_percent: int, all_images: bool
) -> tuple[str, dict]:
    """A title and the scores of a scene folder's face crops (>= REAL_EVAL_MIN_SIDE): its held-out images, or
    all of them for a source the model never saw. Faces of a class the model lacks (worn incorrectly, for a
    2-class model) are kept: they count as not compliant."""
    names = classifier.class_names
    truth = sorted(set(names) | set(SCENE_CLASSES), key=list(SCENE_CLASSES).index)
    crops = concatenate(
        [
            load_scene_crops(scenes_dir, truth, holdout=h, holdout_percent=holdout_percent, min_side=REAL_EVAL_MIN_SIDE)
            for h in ((True, False) if all_images else (True,))
        ]
    )
    if not len(crops):
        raise UserError(f"no face crops of the model's classes in {scenes_dir}")
    predicted = np.array([truth.index(names[k]) for k in classifier.predict_indices(crops.images)], np.int64)
    which = "all" if all_images else "held-out"
    return f"{scenes_dir} ({which} face crops >= {REAL_EVAL_MIN_SIDE} px)", score(crops.labels, predicted, truth)


def evaluate(
    model_path: Path,
    data_dirs: Sequence[Path],
    scenes_dirs: Sequence[Path],
    holdout_percent: int,
    crop_faces: str | None,
    *,
    all_scene_images: bool = False,
) -> dict:
    """Scores of an existing model on labelled folders and on scene folders (see score_folder, score_scenes)."""
    classifier = MaskClassifier.load(model_path)
    results = dict(score_folder(classifier, d, crop_faces) for d in data_dirs)
    results.update(score_scenes(classifier, d, holdout_percent, all_scene_images) for d in scenes_dirs)
    return results


def summary(metrics: dict) -> str:
    """The report of a training run as terminal text."""
    blocks = [format_scores("test split", metrics["test"])]
    blocks += [format_scores(f"test split, {s}", m) for s, m in metrics["test_by_source"].items()]
    for source, scores in metrics.get("real_holdout", {}).items():
        blocks.append(format_scores(f"real held-out scene crops, {source}", scores))
    for title, scores in metrics.get("left_out", {}).items():
        blocks.append(format_scores(f"left out of training: {title}", scores))
    blocks.append(
        f"trained {metrics['epochs_run']} epochs in {metrics['training_seconds']} s "
        f"({metrics['seconds_per_epoch']} s/epoch), best epoch {metrics['best_epoch']}"
    )
    if metrics.get("silent_channels"):
        counts = ", ".join(f"{name} {c['silent']}/{c['of']}" for name, c in metrics["silent_channels"].items())
        blocks.append(f"channels that never fire on the training images: {counts}")
    return "\n".join(blocks)
