"""Hostile and malformed requests (issue 25's table and more): each is a 4xx JSON answer or a correct 200, never a
5xx or a hang, and the live stream keeps being analyzed meanwhile."""

import http.client
import json
import threading
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from helpers import FakeCamera, serve, wait_until
from test_api import png_header

from maskdetector.web.app import create_app
from maskdetector.web.state import get_state


def png(height: int, width: int) -> bytes:
    ok, data = cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))
    assert ok
    return data.tobytes()


def make_app(model, data_dir, **config):
    settings = {
        "MODEL": str(model),
        "DATA_DIR": str(data_dir),
        "MOTION_GATING": False,  # the fake camera's frames are all alike
        "SOURCE": "fake camera",
        "SOURCE_FACTORY": FakeCamera(fps=30),
        "ALERTS": True,
        "DETECT_WORKERS": 1,
        "DETECT_QUEUE": 0,
    }
    return create_app({**settings, **config})


@pytest.fixture(scope="module")
def app(untrained_model, tmp_path_factory):
    app = make_app(untrained_model, tmp_path_factory.mktemp("data"))
    yield app
    get_state(app).close()


@pytest.mark.parametrize(
    ("height", "width", "status"),
    [(1, 20_000, 413), (1, 100_000, 413), (1, 1_000_000, 413), (100_000, 1, 413), (1, 5000, 400), (200, 8000, 400)],
)
def test_absurd_image_shapes_are_refused_before_decoding(app, height, width, status):
    """Real PNGs of a few hundred bytes (the table's 1 x 20000 was 99 bytes and cost 7 CPU-seconds)."""
    body = png(height, width) if height * width <= 20_000 else png_header(width, height)
    response = app.test_client().post("/api/detect", data=body, content_type="image/png")
    assert response.status_code == status, response.get_data(as_text=True)
    assert f"{width}x{height}" in response.get_json()["error"]


def test_header_bomb_beyond_pillows_own_ceiling(app):
    response = app.test_client().post("/api/detect", data=png_header(100_000, 100_000), content_type="image/png")
    assert response.status_code == 413 and response.is_json


def test_a_long_but_sane_image_is_analyzed(app):
    response = app.test_client().post("/api/detect", data=png(300, 4000), content_type="image/png")
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["width"], response.get_json()["height"]) == (4000, 300)


def test_busy_upload_workers_answer_503_with_retry_after(app, monkeypatch):
    """One worker, no queue: while one upload is being analyzed, the next is turned away at once, not queued."""
    analyzer = get_state(app).analyzer
    entered, release = threading.Event(), threading.Event()
    real = analyzer.analyze

    def slow(image):
        entered.set()
        release.wait(30)
        return real(image)

    monkeypatch.setattr(analyzer, "analyze", slow)
    client = app.test_client()
    first: list = []
    thread = threading.Thread(
        target=lambda: first.append(client.post("/api/detect", data=png(60, 80), content_type="image/png"))
    )
    thread.start()
    try:
        assert entered.wait(30)
        busy = app.test_client().post("/api/detect", data=png(60, 80), content_type="image/png")
        assert busy.status_code == 503 and busy.is_json
        assert int(busy.headers["Retry-After"]) > 0
        assert "busy" in busy.get_json()["error"]
    finally:
        release.set()
        thread.join(30)
    assert first[0].status_code == 200


def test_live_analysis_goes_on_while_an_upload_is_analyzed(untrained_model, data_dir, monkeypatch):
    """The table's frozen cameras: uploads run on their own workers, so the stream's frames keep being analyzed
    while an upload is stuck in analysis."""
    app = make_app(untrained_model, data_dir)
    analyzer = get_state(app).analyzer
    entered, release = threading.Event(), threading.Event()
    real = analyzer.analyze

    def stuck(image):
        if threading.current_thread().name.startswith("upload"):
            entered.set()
            release.wait(30)
        return real(image)

    monkeypatch.setattr(analyzer, "analyze", stuck)
    hub = get_state(app).hub
    with serve(app) as url:
        address = urlsplit(url)
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        conn.request("GET", "/video_feed")
        viewer = conn.getresponse()
        upload = threading.Thread(
            target=lambda: app.test_client().post("/api/detect", data=png(60, 80), content_type="image/png")
        )
        upload.start()
        try:
            assert entered.wait(30)
            analyzed = hub.stats()["analyzed"]
            wait_until(lambda: hub.stats()["analyzed"] >= analyzed + 5, what="live analysis during the upload")
        finally:
            release.set()
            upload.join(30)
            viewer.close()
            conn.close()


def test_deeply_nested_json_is_400(app):
    for body in ("[" * 100_000 + "]" * 100_000, '{"image": ' * 50_000 + "1" + "}" * 50_000):
        response = app.test_client().post("/api/detect", data=body, content_type="application/json")
        assert response.status_code == 400, response.get_data(as_text=True)[:200]
        assert "JSON" in response.get_json()["error"]


@pytest.mark.parametrize(
    "query",
    ["/api/history?minutes=²", "/api/alerts?limit=²", "/api/alerts?limit=٣", "/api/history?minutes=1" + "0" * 30],
)
def test_unicode_and_huge_digits_in_queries_are_400(app, query):
    response = app.test_client().get(query)
    assert response.status_code == 400 and "whole number" in response.get_json()["error"]


def test_an_unexpected_error_on_the_api_is_json(app, monkeypatch):
    analyzer = get_state(app).analyzer

    def broken(image):
        raise RuntimeError("a bug")

    monkeypatch.setattr(analyzer, "analyze", broken)
    response = app.test_client().post("/api/detect", data=png(60, 80), content_type="image/png")
    assert response.status_code == 500 and response.is_json
    assert "RuntimeError" in response.get_json()["error"] and "a bug" not in response.get_json()["error"]
    json.dumps(response.get_json())
