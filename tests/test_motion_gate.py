"""Motion gating: a camera on a still scene is analyzed once and then left alone (its frames still streamed, the
skips counted in the statistics), and the first frame in which something moves is analyzed at once."""

import numpy as np
from helpers import CountingAnalyzer, FakeCamera, FakeSource, wait_until

from maskdetector.vision.motion_gate import MotionGate
from maskdetector.vision.preprocessing import read_image
from maskdetector.web.streaming import StreamHub

SCENE = "maksssksksss128"  # a real photo (scenes-dev) as the still picture


class StillCamera(FakeCamera):
    """Shows one picture, with a little sensor noise, until `walk_in()`: then a dark figure enters on the left."""

    def __init__(self, picture: np.ndarray) -> None:
        super().__init__(fps=100, shape=picture.shape[:2])
        self.picture = picture
        self.someone = False
        self.rng = np.random.default_rng(0)

    def __call__(self) -> FakeSource:
        source = super().__call__()
        camera = self

        def read() -> np.ndarray:
            FakeSource.read(source)
            noise = camera.rng.integers(-3, 4, camera.picture.shape)
            frame = np.clip(camera.picture.astype(np.int16) + noise, 0, 255).astype(np.uint8)
            if camera.someone:
                height, width = frame.shape[:2]
                frame[height // 4 : height // 4 * 3, width // 10 : width // 10 + width // 8] = 20
            return frame

        source.read = read
        return source


def test_a_still_scene_is_analyzed_once_and_a_change_at_once(shared_datasets):
    picture = read_image(shared_datasets / "scenes-dev" / "images" / f"{SCENE}.png")
    camera, analyzer = StillCamera(picture), CountingAnalyzer()
    hub = StreamHub(camera, analyzer, "corridor", idle_timeout=30, motion_gating=True)
    frames = hub.frames()
    try:
        next(frames)  # the first viewer starts the capture thread
        wait_until(lambda: hub.stats()["analyzed"] == 1, what="the first analysis")
        for _ in range(40):
            next(frames)
        stats = hub.stats()
        assert analyzer.calls == stats["analyzed"] == 1  # the first frame only
        assert stats["skipped_still"] >= 38 and stats["frames"] >= 40  # every frame streamed
        camera.someone = True
        wait_until(lambda: analyzer.calls == 2, what="the analysis of the frame someone walked into")
        before = hub.stats()["skipped_still"]
        for _ in range(20):
            next(frames)
        assert analyzer.calls == 2 and hub.stats()["skipped_still"] >= before + 18  # then still again: left alone
    finally:
        frames.close()
        hub.close()


def test_slow_change_adds_up_until_it_counts():
    gate = MotionGate()
    frame = np.full((480, 640, 3), 100, np.uint8)
    assert gate.moved(frame)  # the first frame always goes through
    lighter = [frame + step for step in range(1, 20)]  # one gray level per frame: never 12 between two frames
    let_through = [gate.moved(f) for f in lighter]
    assert let_through.index(True) == 11  # 12 levels above the last frame let through
    assert gate.moved(np.zeros((240, 320, 3), np.uint8))  # another frame size: a new picture


def test_without_gating_every_free_moment_analyses_a_frame():
    camera, analyzer = FakeCamera(fps=100), CountingAnalyzer()
    hub = StreamHub(camera, analyzer, "flat camera", idle_timeout=30)
    frames = hub.frames()
    try:
        next(frames)
        wait_until(lambda: analyzer.calls >= 5, what="analyses of identical frames")
        assert hub.stats()["skipped_still"] == 0
    finally:
        frames.close()
        hub.close()
