"""What the routes share: the cameras (stream + statistics hook), the analyzer and the stores, kept on the app."""

import time
from dataclasses import dataclass

from flask import Flask

from maskdetector.analytics.alerts import Alerts
from maskdetector.analytics.history import History, summarize
from maskdetector.analytics.mqtt import MqttEvents
from maskdetector.analytics.retention import RetentionJob
from maskdetector.vision.pipeline import FrameAnalyzer
from maskdetector.web.detect_pool import DetectPool
from maskdetector.web.monitor import SourceMonitor
from maskdetector.web.scheduler import AnalysisScheduler
from maskdetector.web.streaming import StreamHub

EXTENSION_KEY = "maskdetector"
CLOSE_TIMEOUT_S = 1.5  # for all sources together; SIGTERM must end the app within 3 s


@dataclass(frozen=True)
class Camera:
    """One source: its shared stream and the hook that counts its people and raises its alerts."""

    name: str  # URL-safe: /video_feed/<name>
    hub: StreamHub
    monitor: SourceMonitor

    def stats(self) -> dict[str, object]:
        return {**self.hub.stats(), "name": self.name, "people": summarize(self.monitor.people())}


@dataclass(frozen=True)
class WebState:
    """What the routes need, kept on app.extensions[EXTENSION_KEY] rather than in module globals."""

    cameras: dict[str, Camera]  # in --source order; the first also serves /video_feed and /api/stats' top level
    class_names: list[str]
    analyzer: FrameAnalyzer
    history: History | None
    alerts: Alerts | None
    events: MqttEvents | None
    instance: str  # this app's name in a shared database and on MQTT
    scheduler: AnalysisScheduler  # the analysis pool every camera's frames go to
    uploads: DetectPool  # where POST /api/detect's images are analyzed
    retention: RetentionJob | None = None  # deletes old alerts and counts (--retention-days)

    @property
    def hub(self) -> StreamHub:
        """The first source's stream (the single-source app's only one)."""
        return next(iter(self.cameras.values())).hub

    def problems(self) -> list[str]:
        """What goes wrong now, one line each (/healthz): stores that cannot write, a webhook that fails."""
        return [*(self.alerts.problems() if self.alerts else []), *(self.history.problems() if self.history else [])]

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Stop the capture threads and the analysis pool, let the history and alert workers finish what is queued,
        then say goodbye to the MQTT broker (after the alerts, which publish to it). Every source is told to stop
        at once and all get `timeout` seconds together: a source stuck opening or reading a hung network stream
        is left behind (a daemon thread) instead of delaying the others. False if one was left behind."""
        hubs = [camera.hub for camera in self.cameras.values()]
        for hub in hubs:
            hub.stop()
        deadline = time.monotonic() + timeout
        if self.retention is not None:  # idle between hourly runs: stops at once
            self.retention.close(max(0.0, deadline - time.monotonic()))
        stopped = all([hub.close(max(0.0, deadline - time.monotonic())) for hub in hubs])
        self.scheduler.close()
        self.uploads.close()
        for store in (self.history, self.alerts, self.events):
            if store is not None:
                store.close()
        return stopped


def get_state(app: Flask) -> WebState:
    return app.extensions[EXTENSION_KEY]
