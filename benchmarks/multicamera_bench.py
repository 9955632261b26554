"""Several cameras on one machine: the shared analysis scheduler against a thread per camera, in one run.

    python benchmarks/multicamera_bench.py [--cameras 1 2 4 8] [--seconds 20] [--quick]

Every camera plays the same clip (benchmarks/clips.py: 640x480, 30 fps, scenes-dev photos with 1-3 faces, each
shown for 5 frames, so faces come and go several times a second) at its real rate through the app's StreamHub,
with one viewer each, as `app.py --source a=clip.mp4 --source b=clip.mp4 ...` runs them. Two arms, each with
1, 2, 4 and 8 cameras, in the same process and at the same niceness:

(a) a thread per camera, the design before the scheduler: one analysis thread per camera, all sharing one
    detector and one float32 classifier behind locks, every interpreter on every core;
(b) the app now: one scheduler, a thread per core, each with its own interpreters at one thread each, the int8
    classifier, motion gating and steady labels.

For each: analyzed frames per second per camera (min / mean / max) and in all, the streams' rate (min), and the
process's CPU (cores, from /proc/self/stat). Then one camera on a still picture (one photo held, nothing moving),
with and without motion gating: what an idle camera costs.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from clips import FPS, HEIGHT, SCENES, WIDTH, make_clip  # noqa: E402

from maskdetector.constants import DEFAULT_MODEL_PATH  # noqa: E402
from maskdetector.sources.capture import VideoSource  # noqa: E402
from maskdetector.training.datasets import load_scene_annotations  # noqa: E402
from maskdetector.vision.analyzers import SharedClassifier, SharedDetector  # noqa: E402
from maskdetector.vision.classifier import MaskClassifier  # noqa: E402
from maskdetector.vision.detectors import create_detector  # noqa: E402
from maskdetector.vision.pipeline import FrameAnalyzer  # noqa: E402
from maskdetector.vision.preprocessing import read_image  # noqa: E402
from maskdetector.vision.tracking import LABEL_WINDOW  # noqa: E402
from maskdetector.web.monitor import keep_capturing  # noqa: E402
from maskdetector.web.scheduler import AnalysisScheduler, machine_cores, pool_size  # noqa: E402
from maskdetector.web.streaming import StreamHub  # noqa: E402

DETECTOR = "blazeface"  # the app's default
REDETECT_EVERY = 3
WARMUP_S = 6.0


class Locked:
    """The design before the scheduler: one model object for every camera's thread, behind a lock."""

    def __init__(self, model: object) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.class_names = getattr(model, "class_names", [])

    def detect(self, frame: np.ndarray) -> list:
        with self._lock:
            return self._model.detect(frame)

    def classify(self, faces: list) -> list:
        with self._lock:
            return self._model.classify(faces)


def cpu_seconds() -> float:
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_per_camera(model_path: Path, cameras: int) -> tuple[FrameAnalyzer, AnalysisScheduler, bool]:
    classifier = MaskClassifier.load(model_path, "tflite-float")
    detector = create_detector(DETECTOR, min_face_size=24)
    analyzer = FrameAnalyzer(Locked(detector), Locked(classifier), redetect_every=REDETECT_EVERY)
    scheduler = AnalysisScheduler(workers=cameras)  # a thread per camera: each camera always has its own
    cv2.setNumThreads(machine_cores())  # as before: OpenCV's default, every core
    return analyzer, scheduler, False


def with_scheduler(model_path: Path, cameras: int) -> tuple[FrameAnalyzer, AnalysisScheduler, bool]:
    classifier = SharedClassifier(MaskClassifier.load(model_path, "tflite"))
    detector = SharedDetector(partial(create_detector, DETECTOR, min_face_size=24))
    analyzer = FrameAnalyzer(detector, classifier, redetect_every=REDETECT_EVERY, label_window=LABEL_WINDOW)
    return analyzer, AnalysisScheduler(pool_size(0, cameras)), True  # as create_app sizes it


ARMS = {"(a) a thread per camera": thread_per_camera, "(b) scheduler (the app)": with_scheduler}


