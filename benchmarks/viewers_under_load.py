"""A live stream's analysis rate with 200 open viewers and uploads in flight, against the same stream idle.

    python benchmarks/viewers_under_load.py [--viewers 200] [--uploaders 4] [--seconds 20]

One app, served as app.py serves it (maskdetector/web/serving.py), with the shipped model and one source: a clip
of scenes-dev photos (benchmarks/clips.py) at its own 30 fps, kept open with --always-on. Two phases in one run:

(a) idle: nobody watches, nothing is uploaded;
(b) loaded: `--viewers` clients hold /video_feed open and read every frame, and `--uploaders` clients post a
    2000 x 1500 photo to /api/detect back to back (503 answers, the upload line being full, are counted).
    The clients run in a process of their own, forked before the app starts, as real clients do: threads of
    the server's own process would compete with it for its interpreter lock and measure the benchmark's
    clients rather than the server.

For each: frames analyzed per second (from /api/stats' `analyzed` counter over the window), the stream's rate,
and /healthz latency (median / max of one request every 0.25 s). Target: (b)'s analysis rate within 20 % of (a)'s,
/healthz under 1 s.
"""

import argparse
import http.client
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cv2  # noqa: E402
from clips import SCENES, make_clip  # noqa: E402

from maskdetector.vision.preprocessing import read_image  # noqa: E402
from maskdetector.web.app import create_app  # noqa: E402
from maskdetector.web.serving import make_server  # noqa: E402
from maskdetector.web.state import get_state  # noqa: E402


def upload_body() -> bytes:
    photo = read_image(sorted((SCENES / "images").glob("*.png"))[0])
    ok, data = cv2.imencode(".jpg", cv2.resize(photo, (2000, 1500)))
    assert ok
    return data.tobytes()


class Load:
    """Viewers that read their streams and uploaders that post back to back, until stop()."""

    def __init__(self, port: int, viewers: int, uploaders: int, body: bytes) -> None:
        self.port = port
        self.stop_event = threading.Event()
        self.bytes_read = 0
        self.answers: dict[int, int] = {}
        self.refused_viewers = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._view, daemon=True) for _ in range(viewers)]
        self.threads += [threading.Thread(target=self._upload, args=(body,), daemon=True) for _ in range(uploaders)]
        for thread in self.threads:
            thread.start()

    def _view(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/video_feed")
            response = conn.getresponse()
            if response.status != 200:
                with self._lock:
                    self.refused_viewers += 1
                return
            while not self.stop_event.is_set():
                chunk = response.read1(65536)
                with self._lock:
                    self.bytes_read += len(chunk)
        except OSError:
            pass
        finally:
            conn.close()

    def _upload(self, body: bytes) -> None:
        while not self.stop_event.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                conn.request("POST", "/api/detect", body=body, headers={"Content-Type": "image/jpeg"})
                response = conn.getresponse()
                response.read()
                with self._lock:
                    self.answers[response.status] = self.answers.get(response.status, 0) + 1
                if response.status == 503:
                    time.sleep(0.2)
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self) -> dict[str, object]:
        """End the load; what the clients saw."""
        self.stop_event.set()
        with self._lock:
            return {"answers": dict(self.answers), "refused": self.refused_viewers, "bytes": self.bytes_read}


def run_load(
    ports: "multiprocessing.Queue",
    done: "multiprocessing.Event",
    results: "multiprocessing.Queue",
    viewers: int,
    uploaders: int,
    body: bytes,
) -> None:
    """The client process: wait for the server's port, load it until `done`, then report what it saw."""
    load = Load(ports.get(), viewers, uploaders, body)
    done.wait()
    results.put(load.stop())


def measure(port: int, app: object, seconds: float) -> dict[str, float]:
    hub = get_state(app).hub
    latencies = []
    start_stats, started = hub.stats(), time.monotonic()
    while time.monotonic() - started < seconds:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        asked = time.monotonic()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        latencies.append(time.monotonic() - asked)
        conn.close()
        time.sleep(0.25)
    end_stats, elapsed = hub.stats(), time.monotonic() - started
    return {
        "analysis_fps": (end_stats["analyzed"] - start_stats["analyzed"]) / elapsed,
        "stream_fps": (end_stats["frames"] - start_stats["frames"]) / elapsed,
        "viewers": end_stats["viewers"],
        "health_median_ms": statistics.median(latencies) * 1000,
        "health_max_ms": max(latencies) * 1000,
    }


def show(name: str, figures: dict[str, float]) -> None:
    print(
        f"{name}: analysis {figures['analysis_fps']:.1f} frames/s, stream {figures['stream_fps']:.1f} fps, "
        f"viewers {figures['viewers']}, /healthz median {figures['health_median_ms']:.0f} ms, "
        f"max {figures['health_max_ms']:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    context = multiprocessing.get_context("fork")  # forked before the app starts any thread
    ports, results, done = context.Queue(), context.Queue(), context.Event()
    clients = context.Process(
        target=run_load, args=(ports, done, results, args.viewers, args.uploaders, upload_body()), daemon=True
    )
    clients.start()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip, photos=12, frames_per_photo=15)
        config = {
            "SOURCE": str(clip),
            "LOOP": True,
            "ALWAYS_ON": True,
            "DATA_DIR": str(Path(folder) / "data"),
            "MAX_VIEWERS": args.viewers + 10,
            "MAX_VIEWERS_PER_SOURCE": args.viewers + 10,
        }
        app = create_app(config)
        server = make_server(app, "127.0.0.1", 0, 10.0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_port
        time.sleep(8)  # warm up: the source opens, the analysis workers build their models
        idle = measure(port, app, args.seconds)
        show("idle", idle)
        ports.put(port)
        time.sleep(5)
        loaded = measure(port, app, args.seconds)
        show(f"{args.viewers} viewers + {args.uploaders} uploaders", loaded)
        done.set()
        seen = results.get(timeout=60)
        clients.join(10)
        print(
            f"uploads answered: {dict(sorted(seen['answers'].items()))}; viewers refused: {seen['refused']}; "
            f"stream data read by the viewers: {seen['bytes'] / 1e6:.0f} MB"
        )
        ratio = loaded["analysis_fps"] / idle["analysis_fps"] if idle["analysis_fps"] else float("nan")
        print(
            f"analysis rate loaded / idle: {ratio:.2f} (target >= 0.80); /healthz max {loaded['health_max_ms']:.0f} ms"
        )
        server.shutdown()
        get_state(app).close()


if __name__ == "__main__":
    main()
