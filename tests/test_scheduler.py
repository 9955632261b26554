"""The analysis pool shared by every camera: each camera gets its turn, always on its newest frame, the pool's
threads work side by side, one camera never has two frames in analysis, and a failed analysis reaches the camera.

The analyzer here blocks until the test allows each analysis, so nothing depends on timing.
"""

import threading

import numpy as np
import pytest
from helpers import wait_until

from maskdetector.types import Face
from maskdetector.web.scheduler import AnalysisScheduler, pool_size


class Turnstile:
    """Records (camera, frame number) of each analysis as it starts, then waits for the test to allow it."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.running = 0
        self.most_running = 0
        self.running_per_camera: dict[str, int] = {}
        self.most_per_camera = 0
        self._permits = threading.Semaphore(0)
        self._lock = threading.Lock()

    def allow(self, analyses: int = 1) -> None:
        for _ in range(analyses):
            self._permits.release()

    def analyzer(self, camera: str) -> "CameraAnalyzer":
        return CameraAnalyzer(self, camera)


class CameraAnalyzer:
    def __init__(self, turnstile: Turnstile, camera: str) -> None:
        self.turnstile, self.camera = turnstile, camera

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        t = self.turnstile
        with t._lock:
            t.started.append((self.camera, int(frame_bgr[0, 0])))
            t.running += 1
            t.most_running = max(t.most_running, t.running)
            t.running_per_camera[self.camera] = t.running_per_camera.get(self.camera, 0) + 1
            t.most_per_camera = max(t.most_per_camera, t.running_per_camera[self.camera])
        t._permits.acquire(timeout=30)
        with t._lock:
            t.running -= 1
            t.running_per_camera[self.camera] -= 1
        if int(frame_bgr[0, 0]) < 0:
            raise RuntimeError("model crashed")
        return []


def frame(number: int) -> np.ndarray:
    return np.full((2, 2), number, np.int64)


@pytest.fixture
def pool():
    schedulers = []

    def make(workers: int) -> AnalysisScheduler:
        schedulers.append(AnalysisScheduler(workers=workers))
        return schedulers[-1]

    yield make
    for scheduler in schedulers:
        scheduler.close()


def test_every_camera_gets_its_turn_however_fast_its_frames_come(pool):
    turnstile, scheduler = Turnstile(), pool(1)
    lanes = {}
    counters = {name: 0 for name in "abcd"}

    def next_frame(name: str) -> None:
        counters[name] += 1
        lanes[name].submit(frame(counters[name]))

    for name in "abcd":
        # Each camera has a new frame ready the moment its last one is analyzed; "a" even gets ten at a time.
        lanes[name] = scheduler.lane(turnstile.analyzer(name), lambda f, faces, n=name: next_frame(n), name)
    for name in "abcd":
        for _ in range(10 if name == "a" else 1):
            next_frame(name)
    turnstile.allow(16)
    wait_until(lambda: len(turnstile.started) >= 17, what="17 analyses")
    order = "".join(camera for camera, _ in turnstile.started[:16])
    assert order == "abcd" * 4  # round robin: the camera with more frames gets no more turns
    turnstile.allow(1000)


def test_a_camera_is_analyzed_on_its_newest_frame(pool):
    turnstile, scheduler = Turnstile(), pool(1)
    lane = scheduler.lane(turnstile.analyzer("door"), lambda f, faces: None, "door")
    lane.submit(frame(1))
    wait_until(lambda: turnstile.started, what="the first analysis")
    for number in range(2, 11):  # arrive while frame 1 is being analyzed: only the last one waits
        lane.submit(frame(number))
    turnstile.allow(2)
    wait_until(lambda: len(turnstile.started) == 2, what="the second analysis")
    assert turnstile.started == [("door", 1), ("door", 10)]
    lane.stop()
    assert len(turnstile.started) == 2


def test_the_pool_threads_work_side_by_side_but_one_camera_never_twice_at_once(pool):
    turnstile, scheduler = Turnstile(), pool(2)
    lanes = [scheduler.lane(turnstile.analyzer(name), lambda f, faces: None, name) for name in "abc"]
    for lane in lanes:
        lane.submit(frame(1))
    wait_until(lambda: turnstile.running == 2, what="two analyses at once")
    assert {camera for camera, _ in turnstile.started} < {"a", "b", "c"}  # the third waits for a free thread
    turnstile.allow(3)
    wait_until(lambda: len(turnstile.started) == 3, what="the third camera's turn")

    alone = scheduler.lane(turnstile.analyzer("alone"), lambda f, faces: None, "alone")
    for number in range(2, 6):  # two threads free, frames coming faster than they are analyzed
        alone.submit(frame(number))
    turnstile.allow(1000)
    wait_until(lambda: ("alone", 5) in turnstile.started and turnstile.running == 0, what="the pool to go idle")
    assert turnstile.most_running == 2 and turnstile.most_per_camera == 1
    assert all(n == 1 for camera, n in turnstile.started if camera != "alone")
    running_alone = [n for camera, n in turnstile.started if camera == "alone"]
    assert running_alone == sorted(running_alone)  # in order, one at a time, on two threads


def test_a_failed_analysis_is_raised_by_the_cameras_next_submit_and_others_go_on(pool):
    turnstile, scheduler = Turnstile(), pool(1)
    results = []
    broken = scheduler.lane(turnstile.analyzer("broken"), lambda f, faces: None, "broken")
    working = scheduler.lane(turnstile.analyzer("working"), lambda f, faces: results.append(int(f[0, 0])), "working")
    turnstile.allow(1000)
    broken.submit(frame(-1))
    wait_until(lambda: turnstile.started, what="the failing analysis")
    working.submit(frame(7))
    wait_until(lambda: results == [7], what="the other camera's analysis")
    with pytest.raises(RuntimeError, match="model crashed"):
        broken.submit(frame(2))
    broken.submit(frame(3))  # raised once: the camera retries
    wait_until(lambda: ("broken", 3) in turnstile.started, what="the retried analysis")


def test_pool_size_gives_a_lone_camera_every_core(monkeypatch):
    """A lone camera's frames are analyzed one at a time, so it gets one worker whose interpreters use every core;
    more cameras get a worker per core, and an explicit --analysis-workers wins."""
    monkeypatch.setattr("maskdetector.web.scheduler.machine_cores", lambda: 2)
    assert pool_size(0, 1) == 1
    assert pool_size(0, 2) == pool_size(0, 8) == 2
    assert pool_size(3, 1) == 3
    scheduler = AnalysisScheduler(pool_size(0, 1))
    try:
        assert scheduler.interpreter_threads == 2
    finally:
        scheduler.close()
