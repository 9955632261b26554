"""The classifier's cost per face: float32 TFLite (the previous default) against int8 with the float32 check (now).

    python benchmarks/classifier_bench.py [--rounds 5]

Times per face at batch 1, 2, 4 and 8 on real scenes-dev crops, with 1 interpreter thread (what each worker of the
live app's pool uses on 2 cores) and with every core, in interleaved rounds (this machine's speed drifts), medians
of the rounds; then whether each path gives the Keras model's label on every scenes-dev crop.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from maskdetector.constants import DEFAULT_MODEL_PATH  # noqa: E402
from maskdetector.training.datasets import load_scene_crops  # noqa: E402
from maskdetector.vision.classifier import MaskClassifier, read_labels  # noqa: E402
from maskdetector.vision.tflite import TFLITE_THREADS, interpreter_threads  # noqa: E402

SCENES = ROOT.parent / "shared" / "datasets" / "scenes-dev"
BATCHES = (1, 2, 4, 8)


def per_face_ms(classifier: MaskClassifier, crops: np.ndarray, batch: int, calls: int = 40) -> float:
    classifier.predict_batch(crops[:batch])  # warm-up: this batch size's interpreter
    times = []
    for i in range(calls):
        start = (i * batch) % (len(crops) - batch)
        started = time.perf_counter()
        classifier.predict_batch(crops[start : start + batch])
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    names = read_labels(args.model)
    model = keras.models.load_model(args.model, compile=False)
    crops = np.concatenate(
        [load_scene_crops(SCENES, names, holdout=h, holdout_percent=30, min_side=0).images for h in (True, False)]
    ).astype(np.float32)
    paths = {}
    for threads in (1, TFLITE_THREADS):
        with interpreter_threads(threads):
            for backend in ("tflite-float", "tflite"):
                paths[f"{backend} ({'int8 + check' if backend == 'tflite' else 'float32'}), {threads} thread(s)"] = (
                    MaskClassifier(model, names, backend)
                )
    samples = {(name, b): [] for name in paths for b in BATCHES}
    for _ in range(args.rounds):
        for name, classifier in paths.items():
            for batch in BATCHES:
                samples[(name, batch)].append(per_face_ms(classifier, crops, batch))
    print(f"cpu: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}; niceness {os.nice(0)}")
    print(f"ms per face, median of {args.rounds} interleaved rounds (each the median of 40 calls)")
    print(f"{'path':<48}" + "".join(f"{'batch ' + str(b):>10}" for b in BATCHES))
    for name in paths:
        print(f"{name:<48}" + "".join(f"{statistics.median(samples[(name, b)]):>10.2f}" for b in BATCHES))
    reference = MaskClassifier(model, names, "keras").predict_batch(crops).argmax(axis=1)
    for name, classifier in list(paths.items())[:2]:
        same = int((classifier.predict_batch(crops).argmax(axis=1) == reference).sum())
        print(f"{name}: the Keras label on {same} of {len(crops)} scenes-dev crops")


if __name__ == "__main__":
    main()
