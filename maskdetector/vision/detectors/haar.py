"""OpenCV's Haar cascades: one frontal cascade (`haar`, the design's detector) or several merged (`haar-multi`)."""

import logging
from pathlib import Path

import cv2
import numpy as np

from maskdetector.constants import PROJECT_ROOT
from maskdetector.errors import UserError
from maskdetector.settings import default
from maskdetector.types import Box
from maskdetector.vision.boxes import clip_box, reshape_box, weighted_nms

log = logging.getLogger(__name__)

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
# A cascade with the default file name dropped here replaces OpenCV's bundled one without any flag.
CASCADE_DIR = PROJECT_ROOT / "haarcascades"


def default_cascade_path() -> Path:
    """The project's haarcascades/ copy if present, else the cascade bundled with OpenCV."""
    local = CASCADE_DIR / DEFAULT_CASCADE
    return local if local.is_file() else Path(cv2.data.haarcascades) / DEFAULT_CASCADE


def load_cascade(path: Path) -> cv2.CascadeClassifier:
    if not path.is_file():
        raise UserError(f"Haar cascade file {path} not found")
    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError):  # OpenCV raises on malformed XML, returns an empty cascade on others
        cascade = None
    if cascade is None or cascade.empty():
        raise UserError(f"{path} is not a valid Haar cascade file")
    log.debug("Haar cascade %s", path)
    return cascade


class HaarDetector:
    """OpenCV's Viola-Jones cascade: fast on a CPU, finds frontal faces, masked ones included.

    Frames wider than `detect_width` are searched shrunk to that width (gray, then resized) and the boxes
    scaled back: the cascade's time grows with the pixel count. DETECT_WIDTH is the narrowest width that
    keeps recall on scenes-dev within 1 point of the full frame (0.326 vs 0.332 on faces >= 32 px; 320 px
    loses 4 points; benchmarks/haar_downscale.py, README: Speed). None searches the full frame.
    """

    DETECT_WIDTH = 400

    def __init__(
        self,
        cascade: str | Path | None = None,
        scale_factor: float = default("scale_factor"),
        min_neighbors: int = default("min_neighbors"),
        min_face_size: int = default("min_face_size"),
        detect_width: int | None = DETECT_WIDTH,
    ) -> None:
        self._cascade = load_cascade(Path(cascade) if cascade else default_cascade_path())
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_size = min_face_size
        self.detect_width = detect_width

    def _gray(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """The gray frame the cascades search, at most `detect_width` wide, and its scale relative to the frame."""
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        width = gray.shape[1]
        if not self.detect_width or width <= self.detect_width:
            return gray, 1.0
        factor = self.detect_width / width
        return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), factor

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray, factor: float) -> np.ndarray:
        """Boxes (x, y, w, h) of one cascade on the searched gray frame, in the full frame's pixels."""
        min_size = max(1, int(round(self.min_face_size * factor)))
        found = cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_size, min_size)
        )
        return np.asarray(found, np.float64).reshape(-1, 4) / factor

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        gray, factor = self._gray(frame_bgr)
        found = self._run(self._cascade, gray, factor)
        height, width = frame_bgr.shape[:2]
        return [b for b in (clip_box(f, width, height) for f in found) if b is not None]


class MultiHaarDetector(HaarDetector):
    """Several cascades merged: frontal default + frontal alt2 + profile (both ways), then NMS.

    A face found by only one cascade is kept, so this finds more turned and masked faces than one
    cascade; overlapping boxes from different cascades are averaged into one.
    """

    CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
    PROFILE = "haarcascade_profileface.xml"
    # Median annotated/cascade box width and height, and centre offset (fraction of the height), measured on a
    # quarter of scenes-dev: the cascades' square boxes include the forehead and are wider than the annotations.
    BOX_SCALE = (0.80, 0.89)
    BOX_SHIFT = 0.12

    def __init__(
        self,
        scale_factor: float = default("scale_factor"),
        min_neighbors: int = default("min_neighbors"),
        min_face_size: int = default("min_face_size"),
        profile: bool = True,
        nms_threshold: float = 0.3,
        box_scale: tuple[float, float] = BOX_SCALE,
        box_shift: float = BOX_SHIFT,
        detect_width: int | None = HaarDetector.DETECT_WIDTH,
    ) -> None:
        bundled = Path(cv2.data.haarcascades)
        self._cascades = [load_cascade(bundled / name) for name in self.CASCADES]
        self._profile = load_cascade(bundled / self.PROFILE) if profile else None
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_size = min_face_size
        self.nms_threshold = nms_threshold
        self.box_scale = box_scale
        self.box_shift = box_shift
        self.detect_width = detect_width

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        gray, factor = self._gray(frame_bgr)
        found = [self._run(cascade, gray, factor) for cascade in self._cascades]
        if self._profile is not None:
            found.append(self._run(self._profile, gray, factor))
            mirrored = self._run(self._profile, cv2.flip(gray, 1), factor)
            mirrored[:, 0] = frame_bgr.shape[1] - mirrored[:, 0] - mirrored[:, 2]
            found.append(mirrored)
        boxes = np.concatenate(found)
        if not len(boxes):
            return []
        scores = np.ones(len(boxes))  # cascades give no comparable score: larger boxes first, all equal weight
        scores += boxes[:, 2] * 1e-6
        merged = weighted_nms(boxes, scores, self.nms_threshold)
        height, width = frame_bgr.shape[:2]
        reshaped = (reshape_box(box, self.box_scale, self.box_shift) for box, _ in merged)
        return [b for b in (clip_box(box, width, height) for box in reshaped) if b is not None]