def run(arm: str, clip: Path, model: Path, cameras: int, seconds: float, gating: bool | None = None) -> dict:
    analyzer, scheduler, default_gating = ARMS[arm](model, cameras)
    hubs = [
        StreamHub(
            partial(VideoSource, str(clip), loop=True),
            analyzer.for_video(),
            f"camera {i + 1}",
            idle_timeout=600,
            scheduler=scheduler,
            motion_gating=default_gating if gating is None else gating,
        )
        for i in range(cameras)
    ]
    try:
        for hub in hubs:
            keep_capturing(hub)  # one viewer each: every frame annotated and JPEG-encoded, as with a browser
        time.sleep(WARMUP_S)
        before, cpu_before, started = [hub.stats() for hub in hubs], cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        after, cpu_after, elapsed = [hub.stats() for hub in hubs], cpu_seconds(), time.monotonic() - started
    finally:
        for hub in hubs:
            hub.close()
        scheduler.close()
    rates = [(b["analyzed"] - a["analyzed"]) / elapsed for a, b in zip(before, after, strict=True)]
    streams = [(b["frames"] - a["frames"]) / elapsed for a, b in zip(before, after, strict=True)]
    still = sum(b["skipped_still"] - a["skipped_still"] for a, b in zip(before, after, strict=True)) / elapsed
    return {"rates": rates, "streams": streams, "cpu": (cpu_after - cpu_before) / elapsed, "still": still}


def still_clip(out: Path, seconds: int) -> None:
    """One scenes-dev photo held still for `seconds`: a camera on a scene where nothing moves."""
    scene = load_scene_annotations(SCENES)[0]
    image = read_image(scene.image_path)
    fit = min(WIDTH / image.shape[1], HEIGHT / image.shape[0])
    frame = cv2.warpAffine(image, np.float32([[fit, 0, 0], [0, fit, 0]]), (WIDTH, HEIGHT))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for _ in range(seconds * FPS):
        writer.write(frame)
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per row (default 20)")
    parser.add_argument("--quick", action="store_true", help="1 and 4 cameras, 8 s per row")
    args = parser.parse_args()
    if args.quick:
        args.cameras, args.seconds = [1, 4], 8.0

    tmp = Path(tempfile.mkdtemp(prefix="multicamera_bench_"))
    clip, still = tmp / "clip.mp4", tmp / "still.mp4"
    truth = make_clip(clip, photos=60, frames_per_photo=5)
    still_clip(still, 10)
    print(f"clip: {WIDTH}x{HEIGHT}, {FPS} fps, {len(truth)} frames, a new photo every 5 frames ({clip})")
    print(
        f"cpu: {machine_cores()} cores; load average before: {os.getloadavg()[0]:.2f}; niceness {os.nice(0)}; "
        f"detector {DETECTOR}, detector on 1 frame in {REDETECT_EVERY}, {args.seconds:.0f} s per row"
    )
    header = f"{'arm':<28}{'cameras':>8}{'analyzed fps per camera min/mean/max':>40}{'in all':>9}"
    print(f"\n{header}{'spread':>8}{'stream fps min':>16}{'CPU cores':>11}{'load':>7}")
    totals: dict[tuple[str, int], float] = {}
    for cameras in args.cameras:  # the arms alternate, so a change in the machine's load hits both
        for arm in ARMS:
            r = run(arm, clip, args.model, cameras, args.seconds)
            rates = r["rates"]
            totals[(arm, cameras)] = sum(rates)
            spread = (max(rates) - min(rates)) / max(statistics.mean(rates), 1e-9)
            per_camera = f"{min(rates):.1f} / {statistics.mean(rates):.1f} / {max(rates):.1f}"
            print(
                f"{arm:<28}{cameras:>8}{per_camera:>40}{sum(rates):>9.1f}{spread:>8.0%}"
                f"{min(r['streams']):>16.1f}{r['cpu']:>11.2f}{os.getloadavg()[0]:>7.1f}",
                flush=True,
            )
    if 1 in args.cameras:
        for cameras in args.cameras[1:]:
            ratios = "   ".join(f"{arm[:3]} {totals[(arm, cameras)] / totals[(arm, 1)]:.2f}" for arm in ARMS)
            print(f"  {cameras} cameras' analyzed frames in all / 1 camera's: {ratios}")

    print("\none camera on a still picture (nothing moves), the app's pipeline:")
    for gating in (False, True):
        r = run("(b) scheduler (the app)", still, args.model, 1, args.seconds, gating=gating)
        name = "motion gating on (the app)" if gating else "motion gating off"
        print(
            f"  {name:<28} CPU {r['cpu']:.3f} cores, analyzed {r['rates'][0]:.1f} fps, "
            f"skipped as still {r['still']:.1f} fps, stream {r['streams'][0]:.1f} fps",
            flush=True,
        )


if __name__ == "__main__":
    main()
