"""Follow faces between detections on video: the detector is the slowest step of a frame.

A FaceFollower wraps one video stream's detector. The detector runs on every `redetect_every`-th frame; on the
frames between, each face is found again near its last place by template matching against its look when it
was detected (a few hundred microseconds per face instead of tens of milliseconds for a detector pass). When a
face no longer matches well (it turned, was covered, left), the detector runs at once; new faces are found at
the next detection, at most `redetect_every - 1` frames later (at once while no face is being followed).
Classification still runs on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskdetector.types import Box, FaceDetector

TEMPLATE_WIDTH = 32  # faces are matched at this width: enough detail to place a face, cheap at any face size
SEARCH_MARGIN = 0.35  # how far (a fraction of the face's size) a face may move between two analyzed frames
MIN_MATCH = 0.6  # normalised correlation below which the face is taken to have changed: detect again


@dataclass
class _Followed:
    box: Box
    template: np.ndarray  # gray, at `scale` of the frame
    scale: float


class FaceFollower:
    """Detector for one video stream (it keeps state: one per stream, not shared)."""

    def __init__(self, detector: FaceDetector, redetect_every: int) -> None:
        if redetect_every < 1:
            raise ValueError("redetect_every must be at least 1")
        self.detector = detector
        self.redetect_every = redetect_every
        self._faces: list[_Followed] = []
        self._since_detection = 0
        self._shape: tuple[int, ...] | None = None

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        self._since_detection += 1
        # With no face to follow there is nothing to save: the detector looks for new ones on every frame (a frame
        # where nothing moved is not analyzed at all on a live stream: motion_gate.py).
        if self._since_detection < self.redetect_every and frame_bgr.shape == self._shape and self._faces:
            boxes = self._follow(frame_bgr)
            if boxes is not None:
                return boxes
        boxes = self.detector.detect(frame_bgr)
        self._faces = [_remember(frame_bgr, box) for box in boxes]
        self._since_detection = 0
        self._shape = frame_bgr.shape
        return boxes

    def _follow(self, frame_bgr: np.ndarray) -> list[Box] | None:
        """Every face's new box, or None if any face cannot be found again with confidence."""
        boxes = []
        for face in self._faces:
            box = _match(frame_bgr, face)
            if box is None:
                return None
            face.box = box
            boxes.append(box)
        return boxes


def _gray(frame_bgr: np.ndarray, x0: int, y0: int, x1: int, y1: int, scale: float) -> np.ndarray:
    region = frame_bgr[y0:y1, x0:x1]
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _remember(frame_bgr: np.ndarray, box: Box) -> _Followed:
    x, y, w, h = box
    scale = min(1.0, TEMPLATE_WIDTH / max(w, 1))
    return _Followed(box, _gray(frame_bgr, x, y, x + w, y + h, scale), scale)


def _match(frame_bgr: np.ndarray, face: _Followed) -> Box | None:
    x, y, w, h = face.box
    dx, dy = round(w * SEARCH_MARGIN), round(h * SEARCH_MARGIN)
    height, width = frame_bgr.shape[:2]
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
    search = _gray(frame_bgr, x0, y0, x1, y1, face.scale)
    template = face.template
    if search.shape[0] < template.shape[0] or search.shape[1] < template.shape[1] or template.std() < 1.0:
        return None  # at the frame's edge, or a flat patch that matches anywhere
    scores = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (mx, my) = cv2.minMaxLoc(scores)
    if best < MIN_MATCH:
        return None
    new_x = min(x0 + round(mx / face.scale), width - w)
    new_y = min(y0 + round(my / face.scale), height - h)
    return (max(0, new_x), max(0, new_y), w, h)
