"""How far can Haar frames be shrunk before faces are lost? Recall and time per detect_width on scenes-dev.

    python benchmarks/haar_downscale.py [--data ../shared/datasets/scenes-dev] [--widths 0 400 320 256 200]
        [--detectors haar haar-multi] [--sizes own live]

For each `detect_width` (0 = the full frame) it runs the `haar` and `haar-multi` detectors on every annotated
photo, at its own size and scaled to 640 px wide (the size of the live stream and of pipeline_bench.py's
clip), and prints recall / precision at IoU 0.3 over faces >= 32 px and over all faces, and ms per frame.
HaarDetector.DETECT_WIDTH is the narrowest width whose recall on the photos at their own size stays within
1 point of the full frame's.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from maskdetector.training.datasets import AnnotatedFace, SceneAnnotation, load_scene_annotations  # noqa: E402
from maskdetector.training.scene_eval import Counts, score_image  # noqa: E402
from maskdetector.types import Face  # noqa: E402
from maskdetector.vision.detectors import create_detector  # noqa: E402
from maskdetector.vision.preprocessing import read_image  # noqa: E402

LIVE_WIDTH = 640
MIN_SIDE = 32


def scaled_scene(scene: SceneAnnotation, image: np.ndarray, width: int) -> tuple:
    """The photo and its annotations scaled to `width` pixels wide (as a frame of the live clip), and the factor."""
    factor = width / image.shape[1]
    big = cv2.resize(image, (width, int(round(image.shape[0] * factor))), interpolation=cv2.INTER_LINEAR)
    faces = tuple(AnnotatedFace(f.label, tuple(int(round(v * factor)) for v in f.box)) for f in scene.faces)
    return big, faces, factor


def measure(name: str, width: int, frames: list) -> tuple[Counts, Counts, float]:
    """Counts over faces >= MIN_SIDE px in the original photo and over all faces, and ms per frame."""
    detector = create_detector(name, min_face_size=24, detect_width=width or None)
    big, every = Counts(), Counts()
    started = time.perf_counter()
    for image, truth, factor in frames:
        found = [Face(box, "with_mask", 1.0) for box in detector.detect(image)]
        big = big + score_image(truth, found, 0.3, ["with_mask"], int(round(MIN_SIDE * factor)))
        every = every + score_image(truth, found, 0.3, ["with_mask"])
    return big, every, 1000 * (time.perf_counter() - started) / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/scenes-dev"))
    parser.add_argument("--widths", type=int, nargs="+", default=[0, 400, 320, 256, 200])
    parser.add_argument("--detectors", nargs="+", default=["haar", "haar-multi"])
    parser.add_argument("--sizes", nargs="+", choices=["own", "live"], default=["own", "live"])
    args = parser.parse_args()

    native, live = [], []
    for scene in load_scene_annotations(args.data):
        image = read_image(scene.image_path)
        if image is not None:
            native.append((image, scene.faces, 1.0))
            live.append(scaled_scene(scene, image, LIVE_WIDTH))
    print(f"{len(native)} photos; recall / precision at IoU 0.3 (faces >= 32 px in the photo | all), ms/frame")
    print(f"{'detector':<11}{'frames':<16}{'detect_width':>13}{'>=32 px':>16}{'all':>16}{'ms':>8}")
    for name in args.detectors:
        sets = {"own": ("own size", native), "live": (f"{LIVE_WIDTH} px wide", live)}
        for label, frames in (sets[size] for size in args.sizes):
            for width in args.widths:
                big, every, ms = measure(name, width, frames)
                print(
                    f"{name:<11}{label:<16}{width or 'full':>13}"
                    f"{big.recall:>9.3f} /{big.precision:.3f}{every.recall:>9.3f} /{every.precision:.3f}{ms:>8.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
