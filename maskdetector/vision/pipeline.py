"""One frame in, labelled faces out: detect -> crop with margin -> classify all faces in one model call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from maskdetector.constants import FACE_MARGIN
from maskdetector.types import Classifier, Face, FaceDetector
from maskdetector.vision.face_following import FaceFollower
from maskdetector.vision.preprocessing import crop_face
from maskdetector.vision.tracking import LabelSmoother


class FrameAnalyzer:
    """Detector plus classifier; crops use the same margin as training crops so inputs look alike."""

    def __init__(
        self,
        detector: FaceDetector,
        classifier: Classifier,
        margin: float = FACE_MARGIN,
        redetect_every: int = 1,
        label_window: int = 1,
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.margin = margin
        self.redetect_every = redetect_every
        self.label_window = label_window
        self.smoother: LabelSmoother | None = None  # set on a video's analyzer (for_video)

    def for_video(self) -> FrameAnalyzer:
        """An analyzer for one video stream's consecutive frames: it runs the detector on every
        `redetect_every`-th frame and follows the faces in between, and labels each tracked face by its class
        probabilities over its last `label_window` frames (tracking.LabelSmoother). It keeps state: one per stream."""
        if self.redetect_every == 1 and self.label_window == 1:
            return self
        detector = FaceFollower(self.detector, self.redetect_every) if self.redetect_every > 1 else self.detector
        video = FrameAnalyzer(detector, self.classifier, self.margin)
        if self.label_window > 1:
            video.smoother = LabelSmoother(self.classifier.class_names, self.label_window)
        return video

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        boxes = self.detector.detect(frame_bgr)
        faces = []
        if boxes:
            predictions = self.classifier.classify([crop_face(frame_bgr, box, self.margin) for box in boxes])
            faces = [
                Face(box, p.label, p.confidence, p.probabilities) for box, p in zip(boxes, predictions, strict=True)
            ]
        return self.smoother.smooth(faces) if self.smoother is not None else faces


def count_labels(faces: Iterable[Face]) -> Counter[str]:
    return Counter(face.label for face in faces)
