"""Loading the trained classifier and labelling face crops with it."""

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from maskdetector.config import COLOR_ORDER, INPUT_SIZE, LABELS_FILENAME
from maskdetector.errors import ModelError
from maskdetector.preprocessing import faces_to_batch

log = logging.getLogger(__name__)

BATCH_SIZE = 64


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float


def read_labels(model_path: Path) -> list[str]:
    """Class names in output order, from the labels.json beside the model; checks the input contract."""
    labels_path = Path(model_path).with_name(LABELS_FILENAME)
    try:
        info = json.loads(labels_path.read_text())
        classes = [str(c) for c in info["classes"]]
    except FileNotFoundError:
        raise ModelError(f"{labels_path} not found: run `python train.py` to train a model") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{labels_path} is not a valid labels file ({exc})") from None
    if info.get("color_order", COLOR_ORDER) != COLOR_ORDER or list(info.get("input_size", INPUT_SIZE)) != list(
        INPUT_SIZE
    ):
        raise ModelError(f"{labels_path} describes an input this code does not produce: {info}")
    return classes


class MaskClassifier:
    """A Keras model plus its class names; classifies all faces of a frame in one call."""

    def __init__(self, model: keras.Model, class_names: Sequence[str]) -> None:
        self.model = model
        self.class_names = list(class_names)

    @classmethod
    def load(cls, model_path: str | Path) -> "MaskClassifier":
        """Load model and labels, turning every failure into a one-line ModelError."""
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"model file {path} not found: run `python train.py` to train one")
        class_names = read_labels(path)
        try:
            model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{path} is not a readable Keras model ({type(exc).__name__})") from None
        n_out = model.output_shape[-1]
        if n_out != len(class_names):
            raise ModelError(f"{path} has {n_out} outputs but labels.json lists {len(class_names)} classes")
        log.info("loaded %s with classes %s", path, class_names)
        return cls(model, class_names)

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a float32 batch from preprocessing; (N, n_classes)."""
        if len(batch) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        out = [
            np.asarray(self.model(batch[i : i + BATCH_SIZE], training=False)) for i in range(0, len(batch), BATCH_SIZE)
        ]
        return np.concatenate(out)

    def predict_indices(self, inputs: np.ndarray) -> np.ndarray:
        """Most likely class index for each image already at input size (uint8 or float RGB)."""
        return self.predict_batch(inputs.astype(np.float32)).argmax(axis=1)

    def classify(self, faces_bgr: Sequence[np.ndarray]) -> list[Prediction]:
        """Label BGR face crops (any size) with one model call."""
        probs = self.predict_batch(faces_to_batch(faces_bgr))
        best = probs.argmax(axis=1)
        return [Prediction(self.class_names[i], float(p[i])) for i, p in zip(best, probs, strict=True)]
