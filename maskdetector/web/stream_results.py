"""What one source's stream shows and counts: the latest annotated JPEG, the latest boxes, rates and statistics.

StreamHub (streaming.py) runs the threads and calls these methods: the capture thread publishes frames and
placeholders, the analysis pool hands in results. Everything here is guarded by one condition, on which the
viewers wait for the next frame number.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from maskdetector.constants import CLASS_DISPLAY
from maskdetector.sources.capture import SourceEnded, SourceError
from maskdetector.types import Face
from maskdetector.vision.annotation import PLACEHOLDER_SIZE, annotate, encode_jpeg, placeholder_frame
from maskdetector.vision.pipeline import count_labels

log = logging.getLogger(__name__)


def smoothed_rate(rate: float, interval: float) -> float:
    """Events per second from an exponential moving average of the intervals between them (averaging 1/interval
    instead lets two events in quick succession, such as two analyses of frames that queued up, read as
    thousands per second)."""
    if rate == 0:
        return 1.0 / interval
    return 1.0 / (0.9 / rate + 0.1 * interval)


class StreamResults:
    """The published state of one stream; subclassed by StreamHub, which adds the threads and the viewers."""

    def __init__(
        self,
        source_name: str,
        jpeg_quality: int,
        on_analysis: Callable[[np.ndarray, list[Face]], None] | None,
    ) -> None:
        self.source_name = source_name
        self._jpeg_quality = jpeg_quality
        # Called on the analysis thread with each analyzed frame and its faces (statistics, alerts), once per
        # analyzed frame (a frame that arrives while the model is busy is streamed but not analyzed).
        self._on_analysis = on_analysis
        self._started_at = time.monotonic()
        # Guards everything below; viewers wait on it for a new frame number.
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._viewers = 0
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
