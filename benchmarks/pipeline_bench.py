"""Real-time pipeline: the naive per-face loop vs the project's pipeline on one 640x480 30 fps clip, in one run.

    python benchmarks/pipeline_bench.py [--scenes ../shared/datasets/scenes-dev] [--seconds 10] [--quick]

The clip is made at run time (in a temporary folder) from scenes-dev photos with 1-3 annotated faces, one
photo per second, each slowly zooming and panning so the faces move. Then, all on the same clip:

1. the cost of each step on its own (decoding, detectors, drawing, JPEG) and the classifier's ms per face at
   batch 1 for `model.predict`, an eager Keras call and the TFLite path, plus whether TFLite gives Keras's
   labels on every scenes-dev crop;
2. (a) the naive loop of the design's reference implementations: Haar on the full frame, `model.predict` on each
   face crop one by one, draw, JPEG-encode; then one row per optimisation up to (b), the project's pipeline
   (files.analyze_in_order with the detector on 1 frame in 3 and faces followed in between, what detect.py
   runs on a video) with Haar and with the default BlazeFace. Every frame is classified, drawn and encoded.
   Prints fps, ms per frame at p50 and p95 (time between finished frames), faces per frame, face recall
   against the clip's annotation boxes (IoU 0.3: following must not lose faces) and b/a;
3. the live app (app.py --source clip.mp4 --loop) with 1 and then 10 concurrent /video_feed clients: the server
   process's CPU time (utime + stime from /proc), the frames per second each client receives, and the
   stream's and the analysis's own rates from /api/stats.
Last, the TFLite classifier's ms per face once more, as the app runs it (int8 with the float32 check, fed the
98x98 pixels that reach its output), in float32 on those pixels, and as the whole 100x100 float32 graph: all
sampled between the passes above, since this machine's speed drifts within a run (median of the samples and their
range).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from clips import FPS, HEIGHT, WIDTH, make_clip  # noqa: E402  (this script's folder is on sys.path)

from maskdetector.constants import DEFAULT_MODEL_PATH  # noqa: E402
from maskdetector.settings import DEFAULTS  # noqa: E402
from maskdetector.sources.files import Frame, VideoInput, analyze_in_order  # noqa: E402
from maskdetector.training.datasets import load_scene_crops  # noqa: E402
from maskdetector.types import Box, Face  # noqa: E402
from maskdetector.vision.annotation import annotate, encode_jpeg  # noqa: E402
from maskdetector.vision.boxes import greedy_match  # noqa: E402
from maskdetector.vision.classifier import MaskClassifier, TFLiteRunner, read_labels  # noqa: E402
from maskdetector.vision.detectors import create_detector  # noqa: E402
from maskdetector.vision.detectors.haar import HaarDetector, default_cascade_path  # noqa: E402
from maskdetector.vision.face_following import FaceFollower  # noqa: E402
from maskdetector.vision.pipeline import FrameAnalyzer  # noqa: E402
from maskdetector.vision.preprocessing import crop_face, faces_to_batch  # noqa: E402

JPEG_QUALITY = 80  # the app's default
BOUNDARY = b"--frame\r\n"
RECALL_IOU = 0.3  # as the scene evaluation
REDETECT_EVERY = int(DEFAULTS["REDETECT_EVERY"])


# ----------------------------------------------------------------------------------------------- the clip


def decoded(clip: Path) -> Iterator[Frame]:
    return VideoInput(str(clip)).frames()


# ----------------------------------------------------------------------------------------------- timing


def percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


class Run:
    """Finish times of the frames of one pass over the clip, the faces found and how many were annotated faces."""

    def __init__(self, truth: list[list[Box]]) -> None:
        self.truth = truth
        self.started = time.perf_counter()
        self.finished: list[float] = []
        self.faces = 0
        self.found = 0

    def done(self, boxes: Sequence[Box]) -> None:
        """Called with the boxes of each frame, in order."""
        self.found += len(greedy_match(self.truth[len(self.finished)], boxes, RECALL_IOU))
        self.finished.append(time.perf_counter())
        self.faces += len(boxes)

    def row(self, name: str, baseline: "Run | None") -> str:
        gaps = 1000 * np.diff([self.started, *self.finished])
        fps = len(self.finished) / (self.finished[-1] - self.started)
        ratio = f"{fps / baseline.fps:.1f}x" if baseline else "1.0x"
        return (
            f"{name:<66}{len(self.finished):>7}{fps:>8.1f}{percentile(gaps, 50):>9.1f}{percentile(gaps, 95):>9.1f}"
            f"{self.faces / len(self.finished):>8.2f}{self.found / sum(map(len, self.truth)):>8.3f}{ratio:>8}"
        )

    @property
    def fps(self) -> float:
        return len(self.finished) / (self.finished[-1] - self.started)


def follow_ms(clip: Path, truth: list[list[Box]]) -> float:
    """Milliseconds per face to place the clip's annotated faces on each next frame by template matching."""
    frames = [f.image for f in decoded(clip)]
    elapsed, faces = 0.0, 0
    for start in range(0, len(frames), FPS):  # one photo at a time: the detector "finds" its annotated faces
        boxes = [tuple(round(v) for v in box) for box in truth[start]]
        follower = FaceFollower(SimpleNamespace(detect=lambda frame, boxes=boxes: list(boxes)), FPS)
        follower.detect(frames[start])
        for frame in frames[start + 1 : start + FPS]:
            started = time.perf_counter()
            faces += len(follower.detect(frame))
            elapsed += time.perf_counter() - started
    return 1000 * elapsed / max(faces, 1)


