"""MTCNN's O-Net on its own, as a verifier of other detectors' candidate boxes: "is this crop a face?".

O-Net is the last of MTCNN's three networks (a 48x48 RGB crop in, a face probability out; the `mtcnn` wheel
ships its weights). Run as a second opinion on BlazeFace's candidates it costs a fraction of a millisecond per
candidate, converted to TensorFlow Lite in memory when first used.
"""

import logging
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from maskdetector.errors import UserError
from maskdetector.vision.tflite import make_interpreter

log = logging.getLogger(__name__)

ONET_SIZE = 48
_LOCK = threading.Lock()
_CONTENT: bytes | None = None  # the converted flatbuffer, shared by every verifier of the process


def onet_tflite() -> bytes:
    """O-Net with the mtcnn wheel's weights as a float32 TFLite flatbuffer (converted once per process)."""
    global _CONTENT
    with _LOCK:
        if _CONTENT is None:
            started = time.perf_counter()
            try:
                from mtcnn.stages import StageONet
            except ImportError:
                raise UserError("the O-Net verifier needs the mtcnn package: pip install -r requirements.txt") from None
            import tensorflow as tf

            model = StageONet()._model
            signature = [tf.TensorSpec([None, ONET_SIZE, ONET_SIZE, 3], tf.float32)]
            with tempfile.TemporaryDirectory() as tmp:  # a SavedModel freezes the weights into the graph
                model.export(tmp, format="tf_saved_model", verbose=False, input_signature=signature)
                _CONTENT = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
            log.info("converted O-Net to TensorFlow Lite in %.1f s", time.perf_counter() - started)
        return _CONTENT


def square_crops(rgb: np.ndarray, boxes: Sequence[Sequence[float]], size: int = ONET_SIZE) -> np.ndarray:
    """size x size crops of the squares around (x, y, w, h) boxes (side max(w, h)), mid-gray outside the frame,
    scaled to [-1, 1] as MTCNN feeds its networks."""
    crops = np.empty((len(boxes), size, size, 3), np.float32)
    for i, (x, y, w, h) in enumerate(boxes):
        side = max(w, h)
        scale = size / side
        corner_x, corner_y = x + w / 2 - side / 2, y + h / 2 - side / 2
        affine = np.array([[scale, 0, -corner_x * scale], [0, scale, -corner_y * scale]], np.float32)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crops[i] = cv2.warpAffine(
            rgb, affine, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)
        )
    return (crops - 127.5) / 128.0


class OnetVerifier:
    """Face probabilities of candidate boxes from O-Net. Not thread-safe (one interpreter per verifier)."""

    def __init__(self) -> None:
        self._interpreter: Any = make_interpreter(model_content=onet_tflite())
        details = self._interpreter.get_input_details()[0]
        self._input = details["index"]
        self._batch = int(details["shape"][0])
        self._output = next(o["index"] for o in self._interpreter.get_output_details() if o["shape"][-1] == 2)

    def scores(self, rgb: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """P(face) for each (x, y, w, h) box of an RGB frame."""
        if not len(boxes):
            return np.zeros(0)
        crops = square_crops(rgb, boxes)
        if len(crops) != self._batch:  # reallocating costs more than an invoke: only when the count changes
            self._interpreter.resize_tensor_input(self._input, crops.shape)
            self._interpreter.allocate_tensors()
            self._batch = len(crops)
        self._interpreter.set_tensor(self._input, crops)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)[:, 1].astype(np.float64)
