"""The one place that turns OpenCV images (BGR, any size) into the classifier's input.

Training and inference both go through `face_to_input`, so colour order and resizing cannot drift apart.
Pixel scaling (1/255) lives inside the model as its first layer.
"""

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from maskdetector.constants import FACE_MARGIN, INPUT_SIZE
from maskdetector.types import Box


def read_image(path: str | Path) -> np.ndarray | None:
    """Read an image file as 8-bit BGR, or None if it is not a readable image.

    Reads bytes and decodes from memory so that non-ASCII paths work, and any pixel format
    (gray, alpha, 16-bit) comes back as 3-channel uint8.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None
    return image


def face_to_input(face_bgr: np.ndarray) -> np.ndarray:
    """A BGR face crop of any size -> uint8 RGB array of the model's input size."""
    height, width = INPUT_SIZE
    shrinking = face_bgr.shape[0] > height or face_bgr.shape[1] > width
    resized = cv2.resize(face_bgr, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)


def faces_to_batch(faces_bgr: Sequence[np.ndarray]) -> np.ndarray:
    """BGR face crops -> float32 batch (N, H, W, 3) in RGB, ready for one model call."""
    height, width = INPUT_SIZE
    if not faces_bgr:
        return np.zeros((0, height, width, 3), np.float32)
    return np.stack([face_to_input(face) for face in faces_bgr]).astype(np.float32)


def crop_face(frame: np.ndarray, box: Box, margin: float = FACE_MARGIN) -> np.ndarray:
    """Cut a face box out of a frame with `margin` of the box size added on every side, clipped to the frame."""
    x, y, w, h = box
    dx, dy = int(round(w * margin)), int(round(h * margin))
    frame_h, frame_w = frame.shape[:2]
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(frame_w, x + w + dx), min(frame_h, y + h + dy)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {box} lies outside the {frame_w}x{frame_h} frame")
    return frame[y0:y1, x0:x1]
