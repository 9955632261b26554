"""Box geometry shared by the detectors, the face follower, tracking and scene scoring: (x, y, w, h) boxes."""

from collections.abc import Sequence

import cv2
import numpy as np

from maskdetector.types import Box


def clip_box(box: Sequence[float], width: int, height: int) -> Box | None:
    """An (x, y, w, h) box in float pixels -> integer box inside a width x height frame, None if nothing is left."""
    x, y, w, h = box
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def greedy_match(first: Sequence[Box], second: Sequence[Box], iou_threshold: float) -> list[tuple[int, int]]:
    """(first index, second index) pairs with IoU >= threshold, best pairs first, each box used at most once."""
    pairs = sorted(
        (-box_iou(a, b), i, j)
        for i, a in enumerate(first)
        for j, b in enumerate(second)
        if box_iou(a, b) >= iou_threshold
    )
    used_first: set[int] = set()
    used_second: set[int] = set()
    matches = []
    for _, i, j in pairs:
        if i not in used_first and j not in used_second:
            used_first.add(i)
            used_second.add(j)
            matches.append((i, j))
    return sorted(matches)


def iou_matrix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every (x, y, w, h) box of `first` (N, 4) with every box of `second` (M, 4): an (N, M) array."""
    a, b = np.asarray(first, np.float64).reshape(-1, 4), np.asarray(second, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2]) - np.maximum(
        a[:, None, 0], b[None, :, 0]
    )
    ih = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3]) - np.maximum(
        a[:, None, 1], b[None, :, 1]
    )
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms_groups(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[np.ndarray]:
    """Greedy NMS as groups: the best remaining box and every remaining box overlapping it by more than
    `iou_threshold`, best group first; each group's first index is its best box."""
    overlaps = iou_matrix(boxes, boxes) > iou_threshold
    alive = np.ones(len(scores), bool)
    groups = []
    for best in np.argsort(-np.asarray(scores), kind="stable"):
        if alive[best]:
            members = np.flatnonzero(alive & overlaps[best])
            members = np.concatenate([[best], members[members != best]])
            alive[members] = False
            groups.append(members)
    return groups


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, weighted: bool = True
) -> list[tuple[np.ndarray, float]]:
    """Non-maximum suppression of (x, y, w, h) boxes, best score first.

    With `weighted` (MediaPipe's blending), a kept box becomes the score-weighted mean of all boxes
    overlapping it by more than `iou_threshold`; it keeps the best score.
    """
    kept: list[tuple[np.ndarray, float]] = []
    for members in nms_groups(boxes, scores, iou_threshold):
        w = scores[members]
        box = (boxes[members] * w[:, None]).sum(axis=0) / w.sum() if weighted else boxes[members[0]]
        kept.append((box, float(scores[members[0]])))
    return kept


def reshape_box(box: Sequence[float], scale: tuple[float, float], shift: float) -> tuple[float, float, float, float]:
    """Scale an (x, y, w, h) box about its centre by (width, height) factors, then move it down by `shift`
    times its original height: maps a detector's box convention onto the annotations' one."""
    x, y, w, h = box
    new_w, new_h = w * scale[0], h * scale[1]
    return (x + (w - new_w) / 2, y + (h - new_h) / 2 + shift * h, new_w, new_h)


def resized(frame: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return frame
    return cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
