"""One capture thread per source, shared by every viewer; its analysis goes to the scheduler's pool.

Ten open browser tabs must not open the camera ten times nor run the model ten times per frame, so a
single worker thread reads, annotates and JPEG-encodes each frame once and every viewer waits on a shared
condition for the next frame number. Analysis runs beside it, on the pool shared by every source
(scheduler.py), always on the newest frame: the stream keeps the camera's rate whatever the model's speed,
each frame carries the latest boxes, and a slow model skips frames instead of queueing them, so lag cannot grow.
The worker starts with the first viewer, releases the camera once nobody has watched for `idle_timeout`
seconds, and is started again by the next viewer.
When the source fails, viewers get a "No camera: <reason>" placeholder while the worker retries with
back-off. Unlike a class-level singleton, all state lives on the instance, so tests and several apps
can run side by side.
"""

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Generator

import numpy as np

from maskdetector.sources.capture import FrameSource, SourceEnded
from maskdetector.types import Analyzer, Face
from maskdetector.vision.motion_gate import MotionGate
from maskdetector.web.scheduler import JOIN_TIMEOUT_S, AnalysisScheduler
from maskdetector.web.stream_results import StreamResults, smoothed_rate
from maskdetector.web.viewers import Viewer, ViewerCount, ViewerLimit

log = logging.getLogger(__name__)

# A viewer with no new frame for this long gets the latest one again: keeps the placeholder on screen and
# lets the server notice a closed connection (it only finds out when a write fails).
KEEPALIVE_S = 1.0
# Longest the worker sleeps between checks for idleness or close() while it waits to retry.
POLL_S = 0.25


_live_hubs: "weakref.WeakSet[StreamHub]" = weakref.WeakSet()


@atexit.register
def _close_live_hubs() -> None:
    """Stop capture threads before the interpreter tears down: a daemon thread caught inside OpenCV or
    TensorFlow code at that moment aborts the process (seen with gunicorn workers) and skips releasing the camera.
    """
    for hub in list(_live_hubs):
        if not hub.closed:  # one already closed has had its wait (WebState.close gives all sources 1.5 s)
            hub.close()


