"""Test doubles: a counting fake camera and analyzer, a served app, MJPEG parsing, a webhook receiver, an MQTT
subscriber."""

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from werkzeug.serving import make_server

from maskdetector.sources.capture import SourceError
from maskdetector.types import Face

FRAME_VALUE = 180  # fake frames are flat gray at this level; placeholders are dark (~32)


class FakeCamera:
    """Opens FakeSources that pace flat frames at `fps`; set `broken` to make opening and reading fail."""

    def __init__(self, fps: float = 50.0, shape: tuple[int, int] = (120, 160)) -> None:
        self.interval = 1.0 / fps
        self.shape = shape
        self.broken = False
        self.opens = self.reads = self.releases = 0
        self._lock = threading.Lock()

    def __call__(self) -> "FakeSource":
        if self.broken:
            raise SourceError("fake camera unplugged")
        with self._lock:
            self.opens += 1
        return FakeSource(self)

    def count_read(self) -> None:
        with self._lock:
            self.reads += 1

    def count_release(self) -> None:
        with self._lock:
            self.releases += 1


class FakeSource:
    def __init__(self, camera: FakeCamera) -> None:
        self.camera = camera

    def read(self) -> np.ndarray:
        time.sleep(self.camera.interval)
        if self.camera.broken:
            raise SourceError("fake camera unplugged")
        self.camera.count_read()
        return np.full((*self.camera.shape, 3), FRAME_VALUE, np.uint8)

    def release(self) -> None:
        self.camera.count_release()


class CountingAnalyzer:
    """Finds one masked 'face' per frame and counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    def analyze(self, frame_bgr: np.ndarray) -> list[Face]:
        self.calls += 1
        return [Face((20, 20, 40, 40), "with_mask", 0.98)]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll until `condition()` holds; a generous deadline only guards against hanging, it is not a timing test."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Serve `app` from a threaded werkzeug server on a free 127.0.0.1 port; yields the base URL."""
    from maskdetector.web.state import get_state

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        get_state(app).close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def read_part(response: http.client.HTTPResponse, boundary: bytes = b"frame") -> bytes:
    """The JPEG of the next multipart/x-mixed-replace part."""
    line = response.readline()
    while line in (b"\r\n", b"\n"):
        line = response.readline()
    assert line.strip() == b"--" + boundary, line
    headers = {}
    while (line := response.readline().strip()) != b"":
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    return response.read(int(headers["content-length"]))


class Receiver:
    """A local webhook receiver: records each POSTed JSON body and answers with the scripted statuses, then 200."""

    def __init__(self, statuses: tuple[int, ...] = (), delay_s: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        statuses_left = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.requests += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay_s)
                status = statuses_left.pop(0) if statuses_left else 200
                if status == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Subscriber:
    """A real MQTT client on the test broker, subscribed to `topic` at QoS 1 with a persistent session, so the
    broker keeps its messages while either side is away; records payloads per topic."""

    def __init__(self, port: int, topic: str, client_id: str = "test-subscriber") -> None:
        import paho.mqtt.client as mqtt

        self._messages: dict[str, list[str]] = {}
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("the test subscriber could not subscribe")

    def _on_message(self, client: object, userdata: object, message: object) -> None:
        with self._cond:
            self._messages.setdefault(message.topic, []).append(message.payload.decode())
            self._cond.notify_all()

    def wait_for(
        self, condition: Callable[[dict[str, list[str]]], bool], timeout: float = 15.0, what: str = "messages"
    ) -> dict[str, list[str]]:
        """The payloads per topic once `condition` holds for them; AssertionError (with what came) if it never does."""
        with self._cond:
            if not self._cond.wait_for(lambda: condition(self._messages), timeout):
                raise AssertionError(f"timed out waiting for {what}; received {self._messages}")
            return {topic: list(payloads) for topic, payloads in self._messages.items()}

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
