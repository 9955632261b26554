"""The types every layer shares: boxes, labelled faces, predictions, and the detector/classifier/analyzer protocols."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    # Every class's probability, in the classifier's class_names order (empty when the classifier gives none).
    probabilities: tuple[float, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Face:
    box: Box
    label: str
    confidence: float
    probabilities: tuple[float, ...] = field(default=(), compare=False)  # as Prediction's


class FaceDetector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[Box]: ...


class Classifier(Protocol):
    class_names: list[str]

    def classify(self, faces_bgr: Sequence[np.ndarray]) -> list[Prediction]: ...


class Analyzer(Protocol):
    def analyze(self, frame_bgr: np.ndarray) -> list[Face]: ...


class FileAnalyzer(Analyzer, Protocol):
    def for_video(self) -> Analyzer:
        """An analyzer for one video's consecutive frames (it may follow faces between detections)."""
