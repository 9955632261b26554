"""The shared capture thread: one camera and one inference per frame for all viewers, idle release, recovery."""

import threading

import cv2
import numpy as np
import pytest
from helpers import FRAME_VALUE, CountingAnalyzer, FakeCamera, wait_until

from maskdetector.constants import CLASS_DISPLAY
from maskdetector.sources.capture import SourceEnded
from maskdetector.types import Face
from maskdetector.vision.annotation import annotate, draw_faces, placeholder_frame
from maskdetector.web.streaming import StreamHub, smoothed_rate


def make_hub(camera: FakeCamera, analyzer: CountingAnalyzer | None = None, **options: float) -> StreamHub:
    settings = {"idle_timeout": 0.2, "retry_initial": 0.05, "retry_max": 0.2, **options}
    return StreamHub(camera, analyzer or CountingAnalyzer(), "fake camera", **settings)


def brightness(jpeg: bytes) -> float:
    return float(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE).mean())


def is_placeholder(jpeg: bytes) -> bool:
    return brightness(jpeg) < FRAME_VALUE / 2


@pytest.fixture
def camera():
    return FakeCamera()


def test_ten_viewers_share_one_capture_and_one_inference_per_frame(camera):
    analyzer = CountingAnalyzer()
    hub = make_hub(camera, analyzer)
    all_connected = threading.Barrier(11, timeout=20)
    checked = threading.Barrier(11, timeout=20)
    received: list[list[bytes]] = []

    def viewer() -> None:
        frames = hub.frames()
        got = [next(frames)]
        all_connected.wait()
        checked.wait()
        got += [next(frames) for _ in range(4)]
        frames.close()
        received.append(got)

    threads = [threading.Thread(target=viewer) for _ in range(10)]
    for t in threads:
        t.start()
    all_connected.wait()
    assert hub.stats()["viewers"] == 10
    checked.wait()
    for t in threads:
        t.join(20)
    hub.close()

    assert len(received) == 10 and all(len(got) == 5 for got in received)
    assert camera.opens == 1
    assert camera.releases == 1
    assert analyzer.calls == camera.reads  # each frame analyzed once, whatever the number of viewers
    assert hub.stats()["frames"] == camera.reads


def test_closing_a_viewer_counts_it_out(camera):
    hub = make_hub(camera, idle_timeout=30)
    frames = hub.frames()
    next(frames)
    assert hub.stats()["viewers"] == 1
    frames.close()
    assert hub.stats()["viewers"] == 0
    hub.close()


def test_camera_released_when_idle_and_reopened_for_next_viewer(camera):
    hub = make_hub(camera)
    frames = hub.frames()
    next(frames)
    frames.close()
    wait_until(lambda: not hub.stats()["capturing"], what="idle release")
    assert camera.opens == 1 and camera.releases == 1

    frames = hub.frames()
    assert not is_placeholder(next(frames))
    assert camera.opens == 2
    frames.close()
    hub.close()
    assert camera.releases == 2


def test_source_failing_mid_stream_gives_placeholders_then_recovers(camera):
    hub = make_hub(camera, idle_timeout=30)
    frames = hub.frames()
    assert not is_placeholder(next(frames))
    assert hub.stats()["camera"] == "ok"

    camera.broken = True
    assert is_placeholder(next(f for f in frames if is_placeholder(f)))
    stats = hub.stats()
    assert stats["camera"] == "unavailable"
    assert stats["camera_reason"] == "fake camera unplugged"
    assert stats["faces"] == 0

    camera.broken = False
    assert not is_placeholder(next(f for f in frames if not is_placeholder(f)))
    assert hub.stats()["camera"] == "ok"
    frames.close()
    hub.close()
    assert camera.opens == camera.releases >= 2


def test_source_that_never_opens_still_serves_placeholder(camera):
    camera.broken = True
    hub = make_hub(camera)
    frames = hub.frames()
    assert is_placeholder(next(frames))
    assert is_placeholder(next(frames))  # repeated while retrying, the stream does not stall
    frames.close()
    hub.close()
    assert camera.opens == 0


def test_finished_video_is_not_reopened_until_a_new_worker():
    class OneShot:
        opens = 0

        def __call__(self):
            self.opens += 1
            return self

        def read(self):
            raise SourceEnded("clip.mp4 has ended")

        def release(self):
            pass

    source = OneShot()
    hub = StreamHub(source, CountingAnalyzer(), "clip.mp4", idle_timeout=30, retry_initial=0.01, retry_max=0.01)
    frames = hub.frames()
    assert is_placeholder(next(frames))
    next(frames)  # the keep-alive repeat, well after several retry delays
    assert source.opens == 1
    assert hub.stats()["camera_reason"] == "clip.mp4 has ended"
    frames.close()
    hub.close()


def test_close_ends_viewers_and_stops_the_thread(camera):
    hub = make_hub(camera, idle_timeout=30)
    frames = hub.frames()
    next(frames)
    hub.close()
    assert list(frames) == []  # the generator ends instead of blocking
    assert not any(t.name.startswith("capture ") and t.is_alive() for t in threading.enumerate())
    assert camera.opens == camera.releases == 1
    assert list(hub.frames()) == []  # a closed hub serves nobody


def test_stats_shape(camera):
    hub = make_hub(camera)
    stats = hub.stats()
    for key in ("fps", "faces", "with_mask", "without_mask", "viewers", "source", "camera", "camera_reason"):
        assert key in stats
    assert stats["source"] == "fake camera" and stats["camera"] == "ok" and stats["viewers"] == 0
    assert isinstance(stats["uptime_s"], float)
    hub.close()


def test_annotation_draws_class_colours_without_touching_input():
    frame = np.zeros((200, 200, 3), np.uint8)
    faces = [Face((20, 40, 60, 60), "with_mask", 0.98), Face((110, 40, 60, 60), "without_mask", 0.6)]
    out = draw_faces(frame, faces)
    assert frame.max() == 0
    assert tuple(out[70, 20]) == CLASS_DISPLAY["with_mask"][1]  # left edge of the first box
    assert tuple(out[70, 110]) == CLASS_DISPLAY["without_mask"][1]
    assert annotate(frame, faces, 12.5).shape == frame.shape


def test_placeholder_frame_has_requested_size():
    image = placeholder_frame("No camera: " + "very long reason " * 10, (240, 320))
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert image.max() > image.min()  # the message is drawn


def test_rate_of_uneven_events_is_their_average_rate():
    """Analyses that finish in pairs (one quick, one after a long wait) still read as the frames per second done."""
    rate = 0.0
    for interval in [0.0005, 0.0662] * 200:  # 2 frames per 66.7 ms = 30 per second
        rate = smoothed_rate(rate, interval)
    assert rate == pytest.approx(30.0, rel=0.1)
