"""Box tracking: people are counted once however many frames they stay in view, and through the stream hub."""

import time

from helpers import CountingAnalyzer, FakeCamera, wait_until

from maskdetector.analytics.history import History, database_url
from maskdetector.analytics.tracking import MAX_MISSED, BoxTracker
from maskdetector.types import Face
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
        wait_until(lambda: analyzer.calls >= 30, what="30 analysed frames")
    finally:
        frames.close()
        hub.close()
    assert monitor.people() == {"with_mask": 1}
    assert history.flush()
    report = history.report(60, now=time.time())
    assert report["total"]["totals"]["people"] == 1
    assert report["sources"]["door"]["totals"]["with_mask"] == 1
    history.close()
