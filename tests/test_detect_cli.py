"""detect.py on real photos, folders and a generated video: JSON lines, annotated outputs, one-line errors.

Runs main(argv) in-process (TensorFlow loads once per session); one subprocess proves the exit code on its own.
"""

import importlib
import io
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdetector.sources.files import Progress

ROOT = Path(__file__).resolve().parents[1]
DETECT = ROOT / "detect.py"
PHOTO = "maksssksksss128"  # one large frontal face the default Haar cascade finds
SUMMARY = re.compile(r"^processed (\d+) frames in \d+\.\d s \(\d+\.\d fps\)$")
VIDEO_FRAMES = 10


@pytest.fixture(scope="module")
def detect():
    return importlib.import_module("detect")


@pytest.fixture
def run(detect, capsys, untrained_model):
    """main(argv) with the small model -> (exit code, JSON records from stdout, stderr lines)."""

    def run(*args: str) -> tuple[int, list[dict], list[str]]:
        code = detect.main(["--model", str(untrained_model), *map(str, args)])  # a later --model wins
        out, err = capsys.readouterr()
        return code, [json.loads(line) for line in out.splitlines()], err.strip().splitlines()

    return run


@pytest.fixture
def photo(shared_datasets, tmp_path) -> Path:
    path = tmp_path / "in" / f"{PHOTO}.png"
    path.parent.mkdir()
    shutil.copy(shared_datasets / "scenes-dev" / "images" / path.name, path)
    return path


