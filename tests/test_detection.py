"""Face detection behind the FaceDetector interface, and the detect -> crop -> classify pipeline."""

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdetector.errors import UserError
from maskdetector.types import Prediction
from maskdetector.vision.classifier import MaskClassifier
from maskdetector.vision.detectors import create_detector, haar
from maskdetector.vision.detectors.haar import DEFAULT_CASCADE, HaarDetector
from maskdetector.vision.pipeline import FrameAnalyzer, count_labels
from maskdetector.vision.preprocessing import read_image

# One large, frontal, unmasked face that the default cascade finds with default settings.
PHOTO = "maksssksksss128"


def annotated_box(shared: Path, name: str) -> tuple[int, int, int, int]:
    box = ET.parse(shared / "scenes-dev" / "annotations" / f"{name}.xml").getroot().find("object/bndbox")
    return tuple(int(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))


def test_haar_finds_the_face_in_a_real_photo(shared_datasets):
    image = read_image(shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png")
    boxes = create_detector("haar").detect(image)
    assert boxes
    height, width = image.shape[:2]
    for x, y, w, h in boxes:
        assert isinstance(x, int) and w > 0 and h > 0
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
    x0, y0, x1, y1 = annotated_box(shared_datasets, PHOTO)
    assert any(x0 <= x + w / 2 <= x1 and y0 <= y + h / 2 <= y1 for x, y, w, h in boxes)


def test_haar_finds_nothing_in_a_blank_frame():
    assert HaarDetector().detect(np.zeros((240, 320, 3), np.uint8)) == []


def test_unknown_detector_and_bad_cascade_are_user_errors(tmp_path):
    available = "available: blazeface, blazeface+mtcnn, blazeface-fast, blazeface-mean, haar"
    with pytest.raises(UserError, match=re.escape(f"unknown detector 'yolo'; {available}")):
        create_detector("yolo")
    with pytest.raises(UserError, match="not found"):
        create_detector("haar", cascade=tmp_path / "missing.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(UserError, match="not a valid Haar cascade"):
        create_detector("haar", cascade=broken)


def test_cascade_in_project_folder_overrides_opencv_default(tmp_path, monkeypatch):
    monkeypatch.setattr(haar, "CASCADE_DIR", tmp_path)
    assert haar.default_cascade_path() == Path(cv2.data.haarcascades) / DEFAULT_CASCADE
    shutil.copy(Path(cv2.data.haarcascades) / DEFAULT_CASCADE, tmp_path / DEFAULT_CASCADE)
    assert haar.default_cascade_path() == tmp_path / DEFAULT_CASCADE
    HaarDetector()  # loads it


class FixedDetector:
    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, frame_bgr):
        return list(self.boxes)


class RecordingClassifier:
    def __init__(self):
        self.batches = []

    def classify(self, faces_bgr):
        self.batches.append([f.shape for f in faces_bgr])
        return [Prediction("without_mask" if i else "with_mask", 0.9) for i in range(len(faces_bgr))]


def test_analyzer_classifies_all_faces_of_a_frame_in_one_call():
    classifier = RecordingClassifier()
    analyzer = FrameAnalyzer(FixedDetector([(10, 10, 50, 50), (100, 20, 40, 40)]), classifier, margin=0.1)
    faces = analyzer.analyze(np.zeros((120, 200, 3), np.uint8))
    assert classifier.batches == [[(60, 60, 3), (48, 48, 3)]]  # both crops, margin added, one call
    assert [f.box for f in faces] == [(10, 10, 50, 50), (100, 20, 40, 40)]
    assert count_labels(faces) == {"with_mask": 1, "without_mask": 1}


def test_analyzer_skips_the_model_when_there_are_no_faces():
    classifier = RecordingClassifier()
    assert FrameAnalyzer(FixedDetector([]), classifier).analyze(np.zeros((50, 50, 3), np.uint8)) == []
    assert classifier.batches == []


def test_analyzer_with_real_detector_and_model(shared_datasets, untrained_model):
    image = read_image(shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png")
    classifier = MaskClassifier.load(untrained_model)
    faces = FrameAnalyzer(HaarDetector(), classifier).analyze(image)
    assert faces
    assert all(f.label in classifier.class_names and 0.0 <= f.confidence <= 1.0 for f in faces)
