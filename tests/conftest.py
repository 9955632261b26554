"""Shared fixtures: tiny generated image folders and a small untrained model, built at test time."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def make_face_folder(root: Path, per_class: int = 10, classes: tuple[str, ...] = ("with_mask", "without_mask")) -> Path:
    """Write small synthetic 'faces': a skin-coloured disc, with a blue band over the lower half for with_mask."""
    rng = np.random.default_rng(0)
    for ci, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = int(rng.integers(60, 140))
            img = np.full((size, size, 3), rng.integers(0, 80), np.uint8)
            cv2.circle(img, (size // 2, size // 2), size // 3, (120, 160, 220), -1)
            if ci == 0:
                cv2.rectangle(img, (size // 4, size // 2), (3 * size // 4, 3 * size // 4), (200, 90, 30), -1)
            ext = ".png" if i % 2 else ".jpg"
            cv2.imwrite(str(root / name / f"{i}{ext}"), img)
    return root


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every app a test builds keeps its statistics and alerts in a temporary folder, never in the project's data/."""
    folder = tmp_path / "data"
    monkeypatch.setenv("MASKDETECTOR_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def face_folder(tmp_path: Path) -> Path:
    return make_face_folder(tmp_path / "faces")


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model file with the real architecture and random weights, plus its labels.json."""
    from maskdetector.vision.model import build_model

    out = tmp_path_factory.mktemp("model")
    build_model(2).save(out / "mask_detector.keras")
    labels = {"classes": ["with_mask", "without_mask"], "input_size": [100, 100], "color_order": "RGB"}
    (out / "labels.json").write_text(json.dumps(labels))
    return out / "mask_detector.keras"


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/datasets is not beside the project")
    return SHARED