class StreamHub(StreamResults):
    """The shared worker for one source, its viewers, and (StreamResults) the latest annotated JPEG and statistics."""

    def __init__(
        self,
        source_factory: Callable[[], FrameSource],
        analyzer: Analyzer,
        source_name: str,
        jpeg_quality: int = 80,
        idle_timeout: float = 10.0,
        retry_initial: float = 0.5,
        retry_max: float = 8.0,
        on_analysis: Callable[[np.ndarray, list[Face]], None] | None = None,
        scheduler: AnalysisScheduler | None = None,
        motion_gating: bool = False,
        max_viewers: int = 0,
        viewer_count: ViewerCount | None = None,
    ) -> None:
        # Viewers from viewer() are capped at `max_viewers` (0: no cap) here and by `viewer_count` in all.
        self._max_viewers = max_viewers
        self._viewer_count = viewer_count
        # Frames in which nothing moved since the last analyzed one keep its boxes instead (motion_gate.py).
        self._motion_gating = motion_gating
        # The app shares one scheduler between all its sources; a hub on its own gets a one-thread pool of its own.
        self._own_scheduler = scheduler is None
        self._scheduler = scheduler or AnalysisScheduler(workers=1, name=f"analysis {source_name}")
        self._source_factory = source_factory
        self._analyzer = analyzer
        self._idle_timeout = idle_timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        super().__init__(source_name, jpeg_quality, on_analysis)
        # Held by a worker for its whole life: a new worker waits until the old one has released the camera.
        self._capture_lock = threading.Lock()
        self._stop = threading.Event()
        # Guarded by self._cond (StreamResults'), like the results and the thread.
        self._capped = 0  # viewers from viewer(), under the caps
        self._last_viewer_at = time.monotonic()
        _live_hubs.add(self)

    # Viewer side

    def viewer(self) -> Viewer:
        """A counted viewer for a client (routes.py); ViewerLimit when this source or the app has its cap."""
        with self._cond:
            if self._closed:
                raise ViewerLimit(f"{self.source_name} is shutting down")
            if self._max_viewers and self._capped >= self._max_viewers:
                raise ViewerLimit(f"{self.source_name} has its {self._max_viewers} viewers; try again later")
            if self._viewer_count is not None:
                self._viewer_count.take()
            self._add_viewer()
        return Viewer(self._jpegs, self._remove_viewer)

    def frames(self) -> Generator[bytes, None, None]:
        """JPEG bytes for an uncapped viewer (keep_capturing, tests): each new frame once, the latest again after
        KEEPALIVE_S of silence. Counts the viewer while the generator runs; closing it counts it out again."""
        with self._cond:
            if self._closed:
                return
            self._add_viewer(counted=False)
        try:
            yield from self._jpegs()
        finally:
            self._remove_viewer(counted=False)

    def _jpegs(self) -> Generator[bytes, None, None]:
        seen = -1
        while True:
            with self._cond:
                self._cond.wait_for(lambda last=seen: self._seq != last or self._closed, timeout=KEEPALIVE_S)
                if self._closed:
                    return
                jpeg, seen = self._jpeg, self._seq
            if jpeg is not None:
                yield jpeg

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def stop(self) -> None:
        """Tell the worker to stop and end every viewer's stream, without waiting (close() waits)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._stop.set()

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Stop the worker, release the source and end every viewer's stream, waiting up to `timeout` seconds for
        the worker (one stuck in a stream's open or read is left behind, a daemon); safe to call twice."""
        self.stop()
        deadline = time.monotonic() + timeout
        with self._cond:
            thread = self._thread
        # A worker that went idle may still be releasing the camera; it holds this lock until it has.
        stopped = self._capture_lock.acquire(timeout=timeout)
        if stopped:
            self._capture_lock.release()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            stopped = stopped and not thread.is_alive()
        if not stopped:
            log.warning("capture thread for %s did not stop within %.1fs", self.source_name, timeout)
        if self._own_scheduler:
            self._scheduler.close()
        return stopped

    def _add_viewer(self, counted: bool = True) -> None:
        """Caller holds self._cond. `counted`: the viewer holds a place under the caps (viewer())."""
        self._viewers += 1
        self._capped += counted
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"capture {self.source_name}", daemon=True)
            self._thread.start()

    def _remove_viewer(self, counted: bool = True) -> None:
        with self._cond:
            self._viewers -= 1
            self._capped -= counted
            self._last_viewer_at = time.monotonic()
        if counted and self._viewer_count is not None:
            self._viewer_count.give()

    # Worker side

    def _keep_running(self) -> bool:
        """False once closed, or (handing over to the next viewer's fresh worker) once idle long enough."""
        with self._cond:
            if self._closed or self._thread is not threading.current_thread():
                return False
            if self._viewers == 0 and time.monotonic() - self._last_viewer_at >= self._idle_timeout:
                log.info("nobody watching %s for %.0fs: releasing it", self.source_name, self._idle_timeout)
                self._thread = None
                self._jpeg = None
                self._reset_results()
                return False
            return True

    def _sleep(self, seconds: float) -> None:
        """Wait up to `seconds`, returning early when the worker should stop."""
        deadline = time.monotonic() + seconds
        while self._keep_running() and (remaining := deadline - time.monotonic()) > 0:
            self._stop.wait(min(remaining, POLL_S))

    def _run(self) -> None:
        with self._capture_lock:
            analysis = self._scheduler.lane(self._analyzer, self._analyzed_frame, self.source_name)
            gate = MotionGate() if self._motion_gating else None
            source: FrameSource | None = None
            delay = self._retry_initial
            last_frame_at: float | None = None
            try:
                while self._keep_running():
                    try:
                        if source is None:
                            source = self._source_factory()
                        frame = source.read()
                        moved = gate is None or gate.moved(frame)
                        if moved and analysis.submit(frame):
                            with self._cond:
                                self._skipped += 1
                    except Exception as exc:  # whatever breaks, viewers get a placeholder rather than a hang
                        if source is not None:
                            source.release()
                            source = None
                        gate = MotionGate() if self._motion_gating else None
                        last_frame_at = None
                        self._publish_unavailable(exc, delay)
                        # A finished file stays finished until the worker is restarted by a new viewer.
                        self._sleep(float("inf") if isinstance(exc, SourceEnded) else delay)
                        delay = min(delay * 2, self._retry_max)
                        continue
                    delay = self._retry_initial
                    now = time.monotonic()
                    if last_frame_at is not None and now > last_frame_at:
                        self._fps = smoothed_rate(self._fps, now - last_frame_at)
                    last_frame_at = now
                    self._publish(frame, moved)
                    if not moved:
                        self._still_frame(frame)
            finally:
                if source is not None:
                    source.release()
                analysis.stop()
