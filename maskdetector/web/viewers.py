"""The viewer side of a stream: caps on viewers per source and in all, and one viewer's MJPEG parts.

Every open stream keeps a server thread and a socket busy and costs a JPEG write per frame, so the number is
capped: per source (`max_viewers_per_source`) and for the whole app (`max_viewers`, shared by every source's
hub through one ViewerCount). A viewer beyond either cap is refused at once (503 JSON) instead of queueing
behind the others or starving the page's own requests of threads.
"""

import threading
from collections.abc import Callable, Generator, Iterator

BOUNDARY = "frame"


class ViewerLimit(Exception):
    """Too many viewers; the message says which cap was reached."""


class ViewerCount:
    """The viewers of every source of one app, against the app's total cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self._count >= self.limit:
                raise ViewerLimit(f"the server has its {self.limit} viewers; try again later")
            self._count += 1

    def give(self) -> None:
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


class Viewer:
    """One counted viewer of a hub: iterate `frames()`; `close()` (idempotent) counts it out again, whether or not
    its frames were ever asked for (a client that leaves before the first byte)."""

    def __init__(self, jpegs: Callable[[], Iterator[bytes]], leave: Callable[[], None]) -> None:
        self._jpegs = jpegs
        self._leave = leave
        self._lock = threading.Lock()
        self._left = False

    def frames(self) -> Generator[bytes, None, None]:
        try:
            yield from self._jpegs()
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            left, self._left = self._left, True
        if not left:
            self._leave()


def multipart_stream(jpegs: Iterator[bytes]) -> Generator[bytes, None, None]:
    """Wrap JPEGs as multipart/x-mixed-replace parts."""
    for jpeg in jpegs:
        head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
        yield head.encode("ascii") + jpeg + b"\r\n"
