"""Connections under abuse: viewer caps per source and in all (503 JSON beyond them), silent sockets closed by
app.py's server, hung network sources given up on, sources shown without credentials or query."""

import http.client
import json
import socket
import threading
from contextlib import closing, contextmanager
from urllib.parse import urlsplit

import pytest
from helpers import FakeCamera, read_part, wait_until
from test_multi_source import WalkingPeople

from maskdetector.sources.capture import SourceError, VideoSource, probe_stream
from maskdetector.web import app as web_app
from maskdetector.web.app import create_app
from maskdetector.web.serving import make_server
from maskdetector.web.state import get_state


@contextmanager
def served(monkeypatch, socket_timeout: float = 10.0, **config):
    """The app as app.py serves it (maskdetector.web.serving), with two fake cameras and a stand-in analyzer."""
    monkeypatch.setattr(web_app, "build_analyzer", lambda settings: WalkingPeople())
    sources = {"a": FakeCamera(fps=30), "b": FakeCamera(fps=30)}
    app = create_app({"SOURCE_FACTORY": sources, "IDLE_TIMEOUT": 0.2, **config})
    server = make_server(app, "127.0.0.1", 0, socket_timeout)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, server.server_port
    finally:
        get_state(app).close()
        server.shutdown()
        server.server_close()


def open_stream(port: int, path: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    return conn, conn.getresponse()


def test_viewers_beyond_the_caps_get_503_json_and_places_free_up(monkeypatch):
    with served(monkeypatch, MAX_VIEWERS_PER_SOURCE=2, MAX_VIEWERS=3) as (app, port):
        held = []
        for path in ("/video_feed/a", "/video_feed/a", "/video_feed/b"):
            conn, response = open_stream(port, path)
            assert response.status == 200 and read_part(response).startswith(b"\xff\xd8")
            held.append((conn, response))  # the response owns the socket: dropping it would close the stream
        for path, cap in (("/video_feed/a", "a has its 2 viewers"), ("/video_feed/b", "its 3 viewers")):
            conn, response = open_stream(port, path)
            body = json.loads(response.read())
            assert response.status == 503 and cap in body["error"], body
            assert int(response.headers["Retry-After"]) > 0
            conn.close()
        conn, response = open_stream(port, "/video_feed")  # the first source's own path is capped too
        assert response.status == 503 and response.headers["Content-Type"] == "application/json"
        conn.close()
        for closable in held.pop(0):  # a viewer leaves: its place is free again
            closable.close()
        hub = get_state(app).cameras["a"].hub
        wait_until(lambda: hub.stats()["viewers"] == 1, what="the viewer counted out")
        conn, response = open_stream(port, "/video_feed/b")
        assert response.status == 200
        held.append((conn, response))
        for conn, response in held:
            response.close()
            conn.close()


def test_always_on_does_not_take_a_viewers_place(monkeypatch):
    with served(monkeypatch, MAX_VIEWERS_PER_SOURCE=1, ALWAYS_ON=True) as (app, port):
        wait_until(lambda: get_state(app).cameras["a"].hub.stats()["viewers"] == 1, what="the always-on reader")
        conn, response = open_stream(port, "/video_feed/a")
        assert response.status == 200
        response.close()
        conn.close()


def test_half_sent_headers_and_idle_connections_are_closed(monkeypatch):
    """300 half-sent headers held 300 threads for good; with a socket timeout each is closed, and the server goes
    on answering meanwhile."""
    with served(monkeypatch, socket_timeout=0.5) as (_, port):
        half = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(30)]
        for sock in half:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        idle = socket.create_connection(("127.0.0.1", port), timeout=20)  # connects, never says a word
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200  # answered while the others hold their connections
        conn.close()
        for sock in half:
            with closing(sock):
                while sock.recv(4096):  # whatever the server says first (nothing, or an error page), then it closes
                    pass
        with closing(idle):
            assert idle.recv(1) == b""  # the silent connection was closed too


def test_a_server_that_accepts_and_never_answers_fails_the_probe():
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(5)
        port = hung.getsockname()[1]
        for scheme in ("rtsp", "http"):
            with pytest.raises(SourceError, match="does not answer"):
                probe_stream(f"{scheme}://user:pw@127.0.0.1:{port}/live?token=SECRET", timeout_s=0.3)
        with pytest.raises(SourceError) as caught:
            VideoSource(f"rtsp://user:pw@127.0.0.1:{port}/live?token=SECRET")
        assert str(caught.value) == f"rtsp://127.0.0.1:{port}/live does not answer (nothing within 2s)"


def test_a_server_that_answers_passes_the_probe():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        requests = []

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                requests.append(conn.recv(4096))
                conn.sendall(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        probe_stream(f"rtsp://user:pw@127.0.0.1:{server.getsockname()[1]}/live?x=1", timeout_s=5)
        thread.join(5)
    assert requests[0].startswith(b"OPTIONS rtsp://127.0.0.1:")
    assert b"pw" not in requests[0]  # credentials are FFmpeg's to send, after the probe


def test_sources_are_shown_without_credentials_or_query(untrained_model, caplog, tmp_path):
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(5)
        url = f"http://user:pw@127.0.0.1:{hung.getsockname()[1]}/stream?token=SECRET"
        app = create_app(
            {"MODEL": str(untrained_model), "SOURCE": url, "RETRY_INITIAL": 0.1, "DATA_DIR": str(tmp_path)}
        )
        try:
            client = app.test_client()
            hub = get_state(app).hub
            frames = hub.frames()
            next(frames)  # the placeholder once the probe has given up
            wait_until(lambda: hub.stats()["camera"] == "unavailable", what="the hung source given up on")
            pages = [
                client.get(path).get_data(as_text=True) for path in ("/", "/api/sources", "/api/stats", "/healthz")
            ]
            frames.close()
        finally:
            get_state(app).close()
    for text in [*pages, caplog.text]:
        assert "SECRET" not in text and "token" not in text and "user:pw" not in text and "user@" not in text
    assert f"http://127.0.0.1:{urlsplit(url).port}/stream" in pages[1]
