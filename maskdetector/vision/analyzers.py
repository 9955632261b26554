"""The analyzer every front end shares (live stream, HTTP API, detect.py), built from the settings table.

One builder means app.py, the API and detect.py cannot configure the detector or model differently, and one
JSON shape for results means `detect.py --json` and `POST /api/detect` describe faces the same way.
"""

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from maskdetector.types import Box, Classifier, Face, FaceDetector, Prediction
from maskdetector.vision.classifier import MaskClassifier
from maskdetector.vision.detectors import create_detector
from maskdetector.vision.per_thread import PerThread
from maskdetector.vision.pipeline import FrameAnalyzer


class SharedDetector:
    """A detector safe to call from any thread (PerThread), built by `build` (once, and again per worker)."""

    def __init__(self, build: Callable[[], FaceDetector]) -> None:
        self.detector = build()  # the shared copy
        self._models = PerThread(self.detector, build)

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        return self._models.run(lambda detector: detector.detect(frame_bgr))


class SharedClassifier:
    """The classifier safe to call from any thread (PerThread); a worker's copy shares the converted model."""

    def __init__(self, classifier: MaskClassifier) -> None:
        self.classifier = classifier  # the shared copy
        self._models = PerThread(classifier, classifier.replica)
        self.class_names = classifier.class_names

    def classify(self, faces_bgr: Sequence[np.ndarray]) -> list[Prediction]:
        return self._models.run(lambda classifier: classifier.classify(faces_bgr))


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
    between threads (a private copy in each thread inside models_per_thread); its for_video() follows faces
    between detections every REDETECT_EVERY frames and steadies labels over LABEL_WINDOW frames.
    The detector is built first: it fails fast on bad settings, the model load takes seconds.
    Raises UserError/ModelError.
    """
    detector = SharedDetector(partial(detector_from_settings, settings))
    classifier = MaskClassifier.load(str(settings["MODEL"]), str(settings["BACKEND"]))
    return FrameAnalyzer(
        detector,
        SharedClassifier(classifier),
        redetect_every=int(settings["REDETECT_EVERY"]),
        label_window=int(settings["LABEL_WINDOW"]),
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
