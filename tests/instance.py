"""One app instance as a process of its own, for the scale-out tests and benchmarks/scaleout.py.

Run as a script, it is app.py's main() with two stand-ins: `Visitors` (one unmasked person at a time walking past
each camera) instead of the model, which is never loaded, and a statistics clock that the parent runs faster than
the wall clock, or pauses, through a file (`SimClock`), so minutes of traffic take seconds. Every person it counts is
printed to stdout as it goes into the history queue (`counted <camera> <minute> <label>`), so the parent knows what
a killed instance had counted. Imported, `Instance` starts and stops such a process.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLOCK_ENV = "MASKDETECTOR_TEST_CLOCK"  # the SimClock file
PEOPLE_ENV = "MASKDETECTOR_TEST_PEOPLE"  # people per camera before the scene goes quiet (0: no limit)
FRAMES_PER_PERSON = 12  # more than the tracker's MAX_MISSED, so a face back in an earlier place is a new person
PLACES = (0, 40, 80, 120)  # left edges of 40-pixel faces in a 160-pixel frame: no two overlap


CAMERAS = ("door", "hall")


def make_video(path: Path, frames: int = 50, fps: float = 50.0) -> Path:
    """A short clip for the instance's cameras to loop (the faces come from Visitors, not from the pictures)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), 100 + i, np.uint8))
    writer.release()
    return path


class Visitors:
    """Stands in for detector + model: one unmasked face per frame that moves to the next place every
    FRAMES_PER_PERSON frames (the tracker counts a new person), `limit` people per capture thread at most."""

    def __init__(self, limit: int) -> None:
        self.classifier = SimpleNamespace(class_names=["with_mask", "without_mask"])
        self._limit = limit
        self._frames = threading.local()

    def analyze(self, frame_bgr: np.ndarray) -> list:
        from maskdetector.types import Face

        n = getattr(self._frames, "n", 0)
        self._frames.n = n + 1
        person = n // FRAMES_PER_PERSON
        if self._limit:
            person = min(person, self._limit - 1)
        return [Face((PLACES[person % len(PLACES)], 40, 40, 40), "without_mask", 0.9)]

    def for_video(self) -> "Visitors":
        return self


class SimClock:
    """Simulated Unix time, shared by processes through a file of "<wall time> <simulated time> <speed>": the
    simulated time at that wall time and how many simulated seconds pass per real one (0: paused)."""

    REREAD_S = 0.05

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._read_at = -1.0
        self._wall = self._simulated = self._speed = 0.0

    def set(self, simulated: float, speed: float) -> None:
        """From now on, time is `simulated` advancing at `speed` (written atomically: readers never see half)."""
        part = self.path.with_suffix(".part")
        part.write_text(f"{time.time()} {simulated} {speed}")
        os.replace(part, self.path)
        self._read_at = -1.0

    def __call__(self) -> float:
        now = time.time()
        if now - self._read_at > self.REREAD_S:
            self._wall, self._simulated, self._speed = map(float, self.path.read_text().split())
            self._read_at = now
        return self._simulated + (now - self._wall) * self._speed


def _serve(argv: list[str]) -> int:
    # The model is never used: keep TensorFlow from loading, so that a (re)start takes a second, not ten.
    sys.modules["maskdetector.vision.classifier"] = SimpleNamespace(MaskClassifier=None)
    import app
    import maskdetector.web.app as web_app
    from maskdetector.analytics.history import History

    web_app.build_analyzer = lambda settings: Visitors(int(os.environ.get(PEOPLE_ENV, "0")))
    real_create_app = web_app.create_app
    clock = SimClock(Path(os.environ[CLOCK_ENV]))
    web_app.create_app = lambda settings: real_create_app({**settings, "CLOCK": clock})
    queue = History.record
    out_lock = threading.Lock()

    def record_and_report(self: History, source: str, label: str, at: float) -> None:
        queue(self, source, label, at)
        with out_lock:
            print(f"counted {source} {int(at // 60)} {label}", flush=True)

    History.record = record_and_report
    return app.main(argv)


class Instance:
    """A running instance process: `counted` tallies what it printed per (camera, minute, label)."""

    def __init__(self, args: list[str], clock: SimClock, people: int = 0, log_path: Path | None = None) -> None:
        self.args, self.clock, self.people, self.log_path = args, clock, people, log_path
        self.counted: Counter[tuple[str, int, str]] = Counter()
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            CLOCK_ENV: str(self.clock.path),
            PEOPLE_ENV: str(self.people),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        }
        log_file = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, __file__, *self.args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file
        )
        self._reader = threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:
            kind, camera, minute, label = line.decode().split()
            if kind == "counted":
                self.counted[(camera, int(minute), label)] += 1

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send `sig` (SIGTERM: a clean stop; SIGKILL: a crash) and wait for the process and its output."""
        assert self._process is not None
        self._process.send_signal(sig)
        code = self._process.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        """Clean-up: end the process if it still runs."""
        if self._process is not None and self._process.poll() is None:
            self.stop(signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
