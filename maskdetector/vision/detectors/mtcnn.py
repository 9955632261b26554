"""MTCNN (the `mtcnn` package's TensorFlow networks), loaded once per process and shared by every detector."""

import threading
from typing import Any

import cv2
import numpy as np

from maskdetector.errors import UserError
from maskdetector.settings import default
from maskdetector.types import Box
from maskdetector.vision.boxes import clip_box, reshape_box, resized

MTCNN_WINDOW = 12  # P-Net's input size: the smallest face MTCNN sees at a frame's own scale
_MTCNN_LOCK = threading.Lock()
_MTCNN_RUN_LOCK = threading.Lock()
_MTCNN_MODEL: Any = None


def _mtcnn_model() -> Any:
    """The MTCNN networks, loaded once per process (a few seconds); the `mtcnn` package ships the weights."""
    global _MTCNN_MODEL
    with _MTCNN_LOCK:
        if _MTCNN_MODEL is None:
            try:
                from mtcnn import MTCNN
            except ImportError:
                raise UserError("the mtcnn detector needs the mtcnn package: pip install -r requirements.txt") from None
            _MTCNN_MODEL = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
        return _MTCNN_MODEL


class MtcnnDetector:
    """MTCNN (P-Net, R-Net, O-Net cascade of small CNNs, Zhang et al. 2016) on TensorFlow.

    `min_confidence` is O-Net's acceptance threshold; `min_face_size` starts the image pyramid (frames are
    scaled by 12 / min_face_size), so it also sets the speed.
    """

    DEFAULT_CONFIDENCE = 0.9
    # Median annotated/MTCNN box width and height, and centre offset (fraction of the height), measured on a
    # quarter of scenes-dev: MTCNN's boxes start at the forehead, the annotations' reach the chin.
    BOX_SCALE = (1.05, 0.97)
    BOX_SHIFT = 0.16

    def __init__(
        self,
        min_confidence: float | None = None,
        min_face_size: int = default("min_face_size"),
        threshold_pnet: float = 0.6,
        threshold_rnet: float = 0.7,
        box_scale: tuple[float, float] = BOX_SCALE,
        box_shift: float = BOX_SHIFT,
    ) -> None:
        self.min_confidence = min_confidence or self.DEFAULT_CONFIDENCE
        self.min_face_size = min_face_size
        self.threshold_pnet = threshold_pnet
        self.threshold_rnet = threshold_rnet
        self.box_scale = box_scale
        self.box_shift = box_shift
        self._model = _mtcnn_model()

    def detect_scored(self, frame_bgr: np.ndarray) -> list[tuple[Box, float]]:
        """Face boxes with O-Net's confidence."""
        # mtcnn 1.0.0 sizes its image pyramid as if min_face_size were 12: larger values shrink the smallest
        # level below P-Net's 12 px input and fail. So the frame is scaled instead, with min_face_size=12.
        factor = MTCNN_WINDOW / max(1, self.min_face_size)
        small = resized(frame_bgr, factor)
        if min(small.shape[:2]) < MTCNN_WINDOW:
            return []
        with _MTCNN_RUN_LOCK:  # one set of networks per process, shared by every MtcnnDetector
            found = self._model.detect_faces(
                cv2.cvtColor(small, cv2.COLOR_BGR2RGB),
                min_face_size=MTCNN_WINDOW,
                threshold_pnet=self.threshold_pnet,
                threshold_rnet=self.threshold_rnet,
                threshold_onet=self.min_confidence,
            )
        height, width = frame_bgr.shape[:2]
        scored = []
        for face in found:
            if face["confidence"] < self.min_confidence:
                continue
            found_box = [v / factor for v in face["box"]]
            box = clip_box(reshape_box(found_box, self.box_scale, self.box_shift), width, height)
            if box is not None:
                scored.append((box, float(face["confidence"])))
        return scored

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        return [box for box, _ in self.detect_scored(frame_bgr)]
