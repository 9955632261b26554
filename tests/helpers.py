"""Test doubles for the streaming stack: a counting fake camera, a counting analyzer, a served app, MJPEG parsing."""

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from werkzeug.serving import make_server

from maskdetector.sources.capture import SourceError
from maskdetector.types import Face

FRAME_VALUE = 180  # fake frames are flat grey at this level; placeholders are dark (~32)


class FakeCamera:
    """Opens FakeSources that pace flat frames at `fps`; set `broken` to make opening and reading fail."""

    def __init__(self, fps: float = 50.0, shape: tuple[int, int] = (120, 160)) -> None:
        self.interval = 1.0 / fps
        self.shape = shape
        self.broken = False
        self.opens = self.reads = self.releases = 0
        self._lock = threading.Lock()

    def __call__(self) -> "FakeSource":
        if self.broken:
            raise SourceError("fake camera unplugged")
        with self._lock:
            self.opens += 1
        return FakeSource(self)

    def count_read(self) -> None:
        with self._lock:
            self.reads += 1

    def count_release(self) -> None:
        with self._lock:
            self.releases += 1


class FakeSource:
    def __init__(self, camera: FakeCamera) -> None:
        self.camera = camera

    def read(self) -> np.ndarray:
        time.sleep(self.camera.interval)
        if self.camera.broken:
            raise SourceError("fake camera unplugged")
        self.camera.count_read()
        return np.full((*self.camera.shape, 3), FRAME_VALUE, np.uint8)

    def release(self) -> None:
        self.camera.count_release()


class CountingAnalyzer:
    """Finds one masked 'face' per frame and counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        self.calls += 1
        return [Face((20, 20, 40, 40), "with_mask", 0.98)]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll until `condition()` holds; a generous deadline only guards against hanging, it is not a timing test."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Serve `app` from a threaded werkzeug server on a free 127.0.0.1 port; yields the base URL."""
    from maskdetector.web.state import get_state

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        get_state(app).close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def read_part(response: http.client.HTTPResponse, boundary: bytes = b"frame") -> bytes:
    """The JPEG of the next multipart/x-mixed-replace part."""
    line = response.readline()
    while line in (b"\r\n", b"\n"):
        line = response.readline()
    assert line.strip() == b"--" + boundary, line
    headers = {}
    while (line := response.readline().strip()) != b"":
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    return response.read(int(headers["content-length"]))
