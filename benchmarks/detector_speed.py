"""Face detectors side by side: milliseconds per 640x480 frame, all timed in one run on the same frames.

    python benchmarks/detector_speed.py [--scenes ../shared/datasets/ilc2021] [--frames 40] [--detectors a,b]

Frames are ilc2021 photos resized to 640x480 (a webcam's size). Each frame goes through every detector in turn
(round robin), so a machine whose speed drifts during the run slows all of them alike; the first frame of
each detector is a warm-up and not counted. Prints the median and 90th percentile per detector. Then the
default's verifier stage on its own: O-Net on the same candidates as the TFLite model it runs (the project's
path) and as the `mtcnn` package's eager Keras call (the naive path). Timings on a shared machine are noisy:
compare the rows of one run, not runs.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from maskdetector.training.datasets import load_scene_annotations  # noqa: E402
from maskdetector.vision.detectors import create_detector  # noqa: E402
from maskdetector.vision.detectors.onet import OnetVerifier, square_crops  # noqa: E402
from maskdetector.vision.preprocessing import read_image  # noqa: E402

DEFAULT_DETECTORS = "blazeface,blazeface-mean,blazeface-fast,blazeface+mtcnn,mtcnn,haar"


def frames(folder: Path, count: int) -> list[np.ndarray]:
    images = (read_image(s.image_path) for s in load_scene_annotations(folder))
    return [
        cv2.resize(image, (640, 480))
        for image, _ in zip((i for i in images if i is not None), range(count), strict=False)
    ]


def summary(samples: list[float]) -> str:
    ms = sorted(1000 * s for s in samples)
    return f"median {statistics.median(ms):6.1f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=Path, default=ROOT.parent / "shared" / "datasets" / "ilc2021")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--detectors", default=DEFAULT_DETECTORS)
    args = parser.parse_args()
    clip = frames(args.scenes, args.frames)
    detectors = {name: create_detector(name, min_face_size=24) for name in args.detectors.split(",")}
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for i, frame in enumerate(clip):
        for name, detector in detectors.items():
            started = time.perf_counter()
            detector.detect(frame)
            if i:
                times[name].append(time.perf_counter() - started)
    print(f"{len(clip) - 1} frames of 640x480 from {args.scenes} (after 1 warm-up), detection only:")
    for name, samples in times.items():
        print(f"  {name:<16} {summary(samples)}")

    default = create_detector("blazeface", min_face_size=24)
    candidates = [[c.raw_box for c in default.candidates(frame)] for frame in clip]
    rgb = [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in clip]
    verifier = OnetVerifier()
    from mtcnn.stages import StageONet

    keras_onet = StageONet()._model
    stage = {"O-Net, TFLite (default)": [], "O-Net, eager Keras (naive)": []}
    for image, boxes in zip(rgb, candidates, strict=True):
        if not boxes:
            continue
        started = time.perf_counter()
        verifier.scores(image, boxes)
        stage["O-Net, TFLite (default)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        keras_onet(square_crops(image, boxes))
        stage["O-Net, eager Keras (naive)"].append(time.perf_counter() - started)
    mean_candidates = np.mean([len(b) for b in candidates])
    print(f"verifier stage of blazeface alone ({mean_candidates:.1f} candidates per frame):")
    for name, samples in stage.items():
        print(f"  {name:<27} {summary(samples[1:])}")


if __name__ == "__main__":
    main()
