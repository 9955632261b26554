"""Shared fixtures: tiny generated image folders and a small untrained model, built at test time, and the real
servers (PostgreSQL, Mosquitto) of tests/servers.py."""

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import servers

from maskdetector.settings import FIELDS, env_var

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
    """Every app a test builds keeps its statistics and alerts in a temporary folder, never in the project's data/;
    no setting's variable of the shell running the tests leaks into them."""
    for name in FIELDS:
        monkeypatch.delenv(env_var(name), raising=False)
    folder = tmp_path / "data"
    monkeypatch.setenv("MASKDETECTOR_DATA_DIR", str(folder))
    # Fake cameras show the same flat frame again and again, which motion gating would rightly never analyze twice;
    # tests/test_motion_gate.py tests the gating itself.
    monkeypatch.setenv("MASKDETECTOR_MOTION_GATING", "0")
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


def _missing(reason: str) -> None:
    """Skip a test whose server or tool is not installed, saying why; with MASKDETECTOR_REQUIRE_SERVERS=1 (CI) fail
    it instead, so these tests cannot silently not run."""
    if os.environ.get(servers.REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}; {servers.REQUIRE_ENV}=1 says these tests must run")
    pytest.skip(reason)


def _server(start):  # noqa: ANN001, ANN202
    try:
        return start()
    except servers.ServerMissing as exc:
        _missing(str(exc))


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the whole run (its own folder and port, stopped at the end)."""
    server = _server(servers.Postgres)
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres) -> str:
    """An empty database of the test's own on the run's PostgreSQL server."""
    return postgres.new_database()


@pytest.fixture
def broker():
    """A Mosquitto broker of the test's own: tests stop and restart it."""
    server = _server(servers.Mosquitto)
    yield server
    server.close()


@pytest.fixture(scope="module")
def site_broker():
    """A Mosquitto broker shared by one module's tests."""
    server = _server(servers.Mosquitto)
    yield server
    server.close()


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus's own checker for the text format."""
    path = shutil.which("promtool")
    if path is None:
        _missing("promtool is not installed (apt-get install prometheus)")
    return path
