"""What StreamHub's `on_analysis` hook does with every analyzed frame: track faces, count each person once
(in memory for /api/stats and in the history database), and hand the tracks to the alert rule.

It runs on the analysis thread, so it only does in-memory work and queues the rest (history and alerts have
their own writer threads): the stream's frame rate does not depend on the disk or a webhook.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from maskdetector.analytics.alerts import Alerts
from maskdetector.types import Face
from maskdetector.vision.tracking import BoxTracker
from maskdetector.web.streaming import StreamHub

# Frames further apart than this (the camera was released or failed) start fresh tracks.
GAP_RESET_S = 2.0


class SightingSink(Protocol):
    """Where each person counted goes: the history database, the MQTT per-minute counts."""

    def record(self, source: str, label: str, at: float) -> None: ...


class SourceMonitor:
    """The on_analysis callback of one source's StreamHub."""

    def __init__(
        self,
        name: str,
        sightings: Sequence[SightingSink] = (),
        alerts: Alerts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._sightings = tuple(sightings)
        self._alerts = alerts
        self._clock = clock
        self._tracker = BoxTracker()
        self._lock = threading.Lock()
        self._people: Counter[str] = Counter()
        self._last_at: float | None = None

    def __call__(self, frame_bgr: np.ndarray, faces: list[Face]) -> None:
        now = self._clock()
        with self._lock:
            if self._last_at is not None and now - self._last_at > GAP_RESET_S:
                self._tracker.reset()
            self._last_at = now
            update = self._tracker.update(faces)
            for track in update.new_sightings:
                self._people[track.label] += 1
                for sink in self._sightings:
                    sink.record(self.name, track.label, now)
            if self._alerts is not None and update.seen:
                self._alerts.observe(self.name, frame_bgr, update.seen, now)

    def people(self) -> Counter[str]:
        """People counted since start-up, per label."""
        with self._lock:
            return Counter(self._people)


def keep_capturing(hub: StreamHub) -> threading.Thread:
    """Hold one viewer on `hub` that throws the frames away, so the source stays open and analyzed with nobody
    watching (statistics and alerts around the clock). It ends when the hub is closed."""

    def drain() -> None:
        for _ in hub.frames():
            pass

    thread = threading.Thread(target=drain, name=f"keep capturing {hub.source_name}", daemon=True)
    thread.start()
    return thread
