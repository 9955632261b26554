"""Scene evaluation: greedy IoU matching, the size-subset rules and the metrics, on hand-made annotations
with known answers; then evaluate.py end to end with a fake detector and classifier."""

import importlib
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdetector.training.datasets import AnnotatedFace, load_scene_annotations
from maskdetector.training.scene_eval import Counts, run_scenes, score_image, score_scenes
from maskdetector.types import Face, Prediction
from maskdetector.vision import classifier, detectors
from maskdetector.vision.boxes import box_iou, greedy_match

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["with_mask", "without_mask"]


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == 50 / 150


def test_greedy_match_takes_the_best_pairs_one_to_one():
    truth = [(0, 0, 10, 10), (8, 0, 10, 10)]
    found = [(1, 0, 10, 10), (7, 0, 10, 10), (100, 100, 5, 5)]
    # found 0 overlaps truth 0 best (IoU .82), found 1 truth 1 (IoU .82); truth 0 vs found 1 is only .18
    assert greedy_match(truth, found, 0.3) == [(0, 0), (1, 1)]
    # one detection between two faces is used once, by the face it overlaps most
    assert greedy_match(truth, [(6, 0, 10, 10)], 0.1) == [(1, 0)]
    assert greedy_match(truth, found, 0.9) == []
    assert greedy_match([], found, 0.3) == [] and greedy_match(truth, [], 0.3) == []


def test_counts_at_two_iou_thresholds():
    truth = [
        AnnotatedFace("with_mask", (0, 0, 40, 40)),
        AnnotatedFace("without_mask", (100, 0, 40, 40)),
        AnnotatedFace("mask_weared_incorrect", (200, 0, 40, 40)),
        AnnotatedFace("with_mask", (300, 0, 40, 40)),  # missed
    ]
    found = [
        Face((0, 0, 40, 40), "with_mask", 0.9),  # right
        Face((110, 0, 40, 40), "with_mask", 0.9),  # IoU 0.6: found, wrong label
        Face((200, 0, 40, 40), "with_mask", 0.9),  # found; the 2-class model cannot be right or wrong here
        Face((400, 0, 40, 40), "with_mask", 0.9),  # no face there
    ]
    at_03 = score_image(truth, found, 0.3, CLASSES)
    per_class = Counter(with_mask=2, without_mask=1, mask_weared_incorrect=1)
    assert at_03 == Counts(
        faces=4,
        found=3,
        detections=4,
        true_detections=3,
        known=3,
        labelled=2,
        correct=1,
        class_faces=per_class,
        class_found=Counter(with_mask=1, without_mask=1, mask_weared_incorrect=1),
    )
    assert (at_03.recall, at_03.precision, at_03.label_accuracy) == (0.75, 0.75, 0.5)
    assert at_03.end_to_end == pytest.approx(1 / 3)
    # the masked face missed shows in the masked class alone
    assert at_03.class_recall() == {"mask_weared_incorrect": 1.0, "with_mask": 0.5, "without_mask": 1.0}
    at_07 = score_image(truth, found, 0.7, CLASSES)
    assert (at_07.faces, at_07.found, at_07.detections, at_07.labelled, at_07.correct) == (4, 2, 4, 1, 1)
    assert at_07.class_found == Counter(with_mask=1, mask_weared_incorrect=1)
    # summed over images, per class as well
    assert (at_03 + at_07).class_recall() == {"mask_weared_incorrect": 1.0, "with_mask": 0.5, "without_mask": 0.5}


