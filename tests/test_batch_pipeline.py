"""detect.py's overlapped frame pipeline: every frame analyzed and emitted once, in order; errors and early exits."""

import threading
import time

import numpy as np
import pytest

from maskdetector.errors import UserError
from maskdetector.sources.files import Frame, analyze_in_order, prefetched
from maskdetector.types import Face


def numbered_frames(n: int, closed: list[bool] | None = None):
    try:
        for i in range(n):
            yield Frame("clip.mp4", np.full((4, 4, 3), i % 256, np.uint8), i, 30.0)
    finally:
        if closed is not None:
            closed.append(True)


def test_every_frame_is_analyzed_and_emitted_once_in_order():
    analyzed, emitted, threads = [], [], set()

    def analyze(image: np.ndarray) -> list[Face]:
        analyzed.append(int(image[0, 0, 0]))
        time.sleep(0.001 * (int(image[0, 0, 0]) % 3))  # uneven frame times
        return [Face((0, 0, 2, 2), "with_mask", image[0, 0, 0] / 255)]

    def emit(frame: Frame, faces: list[Face]) -> None:
        threads.add(threading.current_thread().name)
        assert faces[0].confidence == frame.image[0, 0, 0] / 255  # each frame with its own faces
        emitted.append(frame.index)

    analyze_in_order(numbered_frames(50), analyze, emit)
    assert analyzed == emitted == list(range(50))
    assert threading.current_thread().name not in threads  # writing ran beside the analysis


def test_a_decoding_error_arrives_after_the_frames_before_it():
    def broken():
        yield from numbered_frames(3)
        raise UserError("clip.mp4 gave no frames")

    emitted = []
    with pytest.raises(UserError, match="gave no frames"):
        analyze_in_order(broken(), lambda image: [], lambda frame, faces: emitted.append(frame.index))
    assert emitted == [0, 1, 2]


def test_stopping_early_releases_the_source():
    closed: list[bool] = []
    frames = prefetched(numbered_frames(1000, closed), depth=4)
    assert [next(frames).index for _ in range(3)] == [0, 1, 2]
    frames.close()
    assert closed == [True]
