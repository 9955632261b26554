"""GET /metrics for Prometheus (prometheus-client): one registry per app, filled at scrape time from the same
numbers /api/stats shows, so the two cannot disagree; only the analysis-time histogram is recorded as it happens.
"""

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from maskdetector.analytics.history import History
from maskdetector.analytics.mqtt import MqttEvents
from maskdetector.types import Analyzer, Face

if TYPE_CHECKING:
    from maskdetector.web.state import WebState

METRICS_KEY = "maskdetector.metrics"
# Seconds per analyzed frame: from a fast Haar pass on a small frame to MTCNN on a large one.
ANALYSIS_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)


class TimedAnalyzer:
    """One stream's analyzer, recording how long each frame's detection and classification took."""

    def __init__(self, analyzer: Analyzer, histogram: Histogram) -> None:
        self._analyzer = analyzer
        self._histogram = histogram

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        started = time.perf_counter()
        try:
            return self._analyzer.analyze(frame_bgr)
        finally:
            self._histogram.observe(time.perf_counter() - started)


class AppMetrics:
    """The registry of one app: the histogram, and a collector reading the app's state at each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._analysis = Histogram(
            "maskdetector_analysis_seconds",
            "Time to find and classify the faces of one frame",
            ["camera"],
            buckets=ANALYSIS_BUCKETS,
            registry=self.registry,
        )

    def timed(self, analyzer: Analyzer, camera: str) -> TimedAnalyzer:
        return TimedAnalyzer(analyzer, self._analysis.labels(camera))

    def watch(self, state: "WebState") -> None:
        self.registry.register(StateCollector(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _family(kind: type, name: str, help_text: str, *labels: str) -> Metric:
    return kind(f"maskdetector_{name}", help_text, labels=list(labels))


class StateCollector(Collector):
    """Everything but the histogram, read from the app's state when Prometheus scrapes."""

    def __init__(self, state: "WebState") -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        per_camera = {  # /api/stats key -> family
            "fps": _family(GaugeMetricFamily, "stream_fps", "Frames per second streamed", "camera"),
            "analysis_fps": _family(GaugeMetricFamily, "analysis_fps", "Frames per second analyzed", "camera"),
            "frames": _family(CounterMetricFamily, "frames", "Frames read from the source", "camera"),
            "analyzed": _family(CounterMetricFamily, "frames_analyzed", "Frames whose faces were classified", "camera"),
            "skipped": _family(
                CounterMetricFamily, "frames_skipped", "Frames not analyzed: the model was still busy", "camera"
            ),
            "viewers": _family(GaugeMetricFamily, "viewers", "Open MJPEG streams", "camera"),
        }
        up = _family(GaugeMetricFamily, "source_up", "1 while the source delivers frames, 0 while it fails", "camera")
        faces = _family(GaugeMetricFamily, "faces", "Faces in the latest analyzed frame", "camera", "label")
        people = _family(CounterMetricFamily, "people", "People counted since start-up", "camera", "label")
        for name, camera in state.cameras.items():
            stats = camera.hub.stats()
            for key, family in per_camera.items():
                family.add_metric([name], stats[key])
            up.add_metric([name], stats["camera"] == "ok")
            counted = camera.monitor.people()
            for label in sorted({*state.class_names, *counted}):
                faces.add_metric([name, label], stats.get(label, 0))
                people.add_metric([name, label], counted.get(label, 0))
        yield from (*per_camera.values(), up, faces, people)
        if state.alerts is not None:
            yield from _alert_metrics(state)
        if state.history is not None:
            yield from _history_metrics(state.history)
        if state.events is not None:
            yield from _mqtt_metrics(state.events)


def _alert_metrics(state: "WebState") -> Iterator[Metric]:
    counts = state.alerts.counts()
    raised = _family(CounterMetricFamily, "alerts_raised", "No-mask alerts raised", "camera")
    for name in state.cameras:
        raised.add_metric([name], counts["raised"].get(name, 0))
    delivered = _family(CounterMetricFamily, "alerts_delivered", "Alerts delivered, per channel", "channel")
    if state.alerts.has_webhook:
        delivered.add_metric(["webhook"], counts["webhook_delivered"])
    if state.events is not None:
        delivered.add_metric(["mqtt"], state.events.stats()["alerts_delivered"])
    failed = _family(CounterMetricFamily, "alerts_failed", "Alerts the webhook gave up on", "channel")
    if state.alerts.has_webhook:
        failed.add_metric(["webhook"], counts["webhook_failed"])
    yield from (raised, delivered, failed)


def _history_metrics(history: History) -> Iterator[Metric]:
    stats = history.stats()
    yield CounterMetricFamily("maskdetector_history_written", "Sightings written to the database", stats["written"])
    yield GaugeMetricFamily("maskdetector_history_pending", "Sightings not yet in the database", stats["pending"])
    yield CounterMetricFamily("maskdetector_history_lost", "Sightings lost: database away too long", stats["lost"])
    yield CounterMetricFamily("maskdetector_history_write_errors", "Failed (retried) database writes", stats["errors"])


def _mqtt_metrics(events: MqttEvents) -> Iterator[Metric]:
    stats = events.stats()
    yield GaugeMetricFamily("maskdetector_mqtt_connected", "1 while connected to the MQTT broker", stats["connected"])
    messages = _family(CounterMetricFamily, "mqtt_messages", "MQTT messages, by what became of them", "result")
    for result in ("published", "delivered", "dropped"):
        messages.add_metric([result], stats[result])
    yield messages
