"""GET /metrics: the Prometheus text format (checked by promtool when installed), and counters equal to /api/stats."""

import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import FakeCamera, wait_until
from prometheus_client.parser import text_string_to_metric_families

import maskdetector.web.app as web_app
from maskdetector.types import Face
from maskdetector.web.app import create_app
from maskdetector.web.state import get_state


class TwoPeople:
    """One unmasked face per frame that changes place every 15 frames: a new person, and an alert, each time."""

    def __init__(self) -> None:
        self.classifier = SimpleNamespace(class_names=["with_mask", "without_mask"])
        self.n = 0

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        self.n += 1
        return [Face((10 if (self.n // 15) % 2 else 70, 10, 40, 40), "without_mask", 0.9)]

    def for_video(self) -> "TwoPeople":
        return TwoPeople()


@pytest.fixture
def busy_app(monkeypatch):
    """An app whose two cameras have seen people and raised alerts, then stopped: its numbers hold still."""
    monkeypatch.setattr(web_app, "build_analyzer", lambda settings: TwoPeople())
    app = create_app(
        {
            "SOURCE_FACTORY": {"entrance": FakeCamera(fps=100), "hall": FakeCamera(fps=100)},
            "ALWAYS_ON": True,
            "ALERTS": True,
            "ALERT_FRAMES": 2,
            "ALERT_COOLDOWN": 0.0,
        }
    )
    state = get_state(app)
    wait_until(lambda: all(c.monitor.people()["without_mask"] >= 3 for c in state.cameras.values()), what="people")
    for camera in state.cameras.values():
        camera.hub.close()
    assert state.alerts.flush() and state.history.flush()
    yield app
    state.close()


def scrape(app) -> dict[tuple[str, tuple], float]:
    response = app.test_client().get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def test_counters_match_the_stats(busy_app):
    metrics = scrape(busy_app)
    stats = busy_app.test_client().get("/api/stats").get_json()
    for camera, source in stats["sources"].items():
        label = (("camera", camera),)
        assert metrics[("maskdetector_frames_total", label)] == source["frames"] > 0
        assert metrics[("maskdetector_frames_analyzed_total", label)] == source["analyzed"] > 0
        assert metrics[("maskdetector_frames_skipped_total", label)] == source["skipped"]
        assert metrics[("maskdetector_viewers", label)] == source["viewers"]
        assert metrics[("maskdetector_source_up", label)] == (source["camera"] == "ok")
        for name in ("with_mask", "without_mask"):
            with_label = (("camera", camera), ("label", name))
            assert metrics[("maskdetector_people_total", with_label)] == source["people"][name]
            assert metrics[("maskdetector_faces", with_label)] == source[name]
        assert metrics[("maskdetector_alerts_raised_total", label)] == stats["alerts"]["raised"][camera] > 0
        assert metrics[("maskdetector_analysis_seconds_count", label)] == source["analyzed"]
    assert metrics[("maskdetector_history_written_total", ())] == stats["total"]["people"]["people"]


def test_metrics_pass_promtool(busy_app, promtool):
    text = busy_app.test_client().get("/metrics").get_data(as_text=True)
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
