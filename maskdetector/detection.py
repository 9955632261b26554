"""Face detection behind a small interface, so another detector (MTCNN, BlazeFace) can be added in one place.

A detector takes a BGR frame and returns face boxes (x, y, w, h) inside the frame; `create_detector`
maps a name from the command line to an implementation.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from maskdetector.config import PROJECT_ROOT
from maskdetector.errors import UserError
from maskdetector.preprocessing import Box

log = logging.getLogger(__name__)

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
# A cascade with the default file name dropped here replaces OpenCV's bundled one without any flag.
CASCADE_DIR = PROJECT_ROOT / "haarcascades"


class FaceDetector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[Box]: ...


def default_cascade_path() -> Path:
    """The project's haarcascades/ copy if present, else the cascade bundled with OpenCV."""
    local = CASCADE_DIR / DEFAULT_CASCADE
    return local if local.is_file() else Path(cv2.data.haarcascades) / DEFAULT_CASCADE


class HaarDetector:
    """OpenCV's Viola-Jones cascade: fast on a CPU, finds frontal faces, masked ones included."""

    def __init__(
        self,
        cascade: str | Path | None = None,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_size: int = 40,
    ) -> None:
        path = Path(cascade) if cascade else default_cascade_path()
        if not path.is_file():
            raise UserError(f"Haar cascade file {path} not found")
        try:
            self._cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):  # OpenCV raises on malformed XML, returns an empty cascade on others
            self._cascade = None
        if self._cascade is None or self._cascade.empty():
            raise UserError(f"{path} is not a valid Haar cascade file")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_size = min_face_size
        log.debug("Haar cascade %s", path)

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        found = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_face_size, self.min_face_size),
        )
        return [(int(x), int(y), int(w), int(h)) for x, y, w, h in found]


DETECTORS: dict[str, Callable[..., FaceDetector]] = {"haar": HaarDetector}


def create_detector(name: str, **settings: object) -> FaceDetector:
    """Build the detector registered under `name` with its settings; UserError for an unknown name."""
    try:
        factory = DETECTORS[name.lower()]
    except KeyError:
        raise UserError(f"unknown detector {name!r}; available: {', '.join(sorted(DETECTORS))}") from None
    return factory(**settings)
