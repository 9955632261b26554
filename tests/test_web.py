"""The Flask app with a fake camera and a small random-weight model: page, MJPEG stream, JSON endpoints."""

import http.client
import json
import threading
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from helpers import FakeCamera, read_part, serve, wait_until

from maskdetector.errors import ModelError, UserError
from maskdetector.web.app import create_app
from maskdetector.web.state import get_state

STATS_KEYS = {"fps", "faces", "with_mask", "without_mask", "viewers", "source", "camera", "camera_reason", "uptime_s"}


@pytest.fixture
def camera():
    return FakeCamera(fps=30)


@pytest.fixture
def app(untrained_model, camera):
    app = create_app(
        {
            "MODEL": str(untrained_model),
            "SOURCE": "fake camera",
            "SOURCE_FACTORY": camera,
            "IDLE_TIMEOUT": 0.2,
            "RETRY_INITIAL": 0.05,
            "RETRY_MAX": 0.2,
        }
    )
    yield app
    get_state(app).hub.close()


def test_page_shows_stream_stats_and_source(app):
    response = app.test_client().get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<img id="stream" src="/video_feed"' in page
    assert "fake camera" in page
    assert "/static/app.js" in page and "/static/style.css" in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN
    assert app.test_client().get("/static/app.js").status_code == 200
    assert "Mask" in page and "No mask" in page
    assert "Worn wrong" not in page  # the 2-class model cannot report incorrectly worn masks


def test_video_feed_yields_jpeg_parts_with_boundary(app):
    client = app.test_client()
    response = client.get("/video_feed", buffered=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
    parts = iter(response.response)
    for _ in range(2):
        part = next(parts)
        head, _, rest = part.partition(b"\r\n\r\n")
        assert head.startswith(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ")
        jpeg = rest[: int(head.rsplit(b" ", 1)[1])]
        assert rest.endswith(b"\r\n") and jpeg.startswith(b"\xff\xd8")
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)
    assert client.get("/api/stats").get_json()["viewers"] == 1
    response.close()  # the client leaves
    assert client.get("/api/stats").get_json()["viewers"] == 0


def test_stats_json_shape(app):
    stats = app.test_client().get("/api/stats").get_json()
    assert set(stats) >= STATS_KEYS
    assert stats["source"] == "fake camera"
    assert stats["camera"] == "ok" and stats["camera_reason"] == ""
    assert isinstance(stats["fps"], float) and isinstance(stats["faces"], int)


def test_healthz_reports_model_and_camera(app, camera):
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "ok" and body["model_ready"] is True and body["camera_ready"] is True
    assert body["classes"] == ["with_mask", "without_mask"]

    camera.broken = True
    frames = get_state(app).hub.frames()
    next(frames)
    wait_until(lambda: client.get("/healthz").get_json()["camera_ready"] is False, what="camera down")
    body = client.get("/healthz").get_json()
    assert client.get("/healthz").status_code == 200
    assert body["camera"] == "unavailable" and body["camera_reason"] == "fake camera unplugged"
    stats = client.get("/api/stats").get_json()
    assert stats["camera"] == "unavailable" and stats["camera_reason"] == "fake camera unplugged"
    frames.close()


def test_ten_http_clients_share_one_capture(app, camera):
    with serve(app) as url:
        address = urlsplit(url)
        ready = threading.Barrier(11, timeout=30)
        errors = []

        def client() -> None:
            conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
            try:
                conn.request("GET", "/video_feed")
                response = conn.getresponse()
                assert response.status == 200
                read_part(response)
                ready.wait()
                ready.wait()
                for _ in range(2):
                    assert read_part(response).startswith(b"\xff\xd8")
            except Exception as exc:  # reported in the main thread
                errors.append(exc)
                ready.abort()
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(10)]
        for t in threads:
            t.start()
        ready.wait()
        stats = json.loads(_get(address, "/api/stats"))
        ready.wait()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert stats["viewers"] == 10
        assert camera.opens == 1
        wait_until(lambda: json.loads(_get(address, "/api/stats"))["viewers"] == 0, what="viewers to leave")
    assert camera.releases == 1


def _get(address, path: str) -> bytes:
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def test_bad_source_and_model_are_one_line_errors(untrained_model, tmp_path):
    with pytest.raises(UserError, match="not a camera index"):
        create_app({"MODEL": str(untrained_model), "SOURCE": "no-such-file.mp4"})
    corrupt = tmp_path / "mask_detector.keras"
    corrupt.write_bytes(b"not a model")
    (tmp_path / "labels.json").write_text(json.dumps({"classes": ["with_mask", "without_mask"]}))
    with pytest.raises(ModelError, match="not a readable Keras model"):
        create_app({"MODEL": str(corrupt), "SOURCE": "0"})
    with pytest.raises(UserError, match="--jpeg-quality"):
        create_app({"MODEL": str(untrained_model), "SOURCE": "0", "JPEG_QUALITY": 0})


def test_settings_come_from_environment(untrained_model, monkeypatch):
    monkeypatch.setenv("MASKDETECTOR_MODEL", str(untrained_model))
    monkeypatch.setenv("MASKDETECTOR_SOURCE", "rtsp://user:pw@cam.local/live")
    monkeypatch.setenv("MASKDETECTOR_JPEG_QUALITY", "55")
    app = create_app({"JPEG_QUALITY": 60})
    assert app.config["JPEG_QUALITY"] == 60  # explicit config wins over the environment
    assert get_state(app).hub.source_name == "rtsp://cam.local/live"
    monkeypatch.setenv("MASKDETECTOR_MIRROR", "perhaps")
    with pytest.raises(UserError, match="MASKDETECTOR_MIRROR"):
        create_app()
