"""How well the whole pipeline finds and labels faces in annotated photos (PASCAL VOC boxes).

Detections are matched to annotated faces greedily by IoU (highest pairs first, each face and each
detection used at most once). Per subset of faces and IoU threshold this gives:

- face recall: annotated faces with a matching detection / annotated faces, also per annotated class
  (with_mask, without_mask, mask_weared_incorrect): a detector that misses masked faces shows here;
- detection precision: detections that match a face / detections counted;
- label accuracy: matched faces whose predicted label is right / matched faces of a class the model has
  (a 2-class model cannot say `mask_weared_incorrect`, so those faces count for recall only);
- end-to-end recall: faces found and labelled right / annotated faces of a class the model has.

Size subsets (`min_side`, e.g. 32 px): faces whose shorter side is below `min_side` are ignored, not
counted as misses; a detection matched to an ignored face is neither right nor wrong, and an unmatched
detection counts as a false one only if its own shorter side is at least `min_side * DETECTION_SLACK`
(a detector may draw a face a little tighter than the annotation). Matching always uses all faces, so
a detection of a small face cannot become a false detection of a large one.
"""

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from maskdetector.training.datasets import AnnotatedFace, SceneAnnotation
from maskdetector.types import Box, Classifier, Face, FaceDetector
from maskdetector.vision.boxes import greedy_match
from maskdetector.vision.pipeline import FrameAnalyzer
from maskdetector.vision.preprocessing import read_image

DETECTION_SLACK = 0.8


@dataclass(frozen=True)
class Counts:
    """Tallies for one subset of faces at one IoU threshold; add them up over images."""

    faces: int = 0  # annotated faces in the subset
    found: int = 0  # of those, matched by a detection
    detections: int = 0  # detections counted for precision
    true_detections: int = 0  # of those, matched to a face of the subset
    known: int = 0  # annotated faces of a class the model has
    labelled: int = 0  # matched faces of a class the model has
    correct: int = 0  # of those, labelled right
    class_faces: Counter[str] = field(default_factory=Counter)  # `faces` by annotated class
    class_found: Counter[str] = field(default_factory=Counter)  # `found` by annotated class

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def recall(self) -> float:
        return self.found / self.faces if self.faces else 0.0

    def class_recall(self) -> dict[str, float]:
        """Recall per annotated class, for the classes with faces in the subset."""
        return {label: self.class_found[label] / n for label, n in sorted(self.class_faces.items()) if n}

    @property
    def precision(self) -> float:
        return self.true_detections / self.detections if self.detections else 0.0

    @property
    def label_accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else 0.0

    @property
    def end_to_end(self) -> float:
        return self.correct / self.known if self.known else 0.0

    def summary(self) -> dict[str, float | int]:
        rates = {
            "recall": self.recall,
            "precision": self.precision,
            "label_accuracy": self.label_accuracy,
            "end_to_end_recall": self.end_to_end,
            "class_recall": self.class_recall(),
        }
        counts = asdict(self)
        counts["class_faces"], counts["class_found"] = dict(self.class_faces), dict(self.class_found)
        return {**counts, **rates}  # unrounded: rounding here and again when printing misreports


def score_image(
    truth: Sequence[AnnotatedFace],
    found: Sequence[Face],
    iou_threshold: float,
    class_names: Iterable[str],
    min_side: int = 0,
) -> Counts:
    """Counts for one image: annotated faces vs labelled detections, see the module notes for `min_side`."""
    classes = set(class_names)
    matches = dict(greedy_match([t.box for t in truth], [f.box for f in found], iou_threshold))
    matched_found = set(matches.values())
    in_subset = [min(t.box[2:]) >= min_side for t in truth]

    faces = sum(in_subset)
    hits = [ti for ti in matches if in_subset[ti]]
    known = sum(1 for t, keep in zip(truth, in_subset, strict=True) if keep and t.label in classes)
    labelled = [ti for ti in hits if truth[ti].label in classes]
    correct = sum(1 for ti in labelled if found[matches[ti]].label == truth[ti].label)
    unmatched_counted = sum(
        1 for fi, f in enumerate(found) if fi not in matched_found and min(f.box[2:]) >= min_side * DETECTION_SLACK
    )
    return Counts(
        faces=faces,
        found=len(hits),
        detections=len(hits) + unmatched_counted,
        true_detections=len(hits),
        known=known,
        labelled=len(labelled),
        correct=correct,
        class_faces=Counter(t.label for t, keep in zip(truth, in_subset, strict=True) if keep),
        class_found=Counter(truth[ti].label for ti in hits),
    )


@dataclass(frozen=True)
class SceneResult:
    scene: SceneAnnotation
    faces: tuple[Face, ...]  # what the pipeline reported
    frame_size: tuple[int, int]  # width, height
    detect_seconds: float
    total_seconds: float


def score_scenes(
    results: Sequence[SceneResult], iou_threshold: float, class_names: Iterable[str], min_side: int = 0
) -> Counts:
    """Counts summed over images."""
    names = list(class_names)
    total = Counts()
    for r in results:
        total = total + score_image(r.scene.faces, r.faces, iou_threshold, names, min_side)
    return total


class TimedDetector:
    """Wraps a detector and adds up the time its detect() calls take."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.seconds = 0.0

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        started = time.perf_counter()
        try:
            return self.detector.detect(frame_bgr)
        finally:
            self.seconds += time.perf_counter() - started


def run_scenes(
    scenes: Iterable[SceneAnnotation], detector: FaceDetector, classifier: Classifier
) -> tuple[list[SceneResult], int]:
    """Run the app's pipeline (FrameAnalyzer: detect, crop with margin, classify) on every readable scene image.

    Returns the results, with detection timed apart from the whole call, and the number of unreadable images.
    """
    timed = TimedDetector(detector)
    analyzer = FrameAnalyzer(timed, classifier)
    results, skipped = [], 0
    for scene in scenes:
        frame = read_image(scene.image_path)
        if frame is None:
            skipped += 1
            continue
        before = timed.seconds
        started = time.perf_counter()
        faces = analyzer.analyze(frame)
        total = time.perf_counter() - started
        height, width = frame.shape[:2]
        results.append(SceneResult(scene, tuple(faces), (width, height), timed.seconds - before, total))
    return results, skipped


def mean_ms(results: Sequence[SceneResult], warmup: int = 1) -> tuple[float, float]:
    """Mean detection and whole-pipeline milliseconds per frame, leaving out the first `warmup` frames."""
    timed = results[warmup:] if len(results) > warmup else results
    if not timed:
        return 0.0, 0.0
    return (
        1000 * sum(r.detect_seconds for r in timed) / len(timed),
        1000 * sum(r.total_seconds for r in timed) / len(timed),
    )
