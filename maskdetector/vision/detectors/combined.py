"""Two detectors as one: the second only adds faces the first missed."""

import numpy as np

from maskdetector.types import Box, FaceDetector
from maskdetector.vision.boxes import box_iou


class CombinedDetector:
    """The first detector's boxes, plus the second's for faces the first missed.

    A second box that overlaps none of the first's (IoU < `overlap`) is taken as a face the first missed; where
    both found a face the first's box is kept, so the second only ever adds faces. Costs both detectors' time.
    """

    def __init__(self, first: FaceDetector, second: FaceDetector, overlap: float = 0.3) -> None:
        self.first = first
        self.second = second
        self.overlap = overlap

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        boxes = list(self.first.detect(frame_bgr))  # a copy: the first detector's list is not ours to grow
        for box in self.second.detect(frame_bgr):
            if all(box_iou(box, other) < self.overlap for other in boxes):
                boxes.append(box)
        return boxes
