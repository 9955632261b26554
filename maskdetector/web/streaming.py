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
from collections import Counter
from collections.abc import Callable, Generator

import numpy as np

from maskdetector.constants import CLASS_DISPLAY
from maskdetector.sources.capture import FrameSource, SourceEnded, SourceError
from maskdetector.types import Analyzer, Face
from maskdetector.vision.annotation import PLACEHOLDER_SIZE, annotate, encode_jpeg, placeholder_frame
from maskdetector.vision.motion_gate import MotionGate
from maskdetector.vision.pipeline import count_labels
from maskdetector.web.scheduler import JOIN_TIMEOUT_S, AnalysisScheduler

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
        hub.close()


def smoothed_rate(rate: float, interval: float) -> float:
    """Events per second from an exponential moving average of the intervals between them (averaging 1/interval
    instead lets two events in quick succession, such as two analyses of frames that queued up, read as
    thousands per second)."""
    if rate == 0:
        return 1.0 / interval
    return 1.0 / (0.9 / rate + 0.1 * interval)


class StreamHub:
    """The shared worker for one source plus the latest annotated JPEG and live statistics."""

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
    ) -> None:
        self.source_name = source_name
        # Frames in which nothing moved since the last analyzed one keep its boxes instead (motion_gate.py).
        self._motion_gating = motion_gating
        # The app shares one scheduler between all its sources; a hub on its own gets a one-thread pool of its own.
        self._own_scheduler = scheduler is None
        self._scheduler = scheduler or AnalysisScheduler(workers=1, name=f"analysis {source_name}")
        # Called on the analysis thread with each analyzed frame and its faces (statistics, alerts), once per
        # analyzed frame (a frame that arrives while the model is busy is streamed but not analyzed).
        self._on_analysis = on_analysis
        self._source_factory = source_factory
        self._analyzer = analyzer
        self._jpeg_quality = jpeg_quality
        self._idle_timeout = idle_timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._started_at = time.monotonic()
        # Held by a worker for its whole life: a new worker waits until the old one has released the camera.
        self._capture_lock = threading.Lock()
        self._stop = threading.Event()
        # Guards everything below; viewers wait on it for a new frame number.
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._viewers = 0
        self._last_viewer_at = time.monotonic()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._frames = 0
        self._fps = 0.0
        self._faces: list[Face] = []  # the latest analysis, drawn on every frame streamed until the next one
        self._analyzed = 0
        self._still = 0  # frames not analyzed because nothing moved
        self._jpeg_faces: list[Face] | None = None  # the boxes drawn on self._jpeg
        self._skipped = 0  # frames replaced by a newer one before the model got to them
        self._analyzed_at: float | None = None
        self._analysis_fps = 0.0
        self._counts: Counter[str] = Counter()
        self._camera_reason: str | None = None
        self._frame_size = PLACEHOLDER_SIZE
        _live_hubs.add(self)

    # Viewer side

    def frames(self) -> Generator[bytes, None, None]:
        """JPEG bytes for one viewer: each new frame once, the latest again after KEEPALIVE_S of silence.

        Counts the viewer while the generator runs; closing it (client gone) counts it out again.
        """
        if not self._add_viewer():
            return
        try:
            seen = -1
            while True:
                with self._cond:
                    self._cond.wait_for(lambda last=seen: self._seq != last or self._closed, timeout=KEEPALIVE_S)
                    if self._closed:
                        return
                    jpeg, seen = self._jpeg, self._seq
                if jpeg is not None:
                    yield jpeg
        finally:
            self._remove_viewer()

    def stats(self) -> dict[str, object]:
        with self._cond:
            return {
                "source": self.source_name,
                "camera": "unavailable" if self._camera_reason else "ok",
                "camera_reason": self._camera_reason or "",
                "capturing": self._thread is not None,
                "fps": round(self._fps, 1),
                "analysis_fps": round(self._analysis_fps, 1),
                "faces": sum(self._counts.values()),
                **{label: self._counts.get(label, 0) for label in CLASS_DISPLAY},
                "viewers": self._viewers,
                "frames": self._frames,
                "analyzed": self._analyzed,
                "skipped_still": self._still,
                "skipped": self._skipped,
                "uptime_s": round(time.monotonic() - self._started_at, 1),
            }

    def close(self) -> None:
        """Stop the worker, release the source and end every viewer's stream; safe to call twice."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        self._stop.set()
        # A worker that went idle may still be releasing the camera; it holds this lock until it has.
        stopped = self._capture_lock.acquire(timeout=JOIN_TIMEOUT_S)
        if stopped:
            self._capture_lock.release()
        if thread is not None:
            thread.join(JOIN_TIMEOUT_S)
            stopped = stopped and not thread.is_alive()
        if not stopped:
            log.warning("capture thread for %s did not stop within %.0fs", self.source_name, JOIN_TIMEOUT_S)
        if self._own_scheduler:
            self._scheduler.close()

    def _add_viewer(self) -> bool:
        with self._cond:
            if self._closed:
                return False
            self._viewers += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"capture {self.source_name}", daemon=True)
                self._thread.start()
            return True

    def _remove_viewer(self) -> None:
        with self._cond:
            self._viewers -= 1
            self._last_viewer_at = time.monotonic()

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

    def _publish(self, frame: np.ndarray, moved: bool) -> None:
        """The frame, annotated and encoded, to every viewer; a still frame with the same boxes as the last one
        encoded is that one again (the picture has not changed, and encoding is most of an idle camera's cost)."""
        with self._cond:
            faces = self._faces
            jpeg = self._jpeg if not moved and faces is self._jpeg_faces and self._camera_reason is None else None
        if jpeg is None:
            jpeg = encode_jpeg(annotate(frame, faces, self._fps), self._jpeg_quality)
        with self._cond:
            self._jpeg_faces = faces
            self._jpeg = jpeg
            self._seq += 1
            self._frames += 1
            self._camera_reason = None
            self._frame_size = frame.shape[:2]
            self._cond.notify_all()

    def _analyzed_frame(self, frame: np.ndarray, faces: list[Face]) -> None:
        """The scheduler's result, on one of its threads: the boxes for the frames streamed from now on, statistics,
        the hook."""
        now = time.monotonic()
        with self._cond:
            self._analyzed += 1
            if self._analyzed_at is not None and now > self._analyzed_at:
                self._analysis_fps = smoothed_rate(self._analysis_fps, now - self._analyzed_at)
            self._analyzed_at = now
            if self._camera_reason is None:  # a frame analyzed after the source failed must not revive its boxes
                self._faces = faces
                self._counts = count_labels(faces)
        self._notify_analysis(frame, faces)

    def _still_frame(self, frame: np.ndarray) -> None:
        """A frame in which nothing moved: the last analysis holds for it too, so the hook sees the same faces again
        (tracks go on, a face without a mask stays one)."""
        with self._cond:
            self._still += 1
            faces = self._faces
        self._notify_analysis(frame, faces)

    def _reset_results(self) -> None:
        """Forget rates and boxes (caller holds self._cond): the source failed or was released."""
        self._fps = self._analysis_fps = 0.0
        self._analyzed_at = None
        self._faces = []
        self._jpeg_faces = None
        self._counts = Counter()

    def _notify_analysis(self, frame: np.ndarray, faces: list[Face]) -> None:
        if self._on_analysis is None:
            return
        try:
            self._on_analysis(frame, faces)
        except Exception:  # a statistics or alert bug must not stop the stream
            log.exception("on_analysis callback for %s failed", self.source_name)

    def _publish_unavailable(self, exc: Exception, retry_in: float) -> None:
        if isinstance(exc, SourceEnded):
            reason = str(exc)
            log.info("%s", reason)
        elif isinstance(exc, SourceError):
            reason = str(exc)
            log.warning("%s; retrying in %.1fs", reason, retry_in)
        else:
            reason = f"internal error ({type(exc).__name__}), see the server log"
            log.exception("capture/analysis of %s failed", self.source_name)
        jpeg = encode_jpeg(placeholder_frame(f"No camera: {reason}", self._frame_size), self._jpeg_quality)
        with self._cond:
            self._jpeg = jpeg
            self._seq += 1
            self._reset_results()
            self._camera_reason = reason
            self._cond.notify_all()