def test_size_subset_ignores_small_faces_and_their_detections():
    truth = [AnnotatedFace("with_mask", (0, 0, 40, 40)), AnnotatedFace("with_mask", (100, 0, 20, 20))]
    found = [
        Face((0, 0, 40, 40), "with_mask", 0.9),
        Face((100, 0, 20, 20), "with_mask", 0.9),  # matches the small face: ignored in the >= 32 px subset
        Face((200, 0, 20, 20), "with_mask", 0.9),  # unmatched, smaller than 0.8 * 32: ignored
        Face((300, 0, 26, 26), "with_mask", 0.9),  # unmatched, 26 >= 25.6: a false detection
    ]
    big = score_image(truth, found, 0.5, CLASSES, min_side=32)
    assert (big.faces, big.found, big.detections, big.true_detections, big.known) == (1, 1, 2, 1, 1)
    assert big.class_faces == Counter(with_mask=1)
    every = score_image(truth, found, 0.5, CLASSES)
    assert (every.faces, every.found, every.detections, every.true_detections, every.known) == (2, 2, 4, 2, 2)
    assert Counts().recall == Counts().precision == Counts().label_accuracy == Counts().end_to_end == 0.0


def write_scene(root: Path, name: str, size: tuple[int, int], faces: list[tuple[str, tuple[int, int, int, int]]]):
    """A blank PNG and its PASCAL VOC file; boxes as (xmin, ymin, xmax, ymax)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    width, height = size
    cv2.imwrite(str(root / "images" / f"{name}.png"), np.zeros((height, width, 3), np.uint8))
    objects = "".join(
        f"<object><name>{label}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
        "</bndbox></object>"
        for label, (x0, y0, x1, y1) in faces
    )
    xml = f"<annotation><filename>{name}.png</filename><size><width>{width}</width><height>{height}</height>"
    (root / "annotations" / f"{name}.xml").write_text(f"{xml}</size>{objects}</annotation>")


@pytest.fixture
def scenes(tmp_path) -> Path:
    """Two images: a 200 px wide one with a large and a small face, a 300 px wide one with one large face."""
    root = tmp_path / "scenes"
    write_scene(root, "a", (200, 100), [("with_mask", (10, 10, 60, 60)), ("without_mask", (100, 10, 120, 30))])
    write_scene(root, "b", (300, 100), [("without_mask", (10, 10, 60, 60))])
    (root / "annotations" / "broken.xml").write_text("<annotation>")  # skipped with a warning
    return root


class FakeDetector:
    """Knows the images by width: finds the large face of a (exactly) and a non-face in b."""

    def __init__(self, **settings):
        self.settings = settings

    def detect(self, frame_bgr):
        if frame_bgr.shape[1] == 200:
            return [(10, 10, 50, 50)]
        return [(200, 40, 50, 50)]


class FakeClassifier:
    class_names = CLASSES

    def classify(self, faces_bgr):
        return [Prediction("with_mask", 0.8) for _ in faces_bgr]


def test_run_scenes_runs_the_pipeline_and_times_detection(scenes):
    results, skipped = run_scenes(load_scene_annotations(scenes), FakeDetector(), FakeClassifier())
    assert skipped == 0
    assert [r.scene.image_path.name for r in results] == ["a.png", "b.png"]
    assert [r.frame_size for r in results] == [(200, 100), (300, 100)]
    assert results[0].faces == (Face((10, 10, 50, 50), "with_mask", 0.8),)
    assert all(0 <= r.detect_seconds <= r.total_seconds for r in results)
    counts = score_scenes(results, 0.5, CLASSES, min_side=32)
    assert (counts.faces, counts.found, counts.detections, counts.true_detections) == (2, 1, 2, 1)
    assert counts.class_recall() == {"with_mask": 1.0, "without_mask": 0.0}


@pytest.fixture
def evaluate(monkeypatch):
    module = importlib.import_module("evaluate")
    monkeypatch.setitem(detectors.DETECTORS, "fake", FakeDetector)
    monkeypatch.setattr(classifier.MaskClassifier, "load", classmethod(lambda cls, path, backend: FakeClassifier()))
    return module


def test_evaluate_without_detector_flag_uses_the_configured_detector(evaluate, scenes, monkeypatch, capsys):
    monkeypatch.setenv("MASKDETECTOR_DETECTOR", "fake")
    assert evaluate.main(["scenes", "--data", str(scenes), "--model", "m.keras"]) == 0
    assert capsys.readouterr().out.startswith(f"{scenes} · fake: 2 images")


def test_evaluate_command_prints_and_writes_the_metrics(evaluate, scenes, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = evaluate.main(
        ["scenes", "--data", str(scenes), "--detector", "fake", "--model", "m.keras", "--json", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{scenes} · fake: 2 images (median 250x100; 0 unreadable), 2 detections; detection ")
    lines = text.splitlines()
    assert lines[1].split() == [
        "images", "faces", "IoU", "GT", "recall", "mask", "no", "mask", "precision", "label", "acc", "(n)", "end-to-end"
    ]  # fmt: skip
    assert lines[2].split()[:7] == ["all", "all", "0.3", "3", "0.333", "1.000", "0.000"]
    report = json.loads(out.read_text())
    rows = {(r["images"], r["subset"], r["iou"]): r for r in report["folders"][str(scenes)]["fake"]["rows"]}
    every = rows[("all", "all", 0.3)]
    assert (every["faces"], every["found"], every["detections"], every["true_detections"]) == (3, 1, 2, 1)
    assert (every["recall"], every["precision"], every["label_accuracy"]) == (pytest.approx(1 / 3), 0.5, 1.0)
    assert every["class_recall"] == {"with_mask": 1.0, "without_mask": 0.0}
    assert every["class_faces"] == {"with_mask": 1, "without_mask": 2}
    large = rows[("all", ">=32px", 0.5)]
    assert (large["faces"], large["recall"], large["end_to_end_recall"]) == (2, 0.5, 0.5)
    assert {r["images"] for r in rows.values()} == {"all", "held-out"}


def test_evaluate_reports_each_folder_apart(evaluate, scenes, tmp_path, capsys):
    other = tmp_path / "other"
    write_scene(other, "c", (200, 100), [("mask_weared_incorrect", (10, 10, 60, 60))])
    out = tmp_path / "report.json"
    args = ["scenes", "--data", str(scenes), "--data", str(other), "--detector", "fake", "--json", str(out)]
    assert evaluate.main(args) == 0
    headers = [line for line in capsys.readouterr().out.splitlines() if " · fake: " in line]
    assert [h.split(" · ")[0] for h in headers] == [str(scenes), str(other)]
    folders = json.loads(out.read_text())["folders"]
    assert list(folders) == [str(scenes), str(other)]
    row = folders[str(other)]["fake"]["rows"][0]
    # the fake detector finds the 200 px image's face: c's face, mask worn wrongly, counts for recall only
    assert (row["faces"], row["found"], row["class_recall"], row["known"]) == (1, 1, {"mask_weared_incorrect": 1.0}, 0)
    # a missing second folder fails before anything runs
    assert evaluate.main(["scenes", "--data", str(scenes), "--data", str(tmp_path / "nope")]) == 2
    assert "must contain images/ and annotations/" in capsys.readouterr().err


def test_printed_rates_are_rounded_once(evaluate):
    # 480 of 505 is 0.950495: rounding to 4 places first (0.9505) and then to 3 printed 0.951
    row = {"images": "all", "subset": "all", "iou": 0.3, **Counts(faces=505, labelled=505, correct=480).summary()}
    assert "0.950" in evaluate.format_rows([row]).splitlines()[1]


def test_evaluate_holdout_only_and_errors(evaluate, scenes, tmp_path, capsys):
    args = ["scenes", "--data", str(scenes), "--detector", "fake", "--holdout-only"]
    assert evaluate.main([*args, "--holdout-percent", "100"]) == 0  # crc32 % 100 < 100: every image held out
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 4 and all(row.split()[0] == "all" for row in rows)  # no separate held-out rows
    assert evaluate.main([*args, "--holdout-percent", "0"]) == 2
    assert capsys.readouterr().err.strip() == f"error: no images to evaluate in {scenes}"
    assert evaluate.main(["scenes", "--data", str(tmp_path / "missing")]) == 2
    assert "must contain images/ and annotations/" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["scenes", "--data", str(scenes), "--detector", "nope"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
