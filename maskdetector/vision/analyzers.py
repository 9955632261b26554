"""The analyzer every front end shares (live stream, HTTP API, detect.py), built from the settings table.

One builder means app.py, the API and detect.py cannot configure the detector or model differently, and one
JSON shape for results means `detect.py --json` and `POST /api/detect` describe faces the same way.
"""

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from maskdetector.types import Box, Classifier, Face, FaceDetector, Prediction
from maskdetector.vision.classifier import MaskClassifier
from maskdetector.vision.detectors import create_detector
from maskdetector.vision.pipeline import FrameAnalyzer


class LockedDetector:
    """One detector for several threads: OpenCV does not promise that detectMultiScale on one cascade is
    thread-safe, and a lock is cheaper than loading a cascade per request thread."""

    def __init__(self, detector: FaceDetector) -> None:
        self._detector = detector
        self._lock = threading.Lock()

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        with self._lock:
            return self._detector.detect(frame_bgr)


class LockedClassifier:
    """One model for several threads (a TFLite interpreter must not be invoked from two at once); a separate
    lock from the detector's, so the stream can classify while a request detects."""

    def __init__(self, classifier: MaskClassifier) -> None:
        self._classifier = classifier
        self._lock = threading.Lock()
        self.class_names = classifier.class_names

    def classify(self, faces_bgr: Sequence[np.ndarray]) -> list[Prediction]:
        with self._lock:
            return self._classifier.classify(faces_bgr)


def detector_from_settings(settings: Mapping[str, object], name: str | None = None) -> FaceDetector:
    """The detector named DETECTOR (or `name`) with the detector settings of the table; UserError if bad."""
    return create_detector(
        name or str(settings["DETECTOR"]),
        cascade=settings["CASCADE"] or None,
        scale_factor=float(settings["SCALE_FACTOR"]),
        min_neighbors=int(settings["MIN_NEIGHBORS"]),
        min_face_size=int(settings["MIN_FACE_SIZE"]),
        min_confidence=float(settings["MIN_CONFIDENCE"]) or None,
    )


def build_analyzer(settings: Mapping[str, object]) -> FrameAnalyzer:
    """Detector and classifier from DETECTOR, its settings (CASCADE, SCALE_FACTOR, MIN_NEIGHBORS, MIN_FACE_SIZE,
    MIN_CONFIDENCE; each detector takes the ones that apply to it) and MODEL run by BACKEND, safe to share
    between threads; its for_video() follows faces between detections every REDETECT_EVERY frames.
    The detector is built first: it fails fast on bad settings, the model load takes seconds.
    Raises UserError/ModelError.
    """
    detector = detector_from_settings(settings)
    classifier = MaskClassifier.load(str(settings["MODEL"]), str(settings["BACKEND"]))
    return FrameAnalyzer(
        LockedDetector(detector), LockedClassifier(classifier), redetect_every=int(settings["REDETECT_EVERY"])
    )


class WholeImageAnalyzer:
    """Treats every frame as one face crop (no detection), to score the classifier on ready-made crops."""

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        (prediction,) = self.classifier.classify([frame_bgr])
        height, width = frame_bgr.shape[:2]
        return [Face((0, 0, width, height), prediction.label, prediction.confidence)]

    def for_video(self) -> "WholeImageAnalyzer":
        return self  # nothing to follow between frames


def face_record(face: Face) -> dict[str, Any]:
    return {"box": list(face.box), "label": face.label, "confidence": round(face.confidence, 4)}


def frame_record(frame_bgr: np.ndarray, faces: Sequence[Face]) -> dict[str, Any]:
    """{"width", "height", "faces": [{"box": [x, y, w, h], "label", "confidence"}]}, boxes in frame pixels."""
    height, width = frame_bgr.shape[:2]
    return {"width": width, "height": height, "faces": [face_record(face) for face in faces]}