@pytest.fixture
def video(photo, tmp_path) -> Path:
    """A short clip of the photo drifting right, written with OpenCV like any recorded video."""
    image = cv2.imread(str(photo))
    height, width = 240, 320
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (width, height))
    scaled = cv2.resize(image, (image.shape[1] * height // image.shape[0], height))
    for i in range(VIDEO_FRAMES):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, i * 4 : i * 4 + scaled.shape[1]] = scaled
        writer.write(frame)
    writer.release()
    return path


def assert_record(record: dict, width: int, height: int) -> None:
    assert (record["width"], record["height"]) == (width, height)
    for face in record["faces"]:
        assert set(face) == {"box", "label", "confidence"}
        x, y, w, h = face["box"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height
        assert face["label"] in ("with_mask", "without_mask") and 0 <= face["confidence"] <= 1


def assert_summary(err: list[str], frames: int) -> None:
    match = SUMMARY.match(err[-1])
    assert match, err
    assert int(match.group(1)) == frames


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    return frames


def test_image_json(run, photo):
    code, records, err = run(photo, "--json")
    assert code == 0
    (record,) = records
    assert set(record) == {"path", "width", "height", "faces"}
    assert record["path"] == str(photo)
    assert_record(record, 301, 400)
    assert record["faces"], "Haar should find the face in this photo"
    assert_summary(err, 1)


def test_folder_json_and_annotated_images(run, photo, shared_datasets, tmp_path, caplog):
    folder = photo.parent
    shutil.copy(shared_datasets / "scenes-dev" / "images" / "maksssksksss0.png", folder)
    (folder / "broken.jpg").write_bytes(b"not really a jpeg")
    (folder / "notes.txt").write_text("not an image, not even tried")
    out = tmp_path / "annotated"
    with caplog.at_level(logging.WARNING):
        code, records, err = run(folder, "--json", "-o", out, "--quiet")
    assert code == 0
    assert [Path(r["path"]).name for r in records] == ["maksssksksss0.png", f"{PHOTO}.png"]  # in name order
    assert all("frame" not in r for r in records)
    assert any("broken.jpg" in message for message in caplog.messages)
    assert sorted(p.name for p in out.iterdir()) == ["maksssksksss0.png", f"{PHOTO}.png"]
    for record in records:
        written = cv2.imread(str(out / Path(record["path"]).name))
        assert written.shape == (record["height"], record["width"], 3)
        assert not np.array_equal(written, cv2.imread(record["path"])) or not record["faces"]  # boxes drawn
    assert_summary(err, 2)


def test_video_json_every_frame_and_mp4_output(run, video, tmp_path):
    out = tmp_path / "annotated.mp4"
    code, records, err = run(video, "--json", "-o", out)
    assert code == 0
    assert [r["frame"] for r in records] == list(range(VIDEO_FRAMES))
    for record in records:
        assert record["path"] == str(video)
        assert_record(record, 320, 240)
    assert sum(bool(r["faces"]) for r in records) > 0
    assert count_frames(out) == VIDEO_FRAMES
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (320, 240)
    cap.release()
    assert_summary(err, VIDEO_FRAMES)


def test_mixed_inputs_into_an_output_folder(run, photo, video, tmp_path):
    out = tmp_path / "out"
    code, records, err = run(photo, video, "-o", out)
    assert code == 0 and records == []  # no --json: nothing on stdout
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", photo.name]
    assert count_frames(out / "clip.mp4") == VIDEO_FRAMES
    assert_summary(err, 1 + VIDEO_FRAMES)


def test_whole_image_scores_each_crop(run, shared_datasets, tmp_path):
    crops = tmp_path / "crops"
    crops.mkdir()
    for name in ("with_mask", "without_mask"):
        shutil.copy(sorted((shared_datasets / "observations" / name).glob("*.jpg"))[0], crops / f"{name}.jpg")
    code, records, err = run(crops, "--whole-image", "--json")
    assert code == 0 and len(records) == 2
    for record in records:
        (face,) = record["faces"]
        assert face["box"] == [0, 0, record["width"], record["height"]]
        assert face["label"] in ("with_mask", "without_mask")
    assert_summary(err, 2)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["no-such-file.jpg"], "not found"),
        (["BROKEN_IMAGE"], "not a readable image"),
        (["PHOTO", "--model", "none.keras"], "none.keras"),
        (["PHOTO", "-o", "out.mp4"], "exactly one video"),
        (["PHOTO", "-o", "IN_FOLDER"], "overwrite"),
        (["PHOTO", "--scale-factor", "1.0"], "--scale-factor"),
        (["PHOTO", "--redetect-every", "0"], "--redetect-every"),
    ],
)
def test_bad_input_is_one_error_line(run, photo, tmp_path, args, fragment):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG truncated")
    names = {"BROKEN_IMAGE": str(broken), "PHOTO": str(photo), "IN_FOLDER": str(photo.parent)}
    code, records, err = run(*[names.get(a, a) for a in args])
    assert code == 2
    assert err[-1].startswith("error: ") and fragment in err[-1], err
    assert [line for line in err if line.startswith("error:")] == err[-1:]
    assert not any("Traceback" in line for line in err)


def test_unknown_detector_is_a_usage_error(detect, capsys):
    with pytest.raises(SystemExit) as exit_info:
        detect.main(["x.jpg", "--detector", "yolo"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "yolo" in err[0]


def test_missing_input_exits_2_without_traceback_in_a_real_process(tmp_path):
    result = subprocess.run(
        [sys.executable, str(DETECT), str(tmp_path / "missing.png")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: input {str(tmp_path / 'missing.png')!r} not found: "
        "expected an image, a folder, a video file or a camera index"
    ]
    assert result.stdout == ""


def test_progress_bar_redraws_one_line():
    stream = io.StringIO()
    progress = Progress(stream, enabled=True)
    progress.start("clip.mp4", 4)
    for _ in range(4):
        progress.step()
    progress.finish()
    text = stream.getvalue()
    assert text.startswith("\r") and "clip.mp4: 100%" in text and "4/4" in text and text.count("\n") == 1
    quiet = io.StringIO()
    silent = Progress(quiet, enabled=False)
    silent.start("x", 2)
    silent.step()
    silent.finish()
    assert quiet.getvalue() == ""
