"""Loading the trained classifier and labelling face crops with it, through TFLite (fast) or Keras (reference)."""

import copy
import hashlib
import json
import logging
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import keras
import numpy as np

from maskdetector.constants import CLASSIFIER_BACKENDS, COLOR_ORDER, INPUT_SIZE, LABELS_FILENAME
from maskdetector.errors import ModelError
from maskdetector.types import Prediction
from maskdetector.vision.model import used_input_size, with_input_size
from maskdetector.vision.preprocessing import faces_to_batch
from maskdetector.vision.tensorflow_runtime import native_stderr_silenced
from maskdetector.vision.tflite import make_interpreter, threads_here

log = logging.getLogger(__name__)

BATCH_SIZE = 64
MAX_BATCH_INTERPRETERS = 8
# A face whose two most likely classes are closer than this in the int8 model is classified again in float32
# (TFLiteRunner): the int8 probabilities were at most 0.024 from Keras's on all 2002 scenes-dev crops, so below
# this margin lies every face whose label int8 rounding could change, with eight times the room.
CHECK_MARGIN = 0.2
CALIBRATION_IMAGES = 64


def read_labels(model_path: Path) -> list[str]:
    """Class names in output order, from the labels.json beside the model; checks the input contract. (Older
    labels files also list the convolution channels that never fired in training: they are not used.)"""
    labels_path = Path(model_path).with_name(LABELS_FILENAME)
    try:
        info = json.loads(labels_path.read_text())
        classes = [str(c) for c in info["classes"]]
    except FileNotFoundError:
        raise ModelError(f"{labels_path} not found: run `python train.py` to train a model") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{labels_path} is not a valid labels file ({exc})") from None
    if info.get("color_order", COLOR_ORDER) != COLOR_ORDER or list(info.get("input_size", INPUT_SIZE)) != list(
        INPUT_SIZE
    ):
        raise ModelError(f"{labels_path} describes an input this code does not produce: {info}")
    return classes


class TFLiteRunner:
    """The Keras model converted to TFLite in memory, run by XNNPACK: float32, or int8 with a float32 check.

    Converting at load time (a few seconds) means the .keras file stays the one artifact: a retrained
    model is picked up as it is. With `trim`, only the part of the input that can change the output is
    converted (model.used_input_size: 98x98 of the design's 100x100; exact). `trim=False` converts the whole
    graph, for comparison.
    With `int8`, faces go through an int8 copy of the model first (XNNPACK's integer kernels: about a fifth
    of the float32 time per face on this project's CPUs, docs/performance.md), and every face whose two most
    likely classes are closer than CHECK_MARGIN there is classified again by the float32 model, whose answer
    it gets: int8 rounding moves a probability by at most 0.02 on every scenes-dev crop, so it cannot change a
    label outside that band, and inside it the float32 model decides.
    Not thread-safe (its interpreters): callers share it behind a lock, or give each thread a `replica`.
    """

    def __init__(
        self,
        model: keras.Model,
        trim: bool = True,
        int8: bool = False,
    ) -> None:
        started = time.perf_counter()
        self._height, self._width = used_input_size(model) if trim else model.input_shape[1:3]
        if (self._height, self._width) != tuple(model.input_shape[1:3]):
            model = with_input_size(model, (self._height, self._width))
        try:
            self._content = converted(model)
            self._int8_content = converted(model, quantised=True) if int8 else None
        except Exception as exc:  # the converter raises many types; any of them means "use the Keras path"
            raise ModelError(
                f"cannot convert the model to TensorFlow Lite ({type(exc).__name__}): --backend keras runs it as is"
            ) from None
        self.checked = 0  # faces the int8 model was unsure of, classified again in float32
        self._start()
        log.info("converted the model to TensorFlow Lite in %.1f s", time.perf_counter() - started)

    def _start(self) -> None:
        """Interpreters of their own, with this thread's interpreter thread count (tflite.threads_here)."""
        self._threads = threads_here()
        self._by_batch: dict[tuple[bool, int], Any] = {}

    def replica(self) -> "TFLiteRunner":
        """The same converted model with interpreters of its own, for another thread (no second conversion)."""
        other = copy.copy(self)
        other._start()
        return other

    def _interpreter(self, quantised: bool, batch_size: int) -> Any:
        """One interpreter per model and batch size seen, up to MAX_BATCH_INTERPRETERS of them: resizing one costs
        a few ms, more than classifying a face, and the face count changes whenever someone comes or goes."""
        interpreter = self._by_batch.get((quantised, batch_size))
        if interpreter is None:
            if len(self._by_batch) >= MAX_BATCH_INTERPRETERS:
                self._by_batch.pop(next(iter(self._by_batch)))
            content = self._int8_content if quantised else self._content
            interpreter = make_interpreter(model_content=content, num_threads=self._threads)
            details = interpreter.get_input_details()[0]
            if details["shape"][0] != batch_size:
                interpreter.resize_tensor_input(details["index"], (batch_size, self._height, self._width, 3))
                interpreter.allocate_tensors()
            self._by_batch[(quantised, batch_size)] = interpreter
        return interpreter

    def _invoke(self, batch: np.ndarray, quantised: bool) -> np.ndarray:
        interpreter = self._interpreter(quantised, len(batch))
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch[:, : self._height, : self._width], np.float32)
        if self._int8_content is None:
            return self._invoke(batch, quantised=False)
        probs = self._invoke(batch, quantised=True)
        ranked = np.sort(probs, axis=1)
        unsure = ranked[:, -1] - ranked[:, -2] < CHECK_MARGIN
        if unsure.any():
            probs[unsure] = self._invoke(np.ascontiguousarray(batch[unsure]), quantised=False)
            self.checked += int(unsure.sum())
        return probs


