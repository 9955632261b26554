"""Several cameras in one app: named sources, a stream and stats per source and in total, the history API
across an app restart, alerts over HTTP, and a dead webhook that leaves everything else running."""

import http.client
import json
import socket
import threading
from types import SimpleNamespace
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from helpers import FakeCamera, read_part, serve, wait_until

from maskdetector.errors import UserError
from maskdetector.sources.capture import describe_source
from maskdetector.sources.parsing import parse_named_sources, sources_from_settings
from maskdetector.types import Face
from maskdetector.web import app as web_app
from maskdetector.web.app import create_app
from maskdetector.web.state import get_state


class WalkingPeople:
    """Stands in for detector + model: one unmasked face per frame, and every `every` frames (per capture thread)
    it jumps to the other side of the frame, so the tracker sees a new person."""

    def __init__(self, every: int = 15) -> None:
        self.classifier = SimpleNamespace(class_names=["with_mask", "without_mask"])
        self._every = every
        self._frames = threading.local()

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        n = getattr(self._frames, "n", 0)
        self._frames.n = n + 1
        x = 10 if (n // self._every) % 2 == 0 else 70
        return [Face((x, 10, 40, 40), "without_mask", 0.9)]

    def for_video(self) -> "WalkingPeople":
        return self  # frames are counted per capture thread already


@pytest.fixture
def make_app(monkeypatch):
    apps = []

    def make(**config):
        monkeypatch.setattr(web_app, "build_analyzer", lambda settings: WalkingPeople())
        sources = {"entrance": FakeCamera(fps=50), "hall": FakeCamera(fps=50, shape=(90, 120))}
        app = create_app({"SOURCE_FACTORY": sources, "IDLE_TIMEOUT": 0.2, "RETRY_INITIAL": 0.05, **config})
        apps.append(app)
        return app

    yield make
    for app in apps:
        get_state(app).close()


def get_json(base: str, path: str) -> tuple[int, dict]:
    address = urlsplit(base)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def open_stream(base: str, path: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    address = urlsplit(base)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    return conn, response


def frame_shape(jpeg: bytes) -> tuple[int, ...]:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape


# Named sources


def test_named_and_plain_sources():
    entrance, hall, plain = parse_named_sources(["entrance=0", "hall=rtsp://u:pw@cam.local/live?a=b", "1"])
    assert (entrance.name, entrance.label, entrance.spec) == ("entrance", "camera 0", 0)
    assert hall.name == "hall" and hall.label == "rtsp://cam.local/live"
    assert (plain.name, plain.spec) == ("camera1", 1)
    (url,) = parse_named_sources(["rtsp://cam.local/live?stream=2"])  # '=' in a URL does not make a name
    assert (url.name, url.spec) == ("cam-local", "rtsp://cam.local/live?stream=2")
    assert [s.name for s in parse_named_sources(["0", "0"])] == ["camera0", "camera0-2"]


def test_bad_named_sources_are_one_line_errors():
    with pytest.raises(UserError, match="'door' is used twice"):
        parse_named_sources(["door=0", "door=1"])
    with pytest.raises(UserError, match="not a camera index"):
        parse_named_sources(["door=nope.mp4"])


def test_sources_file_replaces_source(tmp_path):
    listing = tmp_path / "cameras.txt"
    listing.write_text("# name source\nentrance 0\n\nhall   rtsp://cam.local/live\n")
    sources = sources_from_settings({"SOURCE": "5", "SOURCES_FILE": str(listing)})
    assert [(s.name, s.label) for s in sources] == [("entrance", "camera 0"), ("hall", "rtsp://cam.local/live")]
    listing.write_text("entrance 0\nhall\n")
    with pytest.raises(UserError, match=r"cameras.txt:2: expected 'name source'"):
        sources_from_settings({"SOURCE": "0", "SOURCES_FILE": str(listing)})
    listing.write_text("# nothing\n")
    with pytest.raises(UserError, match="lists no sources"):
        sources_from_settings({"SOURCE": "0", "SOURCES_FILE": str(listing)})
    with pytest.raises(UserError, match="cannot read sources file"):
        sources_from_settings({"SOURCE": "0", "SOURCES_FILE": str(tmp_path / "missing.txt")})
    assert describe_source(0) == sources_from_settings({"SOURCE": "0", "SOURCES_FILE": ""})[0].label


# The app with two fake cameras


def test_two_sources_stream_at_once_with_stats_per_source_and_total(make_app):
    app = make_app()
    page = app.test_client().get("/").get_data(as_text=True)
    assert 'src="/video_feed"' in page and 'src="/video_feed/hall"' in page and 'id="total"' in page
    with serve(app) as base:
        status, body = get_json(base, "/api/sources")
        assert status == 200
        assert body["sources"] == [
            {"name": "entrance", "label": "entrance", "stream": "/video_feed"},
            {"name": "hall", "label": "hall", "stream": "/video_feed/hall"},
        ]
        streams = [open_stream(base, "/video_feed/entrance"), open_stream(base, "/video_feed/hall")]
        try:
            for _ in range(3):
                assert [frame_shape(read_part(response)) for _, response in streams] == [(120, 160, 3), (90, 120, 3)]
            wait_until(
                lambda: all(s["people"]["people"] >= 2 for s in get_json(base, "/api/stats")[1]["sources"].values()),
                what="people counted at both cameras",
            )
            stats = get_json(base, "/api/stats")[1]
        finally:
            for conn, _ in streams:
                conn.close()
        entrance, hall = stats["sources"]["entrance"], stats["sources"]["hall"]
        assert entrance["viewers"] == hall["viewers"] == 1 and entrance["camera"] == hall["camera"] == "ok"
        assert stats["source"] == "entrance" and stats["frames"] == entrance["frames"]  # the first source on top
        total = stats["total"]
        assert total["viewers"] == 2 and total["cameras"] == total["cameras_ok"] == 2
        assert total["people"]["people"] == entrance["people"]["people"] + hall["people"]["people"]
        assert total["people"]["compliance"] == 0.0  # nobody wore a mask
        assert stats["alerts"] == {"enabled": False, "latest": None}

        status, body = get_json(base, "/video_feed/nowhere")
        assert status == 404 and "no source named 'nowhere'" in body["error"]


def test_counts_persist_across_an_app_restart(make_app):
    app = make_app()
    frames = get_state(app).cameras["hall"].hub.frames()
    next(frames)
    wait_until(lambda: get_state(app).cameras["hall"].monitor.people()["without_mask"] >= 2, what="people counted")
    frames.close()
    get_state(app).close()  # stops the capture, then finishes the queued writes
    before = app.test_client().get("/api/history?minutes=60").get_json()
    seen = before["sources"]["hall"]["totals"]["people"]
    assert seen >= 2 and before["total"]["totals"]["compliance"] == 0.0

    restarted = make_app()  # same data folder (MASKDETECTOR_DATA_DIR), new app
    after = restarted.test_client().get("/api/history?minutes=60").get_json()
    assert after["sources"]["hall"]["totals"]["people"] == seen
    assert after["sources"]["hall"]["series"] == before["sources"]["hall"]["series"]


@pytest.mark.parametrize("minutes", ["0", "-5", "abc", "1.5", "10081", ""])
def test_history_rejects_bad_minutes(make_app, minutes):
    response = make_app().test_client().get(f"/api/history?minutes={minutes}")
    assert response.status_code == 400
    assert response.get_json() == {"error": "minutes must be a whole number from 1 to 10080"}


def test_two_instances_on_one_database_show_their_own_cameras_or_the_whole_site(make_app, postgres_url):
    north = make_app(INSTANCE="north", DATABASE_URL=postgres_url, ALWAYS_ON=True)
    south = make_app(INSTANCE="south", DATABASE_URL=postgres_url, ALWAYS_ON=True)
    apps = (north, south)
    wait_until(lambda: all(get_state(a).history.stats()["written"] >= 4 for a in apps), what="people in the database")
    for app in apps:
        for camera in get_state(app).cameras.values():
            camera.hub.close()
        assert get_state(app).history.flush()
    counted = {
        f"{get_state(app).instance}/{name}": camera.monitor.people()["without_mask"]
        for app in apps
        for name, camera in get_state(app).cameras.items()
    }
    own = north.test_client().get("/api/history").get_json()
    assert own["scope"] == "instance" and set(own["sources"]) == {"entrance", "hall"}
    assert own["total"]["totals"]["people"] == counted["north/entrance"] + counted["north/hall"]
    site = south.test_client().get("/api/history?scope=site").get_json()
    assert site["instances"] == ["north", "south"]
    assert {name: part["totals"]["people"] for name, part in site["sources"].items()} == counted
    assert site["total"]["totals"]["people"] == sum(counted.values())
    assert north.test_client().get("/api/stats").get_json()["instance"] == "north"
    assert 'id="history-scope"' in north.test_client().get("/").get_data(as_text=True)  # a shared database
    assert 'id="history-scope"' not in make_app().test_client().get("/").get_data(as_text=True)  # a SQLite file
    bad = north.test_client().get("/api/history?scope=everything")
    assert bad.status_code == 400 and bad.get_json() == {"error": "scope must be one of instance, site"}


def test_history_can_be_turned_off(make_app):
    client = make_app(HISTORY=False).test_client()
    response = client.get("/api/history")
    assert response.status_code == 404 and "off" in response.get_json()["error"]
    assert 'id="history-chart"' not in client.get("/").get_data(as_text=True)


def test_alerts_over_http(make_app):
    app = make_app(ALERTS=True, ALERT_FRAMES=3, ALERT_COOLDOWN=0)
    client = app.test_client()
    assert 'id="alert-banner"' in client.get("/").get_data(as_text=True)
    frames = get_state(app).cameras["entrance"].hub.frames()
    next(frames)
    wait_until(lambda: len(client.get("/api/alerts").get_json()["alerts"]) >= 2, what="two alerts")
    frames.close()
    body = client.get("/api/alerts?limit=1").get_json()
    # flushed after listing: an analysis still under way may raise another alert, whose snapshot comes later
    assert get_state(app).alerts.flush()
    assert body["enabled"] is True and len(body["alerts"]) == 1
    latest = body["alerts"][0]
    assert latest["source"] == "entrance" and latest["frames"] == 3
    assert client.get("/api/stats").get_json()["alerts"]["latest"]["id"] >= latest["id"]
    snapshot = client.get(latest["snapshot"])
    assert snapshot.status_code == 200 and snapshot.mimetype == "image/jpeg"
    assert frame_shape(snapshot.data) == (120, 160, 3)
    missing = client.get("/api/alerts/1/snapshot.jpg")
    assert missing.status_code == 404 and "no snapshot" in missing.get_json()["error"]
    assert client.get("/api/alerts?limit=0").status_code == 400


def test_always_on_analyses_with_nobody_watching(make_app):
    hub = get_state(make_app(ALWAYS_ON=True)).cameras["hall"].hub
    wait_until(lambda: hub.stats()["frames"] > 0, what="frames without a viewer")
    assert hub.stats()["capturing"] is True


def test_alerts_are_off_by_default(make_app):
    client = make_app().test_client()
    assert client.get("/api/alerts").get_json() == {"enabled": False, "alerts": []}
    assert 'id="alert-banner"' not in client.get("/").get_data(as_text=True)


@pytest.fixture(params=["refused", "hanging"])
def dead_webhook(request):
    """A webhook URL where nothing answers: a closed port, or a server that accepts and never replies."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    if request.param == "hanging":
        sock.listen(200)  # the kernel accepts the connections; nobody ever reads or answers
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    if request.param == "refused":
        sock.close()
    yield SimpleNamespace(kind=request.param, url=url)
    sock.close()  # before the app closes: a hanging request then fails at once


def test_dead_webhook_leaves_streams_and_other_features_running(make_app, dead_webhook, caplog):
    app = make_app(ALERTS=True, ALERT_FRAMES=2, ALERT_COOLDOWN=0, ALERT_WEBHOOK=dead_webhook.url)
    state = get_state(app)
    with serve(app) as base:
        streams = [open_stream(base, "/video_feed/entrance"), open_stream(base, "/video_feed/hall")]
        try:
            wait_until(lambda: len(state.alerts.recent(100)) >= 4, what="alerts while the webhook is dead")
            before = get_json(base, "/api/stats")[1]["total"]["frames"]
            for _ in range(40):  # both streams keep delivering frames
                for _, response in streams:
                    assert read_part(response).startswith(b"\xff\xd8")
            stats = get_json(base, "/api/stats")[1]
            assert stats["total"]["frames"] >= before + 40
            assert all(s["camera"] == "ok" and s["fps"] > 0 for s in stats["sources"].values())
            assert get_json(base, "/api/history?minutes=5")[0] == 200
            status, body = get_json(base, "/api/alerts?limit=100")
            assert status == 200 and len(body["alerts"]) >= 4
            wait_until(lambda: state.alerts.snapshot_path(body["alerts"][-1]["id"]).is_file(), what="snapshot")
            if dead_webhook.kind == "refused":  # (a hanging request only fails after its time-out)
                wait_until(lambda: "alert webhook to 127.0.0.1 failed" in caplog.text, what="a logged retry")
        finally:
            for conn, _ in streams:
                conn.close()
