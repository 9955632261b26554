"""Drawing results onto frames: class-coloured boxes with "Mask 98%" labels, a status line, placeholders;
and the one JPEG encoder for streams and snapshots.

Pure functions on numpy arrays (the input frame is never modified), so they are easy to test and reuse.
"""

import textwrap
from collections.abc import Sequence

import cv2
import numpy as np

from maskdetector.constants import CLASS_DISPLAY
from maskdetector.types import Face

FONT = cv2.FONT_HERSHEY_SIMPLEX
UNKNOWN_COLOUR = (200, 200, 200)
PLACEHOLDER_SIZE = (480, 640)  # (height, width) when no real frame size is known yet


def face_caption(face: Face) -> tuple[str, tuple[int, int, int]]:
    """("Mask 98%", BGR colour) for a face; labels the display table lacks keep their raw name in gray."""
    name, colour = CLASS_DISPLAY.get(face.label, (face.label, UNKNOWN_COLOUR))
    return f"{name} {face.confidence:.0%}", colour


def _put_label(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float) -> None:
    """Text on a filled background at (x, y) = top-left, kept inside the image."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    x = max(0, min(x, image.shape[1] - tw - 4))
    y = max(0, min(y, image.shape[0] - th - base - 4))
    cv2.rectangle(image, (x, y), (x + tw + 4, y + th + base + 4), colour, -1)
    cv2.putText(image, text, (x + 2, y + th + 2), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def draw_faces(frame: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of the frame with a box and caption per face; the caption sits above the box when it fits."""
    out = frame.copy()
    for face in faces:
        x, y, w, h = face.box
        text, colour = face_caption(face)
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        (_, th), base = cv2.getTextSize(text, FONT, 0.5, 1)
        label_h = th + base + 4
        _put_label(out, text, x, y - label_h if y >= label_h else y + h, colour, 0.5)
    return out


def _draw_status(image: np.ndarray, fps: float, n_faces: int) -> None:
    """A small "12.3 fps | 2 faces" line in the top-left corner, drawn in place."""
    _put_label(image, f"{fps:.1f} fps | {n_faces} face{'s' if n_faces != 1 else ''}", 0, 0, (40, 40, 40), 0.45)


def annotate(frame: np.ndarray, faces: Sequence[Face], fps: float) -> np.ndarray:
    """A copy of the frame with face boxes and the status line (one copy per frame on the streaming path)."""
    out = draw_faces(frame, faces)
    _draw_status(out, fps, len(faces))
    return out


def placeholder_frame(message: str, size: tuple[int, int] = PLACEHOLDER_SIZE) -> np.ndarray:
    """A dark frame of `size` (height, width) carrying `message`, wrapped to fit; shown while there is no camera."""
    height, width = size
    out = np.full((height, width, 3), 32, np.uint8)
    scale = max(0.4, min(1.0, width / 900))
    (char_w, line_h), _ = cv2.getTextSize("M", FONT, scale, 1)
    lines = textwrap.wrap(message, max(10, int(width * 0.9) // max(1, char_w))) or [""]
    step = int(line_h * 1.8)
    y = max(line_h, (height - step * len(lines)) // 2 + line_h)
    for line in lines:
        (tw, _), _ = cv2.getTextSize(line, FONT, scale, 1)
        cv2.putText(out, line, ((width - tw) // 2, y), FONT, scale, (230, 230, 230), 1, cv2.LINE_AA)
        y += step
    return out


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