_conversions: dict[tuple[str, bool], bytes] = {}  # (weights digest, quantised) -> flatbuffer, for this process
_conversions_lock = threading.Lock()


def converted(model: keras.Model, quantised: bool = False) -> bytes:
    """to_tflite, once per process for the same weights and input size (several apps or tests load one model
    file; the 98x98 copy of a model has its weights)."""
    digest = hashlib.sha1(str(model.input_shape).encode(), usedforsecurity=False)
    for weights in model.get_weights():
        digest.update(str(weights.shape).encode())
        digest.update(np.ascontiguousarray(weights).tobytes())
    key = (digest.hexdigest(), quantised)
    with _conversions_lock:
        if key not in _conversions:
            _conversions[key] = to_tflite(model, calibration_faces(model.input_shape[1:3]) if quantised else None)
        return _conversions[key]


def to_tflite(model: keras.Model, calibration: np.ndarray | None = None) -> bytes:
    """A TFLite flatbuffer of a Keras model: float32, or with `calibration` inputs int8 throughout (float input
    and output), its activation ranges measured on them."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if calibration is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([image[np.newaxis]] for image in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        with native_stderr_silenced():  # the quantizer prints its settings ("fully_quantize: 0, ...") natively
            return converter.convert()


def calibration_faces(size: Sequence[int], count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """`count` natural-image inputs of `size` (height, width), RGB 0-255, to measure activation ranges on: square
    patches of scikit-learn's two bundled sample photos, so no data set is needed where the model is used.
    The int8 model's error on real faces is what CHECK_MARGIN covers (tests/test_fast_inference.py measures it)."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(0)
    height, width = size
    inputs = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(40, min(photo.shape[:2])))
        y, x = (int(rng.integers(0, photo.shape[d] - side)) for d in (0, 1))
        patch = cv2.resize(np.ascontiguousarray(photo[y : y + side, x : x + side]), (width, height), cv2.INTER_AREA)
        inputs.append(patch.astype(np.float32))
    return np.stack(inputs)


class MaskClassifier:
    """A Keras model plus its class names; classifies all faces of a frame in one call.

    `backend` (constants.CLASSIFIER_BACKENDS): "tflite" runs the model converted to int8 TFLite with a float32
    check of the faces it is unsure of (TFLiteRunner: the same labels, a fraction of an eager Keras call's time per
    face), "tflite-float" the float32 conversion alone, "keras" calls the Keras model, the reference path.
    """

    def __init__(
        self,
        model: keras.Model,
        class_names: Sequence[str],
        backend: str = CLASSIFIER_BACKENDS[0],
    ) -> None:
        if backend not in CLASSIFIER_BACKENDS:
            raise ModelError(f"unknown classifier backend {backend!r}; available: {', '.join(CLASSIFIER_BACKENDS)}")
        self.model = model
        self.class_names = list(class_names)
        self.backend = backend
        self._run: Callable[[np.ndarray], np.ndarray] = (
            TFLiteRunner(model, int8=backend == "tflite")
            if backend.startswith("tflite")
            else lambda batch: np.asarray(model(batch, training=False))
        )

    @classmethod
    def load(cls, model_path: str | Path, backend: str = CLASSIFIER_BACKENDS[0]) -> "MaskClassifier":
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
        return cls(model, class_names, backend)

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
        return [
            Prediction(self.class_names[i], float(p[i]), tuple(p.tolist())) for i, p in zip(best, probs, strict=True)
        ]
