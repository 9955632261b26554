"""Following faces between detector runs (motion.FaceFollower): fewer detector calls, boxes still on the faces."""

import cv2
import numpy as np
import pytest

from maskdetector.errors import UserError
from maskdetector.settings import resolve
from maskdetector.vision.boxes import box_iou, greedy_match
from maskdetector.vision.detectors import create_detector
from maskdetector.vision.face_following import FaceFollower
from maskdetector.vision.pipeline import FrameAnalyzer
from maskdetector.vision.preprocessing import read_image

HEIGHT, WIDTH, FACE = 240, 320, 60
RNG = np.random.default_rng(7)
BACKGROUND = cv2.GaussianBlur(RNG.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8), (0, 0), 3)
PATTERN = cv2.resize(RNG.integers(0, 255, (8, 8, 3), dtype=np.uint8), (FACE, FACE), interpolation=cv2.INTER_CUBIC)


def frame_with_face(x: int, y: int = 80) -> np.ndarray:
    frame = BACKGROUND.copy()
    frame[y : y + FACE, x : x + FACE] = PATTERN
    return frame


class ScriptedDetector:
    """Returns `boxes` (set by the test to where the face really is), or what `wrapped` finds; counts its calls."""

    def __init__(self, wrapped: object = None) -> None:
        self.boxes: list[tuple[int, int, int, int]] = []
        self.calls = 0
        self.wrapped = wrapped

    def detect(self, frame_bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
        self.calls += 1
        return self.wrapped.detect(frame_bgr) if self.wrapped else list(self.boxes)


class StubClassifier:
    def classify(self, faces_bgr):
        from maskdetector.types import Prediction

        return [Prediction("with_mask", 0.9) for _ in faces_bgr]


def test_detector_runs_every_nth_frame_and_boxes_follow_a_moving_face():
    detector = ScriptedDetector()
    follower = FaceFollower(detector, redetect_every=3)
    for i in range(10):
        truth = (40 + 4 * i, 80, FACE, FACE)
        detector.boxes = [truth]
        (box,) = follower.detect(frame_with_face(truth[0]))
        assert box_iou(box, truth) > 0.9, (i, box, truth)
    assert detector.calls == 4  # frames 0, 3, 6 and 9


def test_a_face_that_vanishes_makes_the_detector_run_at_once():
    detector = ScriptedDetector()
    follower = FaceFollower(detector, redetect_every=10)
    detector.boxes = [(100, 80, FACE, FACE)]
    follower.detect(frame_with_face(100))
    detector.boxes = []
    assert follower.detect(BACKGROUND.copy()) == []
    assert detector.calls == 2


def test_redetect_every_frame_and_new_frame_sizes_always_run_the_detector():
    detector = ScriptedDetector()
    detector.boxes = [(100, 80, FACE, FACE)]
    every_frame = FaceFollower(detector, redetect_every=1)
    for _ in range(3):
        every_frame.detect(frame_with_face(100))
    assert detector.calls == 3
    follower = FaceFollower(detector, redetect_every=5)
    follower.detect(frame_with_face(100))
    follower.detect(cv2.resize(frame_with_face(100), (WIDTH * 2, HEIGHT * 2)))
    assert detector.calls == 5


def test_followed_boxes_stay_inside_the_frame_at_its_edge():
    detector = ScriptedDetector()
    follower = FaceFollower(detector, redetect_every=4)
    for x in (WIDTH - FACE - 6, WIDTH - FACE - 3, WIDTH - FACE, WIDTH - FACE):
        detector.boxes = [(x, 80, FACE, FACE)]
        for bx, by, bw, bh in follower.detect(frame_with_face(x)):
            assert bx >= 0 and by >= 0 and bx + bw <= WIDTH and by + bh <= HEIGHT


def test_followed_real_faces_match_the_detector_on_every_frame(shared_datasets):
    """A real photo with two faces drifting 3 px a frame: BlazeFace on every 3rd frame plus following puts every
    box on a face BlazeFace finds on that frame, and misses at most a face that flickers in between."""
    image = read_image(shared_datasets / "scenes-dev" / "images" / "maksssksksss0.png")
    detector = create_detector("blazeface", min_face_size=24)
    counted = ScriptedDetector(wrapped=create_detector("blazeface", min_face_size=24))
    follower = FaceFollower(counted, redetect_every=3)
    matched = total = 0
    for i in range(9):
        frame = cv2.warpAffine(image, np.float32([[1, 0, 3 * i], [0, 1, 2 * i]]), image.shape[1::-1])
        reference = detector.detect(frame)
        followed = follower.detect(frame)
        pairs = greedy_match(reference, followed, 0.5)
        assert len(pairs) == len(followed), (i, reference, followed)
        total += len(reference)
        matched += len(pairs)
    assert total >= 18 and matched >= 0.9 * total
    assert counted.calls == 3


def test_each_video_gets_its_own_follower():
    analyzer = FrameAnalyzer(ScriptedDetector(), StubClassifier(), redetect_every=3)
    first, second = analyzer.for_video(), analyzer.for_video()
    assert isinstance(first.detector, FaceFollower) and first.detector is not second.detector
    assert first.classifier is analyzer.classifier
    assert FrameAnalyzer(ScriptedDetector(), StubClassifier()).for_video().detector.__class__ is ScriptedDetector


def test_redetect_every_setting(monkeypatch):
    monkeypatch.setenv("MASKDETECTOR_REDETECT_EVERY", "1")
    assert resolve({})["REDETECT_EVERY"] == 1
    with pytest.raises(UserError, match="--redetect-every / MASKDETECTOR_REDETECT_EVERY: Input should be greater"):
        resolve({"REDETECT_EVERY": 0})
