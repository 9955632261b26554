"""Box tracking: people are counted once however many frames they stay in view, and through the stream hub."""

import time
from itertools import pairwise

import numpy as np
from helpers import CountingAnalyzer, FakeCamera, wait_until

from maskdetector.analytics.history import History, database_url
from maskdetector.types import Face, Prediction
from maskdetector.vision.pipeline import FrameAnalyzer
from maskdetector.vision.tracking import LABEL_WINDOW, MAX_MISSED, BoxTracker, LabelSmoother
from maskdetector.web.monitor import SourceMonitor
from maskdetector.web.streaming import StreamHub


def face(x: int, label: str = "without_mask", y: int = 50, size: int = 60) -> Face:
    return Face((x, y, size, size), label, 0.9)


def run(tracker: BoxTracker, frames: list[list[Face]]) -> list:
    return [track for faces in frames for track in tracker.update(faces).new_sightings]


def test_one_person_in_30_frames_is_one_sighting():
    tracker = BoxTracker()
    counted = run(tracker, [[face(100 + 3 * i)] for i in range(30)])  # walking slowly to the right
    assert len(counted) == 1
    track = counted[0]
    assert track.hits == 30 and track.label == "without_mask"


def test_two_people_side_by_side_are_two_sightings():
    counted = run(BoxTracker(), [[face(20 + i), face(300 - i, "with_mask")] for i in range(30)])
    assert sorted(track.label for track in counted) == ["with_mask", "without_mask"]


def test_a_one_frame_false_detection_is_never_counted():
    assert run(BoxTracker(), [[face(100)], [], [], []]) == []


def test_short_gaps_keep_the_track_and_a_long_absence_counts_again():
    tracker = BoxTracker()
    frames = [[face(100)]] * 5 + [[]] * MAX_MISSED + [[face(100)]] * 5
    assert len(run(tracker, frames)) == 1  # the detector missed the face for a while: same person
    frames = [[]] * (MAX_MISSED + 1) + [[face(100)]] * 5
    assert len(run(tracker, frames)) == 1  # gone for longer: a new sighting


def test_sighting_takes_the_majority_label_and_streak_counts_frames_in_a_row():
    tracker = BoxTracker()
    (track,) = run(tracker, [[face(100, "with_mask")], [face(100)], [face(100)]])
    assert track.label == "without_mask" and track.streak == 2
    tracker.update([])  # a missed frame does not break the streak
    tracker.update([face(100)])
    assert track.streak == 3
    tracker.update([face(100, "with_mask")])  # a frame with a mask starts it again
    assert track.streak == 1 and track.face.label == "with_mask"


def test_one_person_through_the_hub_is_counted_once(data_dir):
    """End to end: the hub's worker calls the monitor with every frame; 30+ frames of one face give one person."""
    history = History(database_url("", data_dir), "local")
    monitor = SourceMonitor("door", [history])
    analyzer = CountingAnalyzer()  # the same masked face in every frame
    hub = StreamHub(FakeCamera(fps=100), analyzer, "door", idle_timeout=30, on_analysis=monitor)
    frames = hub.frames()
    next(frames)  # the first viewer starts the worker
    try:
        wait_until(lambda: analyzer.calls >= 30, what="30 analyzed frames")
    finally:
        frames.close()
        hub.close()
    assert monitor.people() == {"with_mask": 1}
    assert history.flush()
    report = history.report(60, now=time.time())
    assert report["total"]["totals"]["people"] == 1
    assert report["sources"]["door"]["totals"]["with_mask"] == 1
    history.close()


def scored(x: int, p_mask: float, y: int = 50) -> Face:
    label = "with_mask" if p_mask >= 0.5 else "without_mask"
    return Face((x, y, 60, 60), label, max(p_mask, 1 - p_mask), (p_mask, 1 - p_mask))


def test_steady_labels_ride_out_a_one_frame_flip_but_follow_a_real_change():
    smoother = LabelSmoother(["with_mask", "without_mask"], window=LABEL_WINDOW)
    p_mask = [0.9] * 5 + [0.05] + [0.9] * 4 + [0.1] * 6  # one bad frame, then the mask really comes off
    labels = [smoother.smooth([scored(100 + i, p)])[0].label for i, p in enumerate(p_mask)]
    assert labels[:10] == ["with_mask"] * 10  # the single wrong frame flips nothing
    assert labels[10:13] == ["with_mask"] * 2 + ["without_mask"]  # the third frame without a mask tips it
    assert labels[13:] == ["without_mask"] * 3


def test_each_face_keeps_its_own_steady_label_and_new_faces_start_fresh():
    smoother = LabelSmoother(["with_mask", "without_mask"], window=LABEL_WINDOW)
    for i in range(5):
        left, right = smoother.smooth([scored(20 + i, 0.95), scored(300 - i, 0.1)])
    assert (left.label, right.label) == ("with_mask", "without_mask")
    left, right = smoother.smooth([scored(25, 0.2), scored(295, 0.9)])  # both flip for one frame
    assert (left.label, right.label) == ("with_mask", "without_mask")
    (newcomer,) = smoother.smooth([scored(500, 0.2, y=300)])  # far from both: its own first frame decides
    assert newcomer.label == "without_mask" and newcomer.confidence == 0.8


def test_a_video_analyzer_steadies_labels_and_one_frame_at_a_time_does_not():
    class FlickeringClassifier:
        """A masked face the model gets wrong on its 6th frame."""

        class_names = ["with_mask", "without_mask"]

        def __init__(self) -> None:
            self.calls = 0

        def classify(self, faces_bgr):
            self.calls += 1
            p = 0.1 if self.calls == 6 else 0.9
            return [Prediction("with_mask" if p > 0.5 else "without_mask", max(p, 1 - p), (p, 1 - p))]

    class OneFace:
        def detect(self, frame_bgr):
            return [(40, 40, 60, 60)]

    frame = np.zeros((200, 200, 3), np.uint8)
    for window, flips in ((1, 2), (LABEL_WINDOW, 0)):
        video = FrameAnalyzer(OneFace(), FlickeringClassifier(), label_window=window).for_video()
        labels = [video.analyze(frame)[0].label for _ in range(10)]
        assert sum(a != b for a, b in pairwise(labels)) == flips
