"""Capture and analysis overlapped: the stream keeps the camera's rate while the model is busy, every streamed frame
carries the latest boxes, the model always gets the newest frame (lag cannot grow), on_analysis once per analysis.

The analyzer here blocks on an event the test controls, so nothing depends on timing.
"""

import threading

import cv2
import numpy as np
from helpers import FRAME_VALUE, FakeCamera, FakeSource, wait_until

from maskdetector.constants import CLASS_DISPLAY
from maskdetector.types import Face
from maskdetector.web.streaming import StreamHub

LEFT, RIGHT = (10, 30, 40, 40), (100, 30, 40, 40)


class NumberedCamera(FakeCamera):
    """FakeCamera whose frames carry their read number (from 1) in the first pixels."""

    def __call__(self) -> FakeSource:
        source = super().__call__()
        read = source.read

        def numbered() -> np.ndarray:
            frame = read()
            frame[0, :4, 0] = np.frombuffer(np.uint32(self.reads).tobytes(), np.uint8)
            return frame

        source.read = numbered
        return source


def frame_number(frame: np.ndarray) -> int:
    return int(np.frombuffer(frame[0, :4, 0].tobytes(), np.uint32)[0])


class GatedAnalyzer:
    """Finds a masked face at LEFT on its first frame and at RIGHT afterwards, each analysis only once the test
    allows it; `fail_on` makes that call raise instead."""

    def __init__(self, fail_on: int = 0) -> None:
        self._permits = threading.Semaphore(0)
        self.started: list[int] = []  # frame numbers, in the order analysis began
        self.done = 0
        self.fail_on = fail_on

    def allow(self, analyses: int = 1) -> None:
        for _ in range(analyses):
            self._permits.release()

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        self.started.append(frame_number(frame_bgr))
        self._permits.acquire(timeout=30)
        self.done += 1
        if self.done == self.fail_on:
            raise RuntimeError("model crashed")
        return [Face(LEFT if self.done == 1 else RIGHT, "with_mask", 0.9)]


def box_drawn(jpeg: bytes, box: tuple[int, int, int, int]) -> bool:
    """Whether the with_mask colour is on the left edge of `box` in a streamed JPEG."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
    x, y, _, h = box
    edge = image[y + 5 : y + h - 5, x : x + 2].reshape(-1, 3).mean(axis=0)
    expected = np.array(CLASS_DISPLAY["with_mask"][1])
    return bool(np.abs(edge - expected).max() < 60)


def make_hub(camera: FakeCamera, analyzer: GatedAnalyzer, **options: object) -> StreamHub:
    settings = {"idle_timeout": 30, "retry_initial": 0.05, "retry_max": 0.2, **options}
    return StreamHub(camera, analyzer, "numbered camera", **settings)


def test_stream_runs_on_while_analysis_is_busy_and_analysis_takes_the_newest_frame():
    camera, analyzer = NumberedCamera(fps=100, shape=(120, 160)), GatedAnalyzer()
    analyzed: list[int] = []
    hub = make_hub(camera, analyzer, on_analysis=lambda frame, faces: analyzed.append(frame_number(frame)))
    frames = hub.frames()
    next(frames)
    wait_until(lambda: analyzer.started, what="the first analysis")
    streamed = [next(frames) for _ in range(20)]  # the model is stuck on its first frame: the stream goes on
    assert analyzer.done == 0 and not any(box_drawn(jpeg, LEFT) for jpeg in streamed)
    newest_before_release = camera.reads

    analyzer.allow()
    wait_until(lambda: len(analyzer.started) >= 2, what="the second analysis")
    # Not the frame after the first one, as a queue would give: the newest one, skipping all in between.
    assert analyzer.started[1] >= newest_before_release - 1 > analyzer.started[0] + 10
    analyzer.allow(2)
    wait_until(lambda: analyzer.done >= 3, what="more analyses")
    assert box_drawn(next(frames), RIGHT)  # streamed frames carry the latest boxes
    frames.close()
    analyzer.allow(1000)
    hub.close()

    assert analyzed == analyzer.started  # on_analysis once per analyzed frame, with that frame
    stats = hub.stats()
    assert stats["analyzed"] == len(analyzed) < stats["frames"] == camera.reads


def test_frames_between_analyses_carry_the_latest_boxes():
    camera, analyzer = NumberedCamera(fps=100, shape=(120, 160)), GatedAnalyzer()
    hub = make_hub(camera, analyzer)
    frames = hub.frames()
    next(frames)
    wait_until(lambda: analyzer.started, what="the first analysis")
    analyzer.allow()  # only the first analysis: the second blocks, and every frame streamed meanwhile shows the first
    wait_until(lambda: len(analyzer.started) == 2, what="the second analysis")
    streamed = [next(frames) for _ in range(10)]
    assert all(box_drawn(jpeg, LEFT) and not box_drawn(jpeg, RIGHT) for jpeg in streamed)
    assert hub.stats()["with_mask"] == 1
    analyzer.allow(1000)
    frames.close()
    hub.close()


def test_failed_analysis_gives_a_placeholder_then_the_stream_recovers():
    camera, analyzer = NumberedCamera(fps=100, shape=(120, 160)), GatedAnalyzer(fail_on=2)
    analyzer.allow(1000)
    hub = make_hub(camera, analyzer)
    frames = hub.frames()

    def brightness(jpeg: bytes) -> float:
        return float(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE).mean())

    assert next(f for f in frames if brightness(f) < FRAME_VALUE / 2)  # "No camera: internal error ..."
    assert hub.stats()["camera_reason"].startswith("internal error (RuntimeError)")
    assert next(f for f in frames if brightness(f) > FRAME_VALUE / 2)
    wait_until(lambda: analyzer.done >= 4, what="analysis after recovery")
    assert hub.stats()["camera"] == "ok"
    frames.close()
    hub.close()
    assert camera.opens == camera.releases == 2
