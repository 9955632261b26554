"""SIGTERM with a hung network source: how long app.py takes to exit, and whether any alert is lost.

    python benchmarks/sigterm.py [--runs 3] [--seconds 12]

Starts the real `app.py` with two sources: `hung`, an RTSP URL whose server accepts connections and never
answers, and `clip`, a video file of scenes-dev photos (benchmarks/clips.py) that raises no-mask alerts, with
--always-on and a webhook that also accepts and never answers. It measures how long after start-up the clip's
first frame arrives (the hung source must not delay it), sends SIGTERM after `--seconds`, and measures the exit.
Then it starts the app once more, with the same data folder and a webhook that answers, and counts the alerts
it receives: every alert logged by the earlier runs must arrive (they waited in the outbox). Target: exit
within 3 s, no alert lost.
"""

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from clips import make_clip  # noqa: E402


def hung_server() -> socket.socket:
    """Accepts (the kernel does) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    return sock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def start(port: int, data: Path, clip: Path, hung_url: str, webhook: str) -> subprocess.Popen:
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--data-dir", str(data), "--always-on"]
    args += ["--source", f"hung={hung_url}", "--source", f"clip={clip}", "--loop"]
    args += ["--alert-webhook", webhook, "--alert-frames", "2", "--alert-cooldown", "0"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"app.py ended: {process.stderr.read()}")
        try:
            get(port, "/healthz")
            return time.monotonic()
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"app.py did not start: {process.communicate()[1][-2000:]}")


def first_frame_after(port: int, ready: float) -> float:
    while time.monotonic() - ready < 60:
        if get(port, "/api/stats")["sources"]["clip"]["frames"] > 0:
            return time.monotonic() - ready
        time.sleep(0.02)
    return float("inf")


def logged_alerts(data: Path) -> list[int]:
    path = data / "alerts" / "alerts.jsonl"
    return [json.loads(line)["id"] for line in path.read_text().splitlines()] if path.exists() else []


class Receiver:
    def __init__(self) -> None:
        self.ids: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.ids.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["id"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    hung, dead_hook = hung_server(), hung_server()
    hung_url = f"rtsp://user:pw@127.0.0.1:{hung.getsockname()[1]}/live?token=SECRET"
    dead_url = f"http://127.0.0.1:{dead_hook.getsockname()[1]}/hook"
    with tempfile.TemporaryDirectory() as folder:
        clip, data = Path(folder) / "clip.mp4", Path(folder) / "data"
        make_clip(clip, photos=12, frames_per_photo=15)
        exits = []
        for run in range(1, args.runs + 1):
            port = free_port()
            process = start(port, data, clip, hung_url, dead_url)
            ready = wait_ready(port, process)
            first = first_frame_after(port, ready)
            time.sleep(max(0.0, args.seconds - (time.monotonic() - ready)))
            health = get(port, "/healthz")
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(60)
            exits.append(time.monotonic() - sent)
            log = process.stderr.read()
            leaked = "SECRET" in log or "user:pw" in log
            print(
                f"run {run}: clip's first frame {first:.2f}s after start-up; healthz status {health['status']} "
                f"({'; '.join(health['problems']) or 'no problems'}); SIGTERM -> exit in {exits[-1]:.2f}s "
                f"(exit code {process.returncode}); alerts logged so far {len(logged_alerts(data))}; "
                f"credentials in the log: {'YES' if leaked else 'no'}"
            )
        outbox = len(list((data / "alerts" / "outbox").glob("*.json")))
        logged = logged_alerts(data)
        receiver = Receiver()
        port = free_port()
        process = start(port, data, clip, hung_url, receiver.url)
        wait_ready(port, process)
        deadline = time.monotonic() + 60
        while not set(logged) <= set(receiver.ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        missing = sorted(set(logged) - set(receiver.ids))
        print(
            f"after {args.runs} runs against a dead webhook: {len(logged)} alerts logged, {outbox} waiting in the "
            f"outbox; restarted with a live webhook: {len(set(logged) & set(receiver.ids))} of them delivered, "
            f"{len(missing)} lost"
        )
        print(f"exit after SIGTERM: max {max(exits):.2f}s, mean {sum(exits) / len(exits):.2f}s (target: under 3 s)")


if __name__ == "__main__":
    main()
