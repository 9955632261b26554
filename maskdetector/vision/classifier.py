"""Loading the trained classifier and labelling face crops with it, through TFLite (fast) or Keras (reference)."""

import copy
import json
import logging
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from maskdetector.constants import CLASSIFIER_BACKENDS, COLOR_ORDER, INPUT_SIZE, LABELS_FILENAME
from maskdetector.errors import ModelError
from maskdetector.types import Prediction
from maskdetector.vision.model import used_input_size, with_input_size, without_channels
from maskdetector.vision.preprocessing import faces_to_batch
from maskdetector.vision.tflite import make_interpreter, threads_here

log = logging.getLogger(__name__)

BATCH_SIZE = 64
MAX_BATCH_INTERPRETERS = 8


def read_labels(model_path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """Class names in output order and the convolution channels that never fired in training (train.py lists
    them), from the labels.json beside the model; checks the input contract."""
    labels_path = Path(model_path).with_name(LABELS_FILENAME)
    try:
        info = json.loads(labels_path.read_text())
        classes = [str(c) for c in info["classes"]]
        silent = {str(name): [int(c) for c in channels] for name, channels in info.get("silent_channels", {}).items()}
    except FileNotFoundError:
        raise ModelError(f"{labels_path} not found: run `python train.py` to train a model") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{labels_path} is not a valid labels file ({exc})") from None
    if info.get("color_order", COLOR_ORDER) != COLOR_ORDER or list(info.get("input_size", INPUT_SIZE)) != list(
        INPUT_SIZE
    ):
        raise ModelError(f"{labels_path} describes an input this code does not produce: {info}")
    return classes, silent


class TFLiteRunner:
    """The Keras model converted to a float32 TFLite model in memory, run by XNNPACK.

    Converting at load time (a second or two) means the .keras file stays the one artifact: a retrained
    model is picked up as it is. With `trim`, only what can change the output is converted: the part of the
    input that reaches it (model.used_input_size: 98x98 of the design's 100x100; exact), and none of the
    `silent` convolution channels (model.without_channels; the same output wherever they stay silent, as on
    every image they were found silent on). `trim=False` converts the whole graph, for comparison.
    Not thread-safe (its interpreters): callers share it behind a lock, or give each thread a `replica`.
    """

    def __init__(
        self, model: keras.Model, trim: bool = True, silent: Mapping[str, Sequence[int]] | None = None
    ) -> None:
        started = time.perf_counter()
        self._height, self._width = used_input_size(model) if trim else model.input_shape[1:3]
        if (self._height, self._width) != tuple(model.input_shape[1:3]):
            model = with_input_size(model, (self._height, self._width))
        if trim and silent and any(silent.values()):
            try:
                model = without_channels(model, silent)
            except (ValueError, AttributeError) as exc:
                log.warning("running every convolution channel: %s", exc)
        try:
            content = to_tflite(model)
        except Exception as exc:  # the converter raises many types; any of them means "use the Keras path"
            raise ModelError(
                f"cannot convert the model to TensorFlow Lite ({type(exc).__name__}): --backend keras runs it as is"
            ) from None
        self._content = content
        self._start()
        log.info("converted the model to TensorFlow Lite in %.1f s", time.perf_counter() - started)

    def _start(self) -> None:
        """Interpreters of their own, with this thread's interpreter thread count (tflite.threads_here)."""
        self._threads = threads_here()
        self._by_batch: dict[int, Any] = {}

    def replica(self) -> "TFLiteRunner":
        """The same converted model with interpreters of its own, for another thread (no second conversion)."""
        other = copy.copy(self)
        other._start()
        return other

    def _interpreter(self, batch_size: int) -> Any:
        """One interpreter per batch size seen, up to MAX_BATCH_INTERPRETERS of them: resizing one costs a few
        ms, more than classifying a face, and the face count changes whenever someone comes or goes."""
        interpreter = self._by_batch.get(batch_size)
        if interpreter is None:
            if len(self._by_batch) >= MAX_BATCH_INTERPRETERS:
                self._by_batch.pop(next(iter(self._by_batch)))
            interpreter = make_interpreter(model_content=self._content, num_threads=self._threads)
            details = interpreter.get_input_details()[0]
            if details["shape"][0] != batch_size:
                interpreter.resize_tensor_input(details["index"], (batch_size, self._height, self._width, 3))
                interpreter.allocate_tensors()
            self._by_batch[batch_size] = interpreter
        return interpreter

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = batch[:, : self._height, : self._width]
        interpreter = self._interpreter(len(batch))
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.ascontiguousarray(batch, np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def to_tflite(model: keras.Model) -> bytes:
    """A float32 TFLite flatbuffer of a Keras model, without quantisation, so it gives the model's own labels."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(tmp).convert()


class MaskClassifier:
    """A Keras model plus its class names; classifies all faces of a frame in one call.

    `backend` (config.CLASSIFIER_BACKENDS): "tflite" runs the model converted to TFLite (same weights, a
    fraction of an eager Keras call's time per face), "keras" calls the Keras model, the reference path.
    `silent_channels` (from labels.json) are left out of the TFLite graph (see TFLiteRunner).
    """

    def __init__(
        self,
        model: keras.Model,
        class_names: Sequence[str],
        backend: str = CLASSIFIER_BACKENDS[0],
        silent_channels: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        if backend not in CLASSIFIER_BACKENDS:
            raise ModelError(f"unknown classifier backend {backend!r}; available: {', '.join(CLASSIFIER_BACKENDS)}")
        self.model = model
        self.class_names = list(class_names)
        self.backend = backend
        self._run: Callable[[np.ndarray], np.ndarray] = (
            TFLiteRunner(model, silent=silent_channels)
            if backend == "tflite"
            else lambda batch: np.asarray(model(batch, training=False))
        )

    @classmethod
    def load(cls, model_path: str | Path, backend: str = CLASSIFIER_BACKENDS[0]) -> "MaskClassifier":
        """Load model and labels, turning every failure into a one-line ModelError."""
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"model file {path} not found: run `python train.py` to train one")
        class_names, silent = read_labels(path)
        try:
            model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{path} is not a readable Keras model ({type(exc).__name__})") from None
        n_out = model.output_shape[-1]
        if n_out != len(class_names):
            raise ModelError(f"{path} has {n_out} outputs but labels.json lists {len(class_names)} classes")
        log.info("loaded %s with classes %s", path, class_names)
        return cls(model, class_names, backend, silent)

    def replica(self) -> "MaskClassifier":
        """The same model for another thread: TFLite interpreters of its own (made with this thread's thread count,
        tflite.threads_here), without converting the model again."""
        other = copy.copy(self)
        if isinstance(self._run, TFLiteRunner):
            other._run = self._run.replica()
        return other

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a float32 batch from preprocessing; (N, n_classes)."""
        if len(batch) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return np.concatenate([self._run(batch[i : i + BATCH_SIZE]) for i in range(0, len(batch), BATCH_SIZE)])

    def predict_indices(self, inputs: np.ndarray) -> np.ndarray:
        """Most likely class index for each image already at input size (uint8 or float RGB)."""
        return self.predict_batch(inputs.astype(np.float32)).argmax(axis=1)

    def classify(self, faces_bgr: Sequence[np.ndarray]) -> list[Prediction]:
        """Label BGR face crops (any size) with one model call."""
        probs = self.predict_batch(faces_to_batch(faces_bgr))
        best = probs.argmax(axis=1)
        return [Prediction(self.class_names[i], float(p[i])) for i, p in zip(best, probs, strict=True)]
