"""Pictures of people and what else the app keeps: retention of snapshots, the alerts log and history rows, private
file modes, and snapshots kept out of caches."""

import json
import logging
import os
import stat

import numpy as np
import pytest
import sqlalchemy as sa
from helpers import FakeCamera, wait_until

from maskdetector.analytics.alerts import Alerts
from maskdetector.analytics.history import History, database_url, default_instance, sightings
from maskdetector.analytics.retention import DAY_S, RetentionJob
from maskdetector.files import private_dir
from maskdetector.types import Face
from maskdetector.vision.tracking import BoxTracker
from maskdetector.web.app import create_app
from maskdetector.web.state import get_state

NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def usual_umask():
    """A umask that would leave files readable by others: the app must not rely on a strict one."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def raise_alert(alerts: Alerts, at: float) -> int:
    """One alert at Unix time `at` (each from a camera of its own: a track alerts once)."""
    tracks = BoxTracker().update([Face((9, 9, 30, 30), "without_mask", 0.9)]).seen
    raised = alerts.observe(f"door-{at}", np.zeros((90, 120, 3), np.uint8), tracks, at)
    assert alerts.flush()
    return raised[0]["id"]


def make_app(untrained_model, **config):
    settings = {
        "MODEL": str(untrained_model),
        "SOURCE_FACTORY": FakeCamera(fps=30),
        "SOURCE": "fake",
        "CLOCK": lambda: NOW,
        "ALERT_FRAMES": 1,
    }
    return create_app({**settings, **config})


def history_minutes(data_dir) -> list[int]:
    engine = sa.create_engine(database_url("", data_dir))
    with engine.connect() as conn:
        minutes = sorted(row.minute for row in conn.execute(sa.select(sightings)))
    engine.dispose()
    return minutes


def seed(data_dir) -> tuple[int, int]:
    """An alert and a sighting of 20 days ago and of 1 day ago; the alerts' ids."""
    alerts = Alerts(data_dir, frames=1, cooldown_s=0)
    old, new = raise_alert(alerts, NOW - 20 * DAY_S), raise_alert(alerts, NOW - DAY_S)
    alerts.close()
    history = History(database_url("", data_dir), default_instance())
    for at in (NOW - 20 * DAY_S, NOW - DAY_S):
        history.record("door", "without_mask", at)
    assert history.flush()
    history.close()
    return old, new


def test_retention_deletes_old_snapshots_alert_lines_and_history_rows_at_start(untrained_model, data_dir):
    old, new = seed(data_dir)
    folder = data_dir / "alerts"
    assert (folder / f"{old}.jpg").is_file() and len(history_minutes(data_dir)) == 2
    app = make_app(untrained_model, ALERTS=True, RETENTION_DAYS=14)
    state = get_state(app)
    try:
        wait_until(lambda: state.retention.runs >= 1, what="the first retention run")
        assert not (folder / f"{old}.jpg").exists() and (folder / f"{new}.jpg").is_file()
        logged = [json.loads(line)["id"] for line in (folder / "alerts.jsonl").read_text().splitlines()]
        assert logged == [new]
        assert [a["id"] for a in app.test_client().get("/api/alerts").get_json()["alerts"]] == [new]
        assert history_minutes(data_dir) == [int((NOW - DAY_S) // 60)]
    finally:
        state.close()


def test_retention_runs_again_later_and_with_alerts_off(untrained_model, data_dir):
    old, new = seed(data_dir)
    clock = [NOW]
    app = make_app(untrained_model, ALERTS=False, RETENTION_DAYS=14, CLOCK=lambda: clock[0])
    state = get_state(app)
    try:
        wait_until(lambda: state.retention.runs >= 1, what="the first retention run")
        assert not (data_dir / "alerts" / f"{old}.jpg").exists()  # left by an earlier run with alerts on
        clock[0] = NOW + 14 * DAY_S  # two weeks later, the newer ones are old too
        assert state.retention.run_once() == {"alerts": 1, "history rows": 1}
        assert not (data_dir / "alerts" / f"{new}.jpg").exists() and history_minutes(data_dir) == []
    finally:
        state.close()


def test_a_failing_purge_is_logged_and_the_others_still_run(caplog):
    done = []

    def broken(cutoff: float) -> int:
        raise OSError("disk gone")

    job = RetentionJob(1, [("broken", broken), ("fine", lambda cutoff: done.append(cutoff) or 3)], lambda: NOW, 3600)
    try:
        with caplog.at_level(logging.ERROR):
            assert job.run_once() == {"fine": 3}
        assert done[-1] == NOW - DAY_S and "could not delete old broken" in caplog.text
    finally:
        job.close()


def test_data_folder_0700_and_its_files_0600(untrained_model, data_dir):
    app = make_app(untrained_model, ALERTS=True)
    state = get_state(app)
    try:
        raise_alert(state.alerts, NOW)
        state.history.record("door", "with_mask", NOW)
        assert state.history.flush()
    finally:
        state.close()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "alerts").stat().st_mode) == 0o700
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {"secret_key", "history.sqlite3", "alerts.jsonl"} <= {path.name for path in files}
    assert any(path.suffix == ".jpg" for path in files)
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files} == {
        path.name: "0o600" for path in files
    }


def test_an_existing_open_folder_keeps_its_mode_with_a_warning(tmp_path, caplog):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    with caplog.at_level(logging.WARNING):
        private_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755 and "can be read by other users" in caplog.text


def test_snapshots_are_not_cached(untrained_model, data_dir):
    app = make_app(untrained_model, ALERTS=True)
    state = get_state(app)
    try:
        alert_id = raise_alert(state.alerts, NOW)
        response = app.test_client().get(f"/api/alerts/{alert_id}/snapshot.jpg")
        assert response.status_code == 200 and response.data.startswith(b"\xff\xd8")
        assert response.headers["Cache-Control"] == "private, no-store"
        assert "ETag" not in response.headers
    finally:
        state.close()
