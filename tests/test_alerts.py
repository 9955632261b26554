"""No-mask alerts: debouncing, cool-down (with an injected clock), the log and snapshots, and the webhook
(against a local HTTP server) with its outbox on disk and back-off, all off the capture thread."""

import json
import logging
import shutil
import socket
import stat
import threading
import time

import cv2
import numpy as np
import pytest
from helpers import Receiver, wait_until

from maskdetector.analytics.alerts import LOG_FILENAME, AlertGate, Alerts
from maskdetector.analytics.webhook import Outbox, Webhook
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


def outbox(tmp_path, url: str, **backoff) -> Outbox:
    return Outbox(tmp_path / "outbox", Webhook(url, timeout_s=backoff.pop("timeout_s", 3.0)), **backoff)


FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}


def test_failing_webhook_is_retried_with_back_off(tmp_path):
    server = Receiver(statuses=(500, 503))
    box = outbox(tmp_path, server.url, **FAST)
    try:
        assert box.add({"id": 1})
        assert box.flush()
        assert server.requests == 3 and server.bodies == [{"event": "no_mask", "id": 1}]
        assert box.status()["delivered"] == 1 and box.status()["ok"]
    finally:
        box.close()
        server.close()


def test_client_error_is_not_retried_and_the_alert_is_kept_aside(tmp_path, caplog):
    server = Receiver(statuses=(404,))
    box = outbox(tmp_path, server.url, **FAST)
    try:
        assert box.add({"id": 1})
        assert box.flush()
        assert server.requests == 1
        assert "HTTP 404" in caplog.text and box.status()["refused"] == 1
        assert (tmp_path / "outbox" / "refused" / "1.json").is_file()  # not silently dropped
    finally:
        box.close()
        server.close()


def test_dead_webhook_keeps_alerts_on_disk_reports_it_and_backs_off(tmp_path, caplog):
    box = outbox(tmp_path, closed_port_url(), backoff_initial_s=0.05, backoff_max_s=0.2)
    try:
        for alert_id in range(1, 6):
            assert box.add({"id": alert_id})
        wait_until(lambda: box.failures >= 3, what="a few failed attempts")
        status = box.status()
        assert not status["ok"] and status["error"] and status["pending"] == 5
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and "alert(s) wait in" in errors[0].getMessage()
        assert len(errors) < box.failures  # logged once, not once per attempt
        assert "secret" not in caplog.text  # only the host is logged, never the URL's token
    finally:
        box.close()


def test_a_dead_webhook_costs_one_attempt_per_back_off_not_per_alert(tmp_path):
    """100 alerts against a receiver that never answers: attempts grow with the back-off, not with the alerts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(200)  # accepts, never answers
    box = outbox(tmp_path, f"http://127.0.0.1:{sock.getsockname()[1]}/", timeout_s=0.2, backoff_initial_s=0.2)
    try:
        for alert_id in range(1, 101):
            box.add({"id": alert_id})
        wait_until(lambda: box.failures >= 2, what="two attempts")
        assert box.pending() == 100 and box.failures < 10
    finally:
        box.close()
        sock.close()


def test_undelivered_alerts_are_sent_after_a_restart(data_dir):
    """The app stops (SIGTERM) while the receiver is away: its alerts wait on disk and the next start sends them."""
    dead = Alerts(data_dir, frames=1, cooldown_s=0, webhook=Webhook(closed_port_url()))
    tracker = BoxTracker()
    raised = [
        dead.observe("door", FRAME, tracker.update([bare(40 + 200 * (i % 2))]).seen, 1000.0 + i) for i in range(6)
    ]
    assert dead._writer.flush()
    dead.close()
    ids = [alert["id"] for batch in raised for alert in batch]
    assert len(ids) >= 2
    server = Receiver()
    again = Alerts(data_dir, frames=1, cooldown_s=0, webhook=Webhook(server.url))
    try:
        assert again.flush()
        assert sorted(body["id"] for body in server.bodies) == sorted(ids)
        assert again.counts()["webhook_pending"] == 0
    finally:
        again.close()
        server.close()


def test_a_deleted_data_folder_is_created_again_for_the_next_alert(data_dir):
    alerts = Alerts(data_dir, frames=1, cooldown_s=0)
    tracker = BoxTracker()
    alerts.observe("door", FRAME, tracker.update([bare()]).seen, 1000.0)
    assert alerts.flush()
    shutil.rmtree(data_dir)
    (alert,) = alerts.observe("door", FRAME, tracker.update([bare(240)]).seen, 2000.0)
    assert alerts.flush()
    assert alerts.snapshot_path(alert["id"]).is_file()
    assert json.loads((data_dir / "alerts" / LOG_FILENAME).read_text().splitlines()[-1])["id"] == alert["id"]
    assert alerts.problems() == []
    alerts.close()


def test_outbox_and_a_recreated_data_folder_are_private(data_dir):
    """Undelivered alerts say where and when someone was seen: 0600 files in 0700 folders, also after the data
    folder was deleted while the app ran."""
    alerts = Alerts(data_dir, frames=1, cooldown_s=0, webhook=Webhook(closed_port_url()))
    tracker = BoxTracker()
    try:
        for x, when in ((40, 1000.0), (240, 2000.0)):
            alerts.observe("door", FRAME, tracker.update([bare(x)]).seen, when)
            assert alerts._writer.flush()
            if when == 1000.0:
                shutil.rmtree(data_dir)
        outbox = data_dir / "alerts" / "outbox"
        folders = [data_dir, data_dir / "alerts", outbox]
        assert [oct(stat.S_IMODE(path.stat().st_mode)) for path in folders] == ["0o700"] * 3
        files = [*outbox.glob("*.json"), *(data_dir / "alerts").glob("*.j*")]
        assert len(files) == 3  # the second alert's outbox file, snapshot and log
        assert {oct(stat.S_IMODE(path.stat().st_mode)) for path in files} == {"0o600"}
    finally:
        alerts.close()


def test_an_unwritable_alerts_folder_is_reported(data_dir):
    alerts = Alerts(data_dir, frames=1, cooldown_s=0)
    shutil.rmtree(data_dir)
    data_dir.write_text("a file where the folder was")  # mkdir and every write fail, as on a full disk
    alerts.observe("door", FRAME, BoxTracker().update([bare()]).seen, 1000.0)
    assert alerts.flush()
    (problem,) = alerts.problems()
    assert problem.startswith("alerts: cannot write")
    alerts.close()


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
