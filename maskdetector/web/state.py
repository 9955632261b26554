"""What the routes share: the cameras (stream + statistics hook), the analyzer and the stores, kept on the app."""

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

    def close(self) -> None:
        """Stop the capture threads and the analysis pool, let the history and alert workers finish what is queued,
        then say goodbye to the MQTT broker (after the alerts, which publish to it)."""
        if self.retention is not None:
            self.retention.close()
        for camera in self.cameras.values():
            camera.hub.close()
        self.scheduler.close()
        self.uploads.close()
        for store in (self.history, self.alerts, self.events):
            if store is not None:
                store.close()


def get_state(app: Flask) -> WebState:
    return app.extensions[EXTENSION_KEY]
