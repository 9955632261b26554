"""Test clips for the benchmarks, made at run time from scenes-dev photos: 640x480, 30 fps, every face's box known.

Each photo is shown for `frames_per_photo` frames, slowly zooming and drifting so the faces move; its annotated
boxes move with it. Short showings (a few frames) make faces appear and vanish often, as at a busy entrance.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from maskdetector.training.datasets import load_scene_annotations  # noqa: E402
from maskdetector.vision.preprocessing import read_image  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 480, 30
SCENES = ROOT.parent / "shared" / "datasets" / "scenes-dev"


@dataclass(frozen=True)
class TruthFace:
    box: tuple[float, float, float, float]
    label: str
    person: int  # the same face in every frame of its photo


def make_clip(
    out: Path, photos: int, frames_per_photo: int, scenes: Path = SCENES, min_side: int = 24
) -> list[list[TruthFace]]:
    """Write the clip (scenes-dev photos with 1-3 annotated faces of at least `min_side` px, in file order) to
    `out`; returns each frame's faces."""
    chosen = [
        s
        for s in load_scene_annotations(scenes)
        if 1 <= len(s.faces) <= 3 and min(min(f.box[2:]) for f in s.faces) >= min_side
    ]
    if len(chosen) < photos:
        raise SystemExit(f"{scenes} has only {len(chosen)} photos with 1-3 faces of {min_side} px or more")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    truth: list[list[TruthFace]] = []
    person = 0
    for scene in chosen[:photos]:
        image = read_image(scene.image_path)
        fit = min(WIDTH / image.shape[1], HEIGHT / image.shape[0])
        for t in range(frames_per_photo):  # zoom in by up to 15 % and drift right over a second
            scale = fit * (1.0 + 0.15 * t / FPS)
            shift_x = (WIDTH - image.shape[1] * scale) / 2 + 20 * t / FPS
            shift_y = (HEIGHT - image.shape[0] * scale) / 2
            matrix = np.float32([[scale, 0, shift_x], [0, scale, shift_y]])
            writer.write(cv2.warpAffine(image, matrix, (WIDTH, HEIGHT)))
            truth.append(
                [
                    TruthFace((x * scale + shift_x, y * scale + shift_y, w * scale, h * scale), f.label, person + i)
                    for i, f in enumerate(scene.faces)
                    for x, y, w, h in [f.box]
                ]
            )
        person += len(scene.faces)
    writer.release()
    return truth
