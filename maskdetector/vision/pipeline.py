"""One frame in, labelled faces out: detect -> crop with margin -> classify all faces in one model call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from maskdetector.constants import FACE_MARGIN
from maskdetector.types import Classifier, Face, FaceDetector
from maskdetector.vision.face_following import FaceFollower
from maskdetector.vision.preprocessing import crop_face


class FrameAnalyzer:
    """Detector plus classifier; crops use the same margin as training crops so inputs look alike."""

    def __init__(
        self, detector: FaceDetector, classifier: Classifier, margin: float = FACE_MARGIN, redetect_every: int = 1
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.margin = margin
        self.redetect_every = redetect_every

    def for_video(self) -> FrameAnalyzer:
        """An analyzer for one video stream's consecutive frames: it runs the detector on every
        `redetect_every`-th frame and follows the faces in between. It keeps state: one per stream."""
        if self.redetect_every == 1:
            return self
        return FrameAnalyzer(FaceFollower(self.detector, self.redetect_every), self.classifier, self.margin)

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        boxes = self.detector.detect(frame_bgr)
        if not boxes:
            return []
        predictions = self.classifier.classify([crop_face(frame_bgr, box, self.margin) for box in boxes])
        return [Face(box, p.label, p.confidence) for box, p in zip(boxes, predictions, strict=True)]


def count_labels(faces: Iterable[Face]) -> Counter[str]:
    return Counter(face.label for face in faces)
