"""No-mask alerts: debouncing, cool-down (with an injected clock), the log and snapshots, and the webhook
(against a local HTTP server) with its retries, all off the capture thread."""

import json
import logging
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from helpers import Receiver

from maskdetector.analytics.alerts import LOG_FILENAME, AlertGate, Alerts, Webhook
from maskdetector.types import Face
from maskdetector.vision.tracking import BoxTracker
from maskdetector.web.monitor import SourceMonitor
from maskdetector.workers import BackgroundWorker

FRAME = np.full((240, 320, 3), 120, np.uint8)


def bare(x: int = 100) -> Face:
    return Face((x, 60, 60, 60), "without_mask", 0.93)


def masked(x: int = 100) -> Face:
    return Face((x, 60, 60, 60), "with_mask", 0.95)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens: connection refused


def due_frames(gate: AlertGate, frames: list[list[Face]], source: str = "door", now: float = 0.0) -> list[int]:
    """Numbers of the frames (from 1) in which some track became due, for one tracker of `source`."""
    tracker = BoxTracker()
    return [n for n, faces in enumerate(frames, 1) for t in tracker.update(faces).seen if gate.due(source, t, now)]


def test_alert_after_n_frames_in_a_row_and_only_once_per_person():
    assert due_frames(AlertGate(frames=5, cooldown_s=0), [[bare()]] * 30) == [5]


def test_a_frame_with_a_mask_restarts_the_count():
    frames = [[bare()]] * 4 + [[masked()]] + [[bare()]] * 4 + [[bare()]]
    assert due_frames(AlertGate(frames=5, cooldown_s=0), frames) == [10]


def test_cool_down_is_per_source_and_a_suppressed_person_alerts_after_it():
    gate = AlertGate(frames=1, cooldown_s=60)
    tracker = BoxTracker()
    first, second = tracker.update([bare(0), bare(200)]).seen
    assert gate.due("door", first, now=100.0)
    assert not gate.due("door", second, now=110.0)  # same source, inside the cool-down
    assert gate.due("hall", second, now=110.0)  # another source has its own cool-down
    assert not gate.due("door", second, now=159.0)
    assert gate.due("door", second, now=160.0)  # still without a mask once the cool-down is over
    assert not gate.due("door", first, now=500.0)  # one alert per person


def test_alert_is_logged_with_a_snapshot_and_read_back_after_a_restart(data_dir):
    clock = iter(range(1000, 2000)).__next__  # one second per frame
    alerts = Alerts(data_dir, frames=3, cooldown_s=0)
    monitor = SourceMonitor("door", alerts=alerts, clock=lambda: float(clock()))
    for _ in range(10):
        monitor(FRAME, [bare()])
    assert alerts.flush()
    (alert,) = alerts.recent(10)
    assert alert["source"] == "door" and alert["label"] == "without_mask" and alert["frames"] == 3
    assert alert["time"] == "1970-01-01T00:16:42.000Z"  # the third frame, at 1002 s
    assert alert["snapshot"] == f"/api/alerts/{alert['id']}/snapshot.jpg"
    snapshot = cv2.imread(str(alerts.snapshot_path(alert["id"])))
    assert snapshot.shape == FRAME.shape and snapshot.max() > 150  # the frame, with the red box drawn
    lines = (alerts.folder / LOG_FILENAME).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [alert]
    alerts.close()

    restarted = Alerts(data_dir, frames=1, cooldown_s=0)
    assert restarted.recent(10) == [alert]
    (later,) = restarted.observe("door", FRAME, BoxTracker().update([bare()]).seen, now=500.0)  # clock set back
    assert later["id"] > alert["id"]  # ids keep increasing across restarts
    restarted.close()


def test_webhook_receives_the_alert_as_json(data_dir, receiver):
    alerts = Alerts(data_dir, frames=1, cooldown_s=0, webhook=Webhook(receiver.url))
    (alert,) = alerts.observe("door", FRAME, BoxTracker().update([bare()]).seen, time.time())
    assert alerts.flush()
    assert receiver.bodies == [{"event": "no_mask", **alert}]
    assert set(alert) == {"id", "time", "source", "label", "confidence", "box", "track", "frames", "snapshot"}
    alerts.close()


def test_failing_webhook_is_retried_with_back_off():
    server = Receiver(statuses=(500, 503))
    try:
        assert Webhook(server.url, attempts=4, backoff_s=0.01).send({"id": 1}) is True
        assert server.requests == 3 and server.bodies == [{"event": "no_mask", "id": 1}]
    finally:
        server.close()


def test_client_error_is_not_retried(caplog):
    server = Receiver(statuses=(404,))
    try:
        assert Webhook(server.url, attempts=4, backoff_s=0.01).send({"id": 1}) is False
        assert server.requests == 1
        assert "HTTP 404" in caplog.text
    finally:
        server.close()


def test_dead_webhook_is_retried_logged_and_given_up(caplog):
    caplog.set_level(logging.WARNING, logger="maskdetector.analytics.alerts")
    assert Webhook(closed_port_url(), attempts=3, backoff_s=0.01).send({"id": 7}) is False
    retries = [r for r in caplog.records if r.levelno == logging.WARNING and "retry" in r.getMessage()]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(retries) == 2 and len(errors) == 1
    assert "gave up on alert 7 after 3 attempts" in errors[0].getMessage()
    assert "secret" not in caplog.text  # only the host is logged, never the URL's token


def test_slow_webhook_times_out_and_is_retried():
    server = Receiver(delay_s=1.0)
    try:
        assert Webhook(server.url, attempts=2, backoff_s=0.01, timeout_s=0.2).send({"id": 1}) is False
        assert server.requests == 2
    finally:
        server.close()


def test_full_queue_drops_and_logs_instead_of_blocking(caplog):
    busy, release = threading.Event(), threading.Event()
    worker = BackgroundWorker("test worker", lambda item: busy.set() or release.wait(10), max_queue=1)
    assert worker.submit(1)
    assert busy.wait(5)  # the thread has taken item 1 and blocks on it
    assert worker.submit(2)  # queued
    started = time.monotonic()
    assert worker.submit(3) is False  # full: dropped at once
    assert time.monotonic() - started < 1
    assert "dropping" in caplog.text
    release.set()
    assert worker.flush()
    worker.close()