def naive_loop(clip: Path, truth: list[list[Box]], model: keras.Model, class_names: list[str]) -> Run:
    """The reference loop: Haar on the full gray frame, model.predict per face crop, draw, JPEG-encode."""
    cascade = cv2.CascadeClassifier(str(default_cascade_path()))
    run = Run(truth)
    for frame in decoded(clip):
        image = frame.image.copy()
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        for x, y, w, h in boxes:
            probs = model.predict(faces_to_batch([crop_face(image, (x, y, w, h))]), verbose=0)[0]
            label = class_names[int(probs.argmax())]
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 255, 0), 2)
            cv2.putText(image, f"{label} {probs.max():.0%}", (x, y - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
        encode_jpeg(image, JPEG_QUALITY)
        run.done([tuple(box) for box in boxes])
    return run


def project_pass(clip: Path, truth: list[list[Box]], analyzer: FrameAnalyzer, overlapped: bool) -> Run:
    """Every frame: analyze, annotate and JPEG-encode as the stream does; overlapped as detect.py runs it."""
    run = Run(truth)
    analyzer = analyzer.for_video()  # one video: the detector may skip frames and follow the faces (face_following.py)

    def emit(frame: Frame, faces: list[Face]) -> None:
        encode_jpeg(annotate(frame.image, faces, 0.0), JPEG_QUALITY)
        run.done([face.box for face in faces])

    if overlapped:
        analyze_in_order(decoded(clip), analyzer.analyze, emit)
    else:
        for frame in decoded(clip):
            emit(frame, analyzer.analyze(frame.image))
    return run


# ----------------------------------------------------------------------------------------------- live app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Viewer(threading.Thread):
    """One /video_feed client that counts the multipart parts it receives, doing as little work as it can."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.parts = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
            sock.sendall(b"GET /video_feed HTTP/1.1\r\nHost: bench\r\n\r\n")
            tail = b""
            while not self.stop.is_set():
                try:
                    data = sock.recv(1 << 16)
                except TimeoutError:
                    continue
                if not data:
                    return
                chunk = tail + data
                self.parts += chunk.count(BOUNDARY)
                tail = chunk[-(len(BOUNDARY) - 1) :]


def get_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def live_app(clip: Path, detector: str, seconds: float, log_path: Path) -> list[dict]:
    """Server CPU and per-client frame rates with 1 and with 10 viewers of the live app on the looping clip."""
    port = free_port()
    command = [sys.executable, "app.py", "--source", str(clip), "--loop", "--port", str(port)]
    command += ["--detector", detector, "--idle-timeout", "60"]
    env = {**os.environ, "MASKDETECTOR_HISTORY": "0", "MASKDETECTOR_DATA_DIR": str(log_path.parent)}
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                get_json(port, "/healthz")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"app.py did not start; see {log_path}") from None
                time.sleep(0.5)
        results = []
        for n in (1, 10):
            viewers = [Viewer(port) for _ in range(n)]
            for viewer in viewers:
                viewer.start()
            time.sleep(4)  # the source opens, the model warms up
            before_cpu, before_parts, before = cpu_seconds(server.pid), [v.parts for v in viewers], time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - before
            cpu = (cpu_seconds(server.pid) - before_cpu) / elapsed
            rates = [(v.parts - p) / elapsed for v, p in zip(viewers, before_parts, strict=True)]
            stats = get_json(port, "/api/stats")
            for viewer in viewers:
                viewer.stop.set()
            for viewer in viewers:
                viewer.join(5)
            results.append({"viewers": n, "cpu": cpu, "rates": rates, "stats": stats})
        return results
    finally:
        server.terminate()
        server.wait(30)


# ----------------------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=ROOT.parent / "shared" / "datasets" / "scenes-dev")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--seconds", type=int, default=10, help="clip length: one photo per second (default 10)")
    parser.add_argument("--live-seconds", type=float, default=15, help="measuring time per live-app phase")
    parser.add_argument("--live-detectors", nargs="*", default=["blazeface", "haar"], help="none: skip the live app")
    parser.add_argument("--quick", action="store_true", help="a short run: 3 s clip, 5 s live phases, fewer crops")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.live_seconds = 3, 5
    return args


class Bench:
    """The clip, its annotated boxes, the classifiers, and the TFLite classifier's samples taken through the run."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.clip = tmp / "clip.mp4"
        faces = make_clip(self.clip, args.seconds, FPS, args.scenes, min_side=32)
        self.truth: list[list[Box]] = [[face.box for face in frame] for frame in faces]
        self.class_names = read_labels(args.model)
        self.model = keras.models.load_model(args.model, compile=False)
        self.keras_classifier = MaskClassifier(self.model, self.class_names, "keras")
        started = time.perf_counter()
        self.fast = MaskClassifier(self.model, self.class_names, "tflite")
        self.conversion_s = time.perf_counter() - started
        self.images = [f.image for f in decoded(self.clip)][::5]  # 6 frames of each photo: every photo counts
        self.one = faces_to_batch([crop_face(self.images[0], (250, 150, 120, 120))])
        # The app's TFLite path against what it ran before each trim, sampled side by side under the same drift.
        self.tflite_paths: dict[str, Callable[[np.ndarray], object]] = {
            "float32, whole 100x100 graph": TFLiteRunner(self.model, trim=False),
            "float32, 98x98 input": TFLiteRunner(self.model),
            "int8 with the float32 check, 98x98 input (app)": self.fast.predict_batch,
        }
        self.samples: dict[str, list[float]] = {name: [] for name in self.tflite_paths}

    def sample_classifier(self, calls: int = 50) -> None:
        for name, run in self.tflite_paths.items():
            self.samples[name].append(median_ms(lambda run=run: run(self.one), calls))


def step_timings(bench: Bench) -> dict[str, float]:
    """Milliseconds per frame of each step on its own, and per face of the classifiers and the face follower."""
    cascade_full, cascade_small = HaarDetector(min_face_size=24, detect_width=None), HaarDetector(min_face_size=24)
    frame_steps = {
        "Haar, full 640x480 gray frame": cascade_full.detect,
        f"Haar, frame shrunk to {HaarDetector.DETECT_WIDTH} px wide": cascade_small.detect,
        "Haar, frame shrunk to 320 px wide": HaarDetector(min_face_size=24, detect_width=320).detect,
        "BlazeFace (default detector, 4 views)": create_detector("blazeface", min_face_size=24).detect,
        "annotate (boxes + status line)": lambda image: annotate(
            image, [Face((250, 150, 120, 120), "with_mask", 0.9)], 30
        ),
        f"JPEG encode, quality {JPEG_QUALITY}": lambda image: encode_jpeg(image, JPEG_QUALITY),
    }
    images = bench.images
    steps = {"decode (cv2.VideoCapture.read)": median_ms(lambda: list(decoded(bench.clip)), 3) / len(bench.truth)}
    steps |= {
        name: median_ms(lambda fn=fn: [fn(image) for image in images], 3) / len(images)
        for name, fn in frame_steps.items()
    }
    steps |= {
        "classifier per face, model.predict (naive)": median_ms(lambda: bench.model.predict(bench.one, verbose=0), 30),
        "classifier per face, eager Keras call (--backend keras)": median_ms(
            lambda: bench.keras_classifier.predict_batch(bench.one), 50
        ),
    }
    # This machine's speed drifts by tens of percent within a minute, so the TFLite figures are the first of
    # several samples taken between the passes below and summarised at the end (their median and range).
    bench.sample_classifier(100)
    steps |= {f"classifier per face, TFLite, {name}": values[0] for name, values in bench.samples.items()}
    steps["following a face between detector runs, per face (face_following.py)"] = follow_ms(bench.clip, bench.truth)
    return steps


def print_agreement(bench: Bench, scenes: Path, every: int) -> None:
    """Whether the TFLite path gives the Keras model's label on every `every`th scenes-dev crop."""
    crops = np.concatenate(
        [
            load_scene_crops(scenes, bench.class_names, holdout=h, holdout_percent=30, min_side=0).images
            for h in (True, False)
        ]
    )[::every].astype(np.float32)
    reference, candidate = bench.keras_classifier.predict_batch(crops), bench.fast.predict_batch(crops)
    agree = int((reference.argmax(axis=1) == candidate.argmax(axis=1)).sum())
    print(
        f"  TFLite vs Keras on {len(crops)} scenes-dev crops: same label on {agree}, "
        f"largest confidence difference {np.abs(reference - candidate).max():.1e}"
    )


def print_passes(bench: Bench) -> None:
    """(a) the naive loop, then each optimisation up to the project's pipeline (b), every frame of the clip."""
    print(f"\nevery frame of the clip, decode -> detect -> classify -> draw -> JPEG ({len(bench.truth)} frames):")
    header = f"{'pipeline':<66}{'frames':>7}{'fps':>8}{'p50 ms':>9}{'p95 ms':>9}{'faces':>8}{'recall':>8}{'vs (a)':>8}"
    print(header)
    naive = naive_loop(bench.clip, bench.truth, bench.model, bench.class_names)
    print(naive.row("(a) naive: Haar full frame, model.predict per face", None), flush=True)
    bench.sample_classifier()
    cascade_full, cascade_small = HaarDetector(min_face_size=24, detect_width=None), HaarDetector(min_face_size=24)
    blazeface, fast, small = create_detector("blazeface", min_face_size=24), bench.fast, HaarDetector.DETECT_WIDTH
    sparse = f"detector on 1 frame in {REDETECT_EVERY}"
    variants = [
        ("Haar full frame, one eager Keras call per frame", cascade_full, bench.keras_classifier, False, 1),
        ("Haar full frame, TFLite", cascade_full, fast, False, 1),
        (f"Haar at {small} px, TFLite", cascade_small, fast, False, 1),
        (f"Haar at {small} px, TFLite, overlapped", cascade_small, fast, True, 1),
        (f"(b) Haar at {small} px, TFLite, overlapped, {sparse}", cascade_small, fast, True, REDETECT_EVERY),
        ("Haar at 320 px, TFLite, overlapped", HaarDetector(min_face_size=24, detect_width=320), fast, True, 1),
        ("BlazeFace, TFLite, overlapped", blazeface, fast, True, 1),
        (f"(b) BlazeFace, TFLite, overlapped, {sparse} (app)", blazeface, fast, True, REDETECT_EVERY),
        ("blazeface-fast, TFLite, overlapped", create_detector("blazeface-fast", min_face_size=24), fast, True, 1),
    ]
    for name, detector, classifier, overlapped, redetect_every in variants:
        analyzer = FrameAnalyzer(detector, classifier, redetect_every=redetect_every)
        print(project_pass(bench.clip, bench.truth, analyzer, overlapped).row(name, naive), flush=True)
        bench.sample_classifier()


def print_live(bench: Bench, detector: str, seconds: float, tmp: Path) -> None:
    print(f"\nlive app: app.py --source clip.mp4 --loop --detector {detector}, {seconds:.0f} s per row")
    header = f"{'viewers':>7}{'server CPU (cores)':>20}{'fps per viewer min/mean':>25}"
    print(f"{header}{'stream fps':>12}{'analysis fps':>14}")
    results = live_app(bench.clip, detector, seconds, tmp / f"app-{detector}.log")
    for r in results:
        stats = r["stats"]
        print(
            f"{r['viewers']:>7}{r['cpu']:>20.2f}{min(r['rates']):>14.1f} / {statistics.mean(r['rates']):<8.1f}"
            f"{stats['fps']:>12.1f}{stats.get('analysis_fps', 0.0):>14.1f}"
        )
    print(f"  CPU with 10 viewers / with 1 viewer: {results[1]['cpu'] / results[0]['cpu']:.2f}x")
    bench.sample_classifier()


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pipeline_bench_"))
    bench = Bench(args, tmp)
    print(f"clip: {WIDTH}x{HEIGHT}, {FPS} fps, {len(bench.truth)} frames from {args.seconds} scenes-dev photos")
    print(f"cpu: {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")

    # 1. steps and classifier
    print(
        f"\nsteps, ms per frame (mean over {len(bench.images)} frames spread over the clip) or per face "
        "(classifier: median; following: mean):"
    )
    for name, ms in step_timings(bench).items():
        print(f"  {name:<66}{ms:8.2f}")
    print(f"  TFLite conversion of the .keras model at load time: {bench.conversion_s:.1f} s")
    print_agreement(bench, args.scenes, 10 if args.quick else 1)
    # 2. whole passes over the clip; 3. the live app
    print_passes(bench)
    for detector in args.live_detectors:
        print_live(bench, detector, args.live_seconds, tmp)

    n_samples = len(next(iter(bench.samples.values())))
    print(
        f"\nclassifier per face, TFLite, batch 1, sampled {n_samples} times through the run (each the median of "
        f"50 calls, the first of 100), median and range:"
    )
    for name, values in bench.samples.items():
        print(f"  {name:<66}{statistics.median(values):6.2f} ms  ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
