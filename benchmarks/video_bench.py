"""detect.py's video path against the naive loop, and steady labels against frame-by-frame ones, in one run.

    python benchmarks/video_bench.py [--quick]

Two clips made at run time (benchmarks/clips.py, 640x480, 30 fps, scenes-dev photos with 1-3 annotated faces):
"busy", a new photo every 5 frames (faces appear and vanish several times a second), and "steady", a new photo
every second (each face stays 30 frames, slowly zooming and drifting). On each, every frame in order:

- (a) the naive loop of the design's reference implementations: Haar on the full frame, `model.predict` on each
  face crop one at a time (busy clip only: it is the speed baseline);
- the project's pipeline as detect.py runs it (sources.files.analyze_in_order: decoding, analysis and output
  overlapped; the detector on 1 frame in 3 with faces followed between), with the float32 classifier and labels
  frame by frame (the pipeline before steady labels and int8), then with the int8 classifier, then with steady
  labels (the default), and with each packaged detector but MTCNN.

Per row: frames per second and the ratio to (a); face recall against the annotated boxes (IoU 0.3); end-to-end
accuracy (annotated faces found and labelled right / annotated faces of a class the model has); and label flips
per track (times a face's label changes between consecutive frames it is found in, per annotated face found in
two frames or more).
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cv2  # noqa: E402
import keras  # noqa: E402
from clips import TruthFace, make_clip  # noqa: E402

from maskdetector.constants import DEFAULT_MODEL_PATH  # noqa: E402
from maskdetector.sources.files import VideoInput, analyze_in_order  # noqa: E402
from maskdetector.types import Box, Face  # noqa: E402
from maskdetector.vision.boxes import greedy_match  # noqa: E402
from maskdetector.vision.classifier import MaskClassifier, read_labels  # noqa: E402
from maskdetector.vision.detectors import create_detector  # noqa: E402
from maskdetector.vision.detectors.haar import default_cascade_path  # noqa: E402
from maskdetector.vision.pipeline import FrameAnalyzer  # noqa: E402
from maskdetector.vision.preprocessing import crop_face, faces_to_batch  # noqa: E402
from maskdetector.vision.tracking import LABEL_WINDOW  # noqa: E402

MATCH_IOU = 0.3  # as the scene evaluation
REDETECT_EVERY = 3


class Score:
    """Recall, end-to-end accuracy and label flips of one pass, from each frame's faces in order."""

    def __init__(self, truth: list[list[TruthFace]], classes: list[str]) -> None:
        self.truth, self.classes = truth, set(classes)
        self.frames = self.faces = self.found = self.known = self.correct = 0
        self.history: dict[int, list[str]] = {}  # annotated face -> its labels in the frames it was found

    def add(self, faces: list[Face]) -> None:
        truth = self.truth[self.frames]
        self.frames += 1
        self.faces += len(truth)
        matches = greedy_match([t.box for t in truth], [f.box for f in faces], MATCH_IOU)
        self.found += len(matches)
        self.known += sum(t.label in self.classes for t in truth)
        for t, f in matches:
            self.correct += faces[f].label == truth[t].label
            self.history.setdefault(truth[t].person, []).append(faces[f].label)

    @property
    def flips_per_track(self) -> float:
        tracks = [labels for labels in self.history.values() if len(labels) > 1]
        flips = sum(sum(a != b for a, b in zip(labels, labels[1:], strict=False)) for labels in tracks)
        return flips / max(len(tracks), 1)

    def row(self) -> str:
        return f"{self.found / self.faces:>8.3f}{self.correct / max(self.known, 1):>10.3f}{self.flips_per_track:>9.3f}"


def naive_pass(clip: Path, score: Score, model: keras.Model, class_names: list[str]) -> float:
    cascade = cv2.CascadeClassifier(str(default_cascade_path()))
    started = time.perf_counter()
    for frame in VideoInput(str(clip)).frames():
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        faces = []
        for x, y, w, h in cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)):
            box: Box = (int(x), int(y), int(w), int(h))
            probs = model.predict(faces_to_batch([crop_face(frame.image, box)]), verbose=0)[0]
            faces.append(Face(box, class_names[int(probs.argmax())], float(probs.max())))
        score.add(faces)
    return score.frames / (time.perf_counter() - started)


def pipeline_pass(clip: Path, score: Score, analyzer: FrameAnalyzer) -> float:
    """What detect.py runs on a video: every frame in order, decoding, analysis and output overlapped."""
    video = analyzer.for_video()
    started = time.perf_counter()
    analyze_in_order(VideoInput(str(clip)).frames(), video.analyze, lambda frame, faces: score.add(faces))
    return score.frames / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--quick", action="store_true", help="shorter clips (100 and 150 frames)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="video_bench_"))
    busy_photos, steady_photos = (20, 5) if args.quick else (80, 15)
    clips = {
        "busy": (tmp / "busy.mp4", make_clip(tmp / "busy.mp4", busy_photos, 5)),
        "steady": (tmp / "steady.mp4", make_clip(tmp / "steady.mp4", steady_photos, 30)),
    }
    class_names = read_labels(args.model)
    model = keras.models.load_model(args.model, compile=False)
    float32 = MaskClassifier(model, class_names, "tflite-float")
    int8 = MaskClassifier(model, class_names, "tflite")
    detector = partial(create_detector, min_face_size=24)
    blazeface = detector("blazeface")

    def analyzer(det: object, classifier: MaskClassifier, window: int) -> Callable[[], FrameAnalyzer]:
        return lambda: FrameAnalyzer(det, classifier, redetect_every=REDETECT_EVERY, label_window=window)

    rows = {
        "(b) float32 classifier, labels frame by frame (before)": analyzer(blazeface, float32, 1),
        "(c) int8 classifier, labels frame by frame": analyzer(blazeface, int8, 1),
        f"(d) int8 classifier, steady labels over {LABEL_WINDOW} frames (detect.py now)": analyzer(
            blazeface, int8, LABEL_WINDOW
        ),
        **{
            f"    the same, detector {name}": analyzer(detector(name), int8, LABEL_WINDOW)
            for name in ("blazeface-fast", "haar", "haar-multi")
        },
    }
    print(f"cpu: {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}; niceness {os.nice(0)}")
    print(f"model {args.model} ({', '.join(class_names)}); detector blazeface unless named, on 1 frame in 3")
    for clip_name, (clip, truth) in clips.items():
        frames_per_photo = 5 if clip_name == "busy" else 30
        print(f"\n{clip_name} clip: {len(truth)} frames, a new photo every {frames_per_photo} frames")
        print(f"{'pipeline':<72}{'fps':>7}{'vs (a)':>8}{'recall':>8}{'accuracy':>10}{'flips':>9}{'load':>6}")
        naive_fps = None
        if clip_name == "busy":
            score = Score(truth, class_names)
            naive_fps = naive_pass(clip, score, model, class_names)
            name = "(a) naive: Haar full frame, model.predict per face"
            print(f"{name:<72}{naive_fps:>7.1f}{'1.0x':>8}{score.row()}{os.getloadavg()[0]:>6.1f}", flush=True)
        for name, make in rows.items():
            score = Score(truth, class_names)
            fps = pipeline_pass(clip, score, make())
            ratio = f"{fps / naive_fps:.1f}x" if naive_fps else ""
            print(f"{name:<72}{fps:>7.1f}{ratio:>8}{score.row()}{os.getloadavg()[0]:>6.1f}", flush=True)
    checked = int8._run.checked
    print(f"\nint8 classifier: {checked} faces over all its passes were close calls, classified again in float32")


if __name__ == "__main__":
    main()
