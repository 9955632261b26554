"""app.py's command line: settings from flags over environment, and one-line errors with exit code 2."""

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import app

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"


def run_app(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MASKDETECTOR_")}
    return subprocess.run(
        [sys.executable, str(APP), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, **(env or {})},
        cwd=ROOT,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str, only_line: bool = True) -> None:
    """Exit code 2 and a single `error:` line, the last one; with only_line, nothing else on stderr either."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.stderr
    if only_line:
        assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[-1]


@pytest.fixture
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_flags_win_over_environment_over_defaults(monkeypatch):
    assert app.parse_args([])["SOURCE"] == "0"
    for name, value in {"MASKDETECTOR_PORT": "7000", "MASKDETECTOR_MIRROR": "yes", "MASKDETECTOR_SOURCE": "1"}.items():
        monkeypatch.setenv(name, value)
    settings = app.parse_args(["--port", "6000", "--no-mirror", "--min-face-size", "60"])
    assert settings["PORT"] == 6000 and settings["MIRROR"] is False and settings["MIN_FACE_SIZE"] == 60
    assert settings["SOURCE"] == "1"  # from the environment
    assert settings["HOST"] == "127.0.0.1"  # default: this machine only


def test_unknown_source_is_one_line_error():
    assert_one_line_error(run_app("--source", "no-such-video.mp4"), "no-such-video.mp4", "not a camera index")


def test_unknown_source_from_environment_is_one_line_error():
    assert_one_line_error(run_app(env={"MASKDETECTOR_SOURCE": "ftp://x/y"}), "ftp://x/y")


def test_bad_flag_value_is_one_line_error():
    assert_one_line_error(run_app("--port", "many"), "--port", "valid integer")
    assert_one_line_error(run_app("--jpeg-quality", "0"), "--jpeg-quality", "greater than or equal to 1")


def test_busy_port_is_one_line_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_one_line_error(run_app("--port", str(port)), "already in use", str(port))


def test_missing_model_is_one_line_error(tmp_path, free_port):
    result = run_app("--model", str(tmp_path / "none.keras"), "--port", str(free_port))
    assert_one_line_error(result, "none.keras", "train.py", only_line=False)  # the app may log its loading first


def test_source_repeats_for_several_cameras_and_new_features_have_safe_defaults(monkeypatch):
    defaults = app.parse_args([])
    assert defaults["HISTORY"] is True and defaults["DATA_DIR"].endswith("data")
    assert defaults["ALERTS"] is False and defaults["ALERT_WEBHOOK"] == "" and defaults["ALWAYS_ON"] is False
    flags = ["--alerts", "--alert-frames", "5", "--alert-cooldown", "30", "--alert-webhook", "https://hooks.example/x"]
    settings = app.parse_args([*flags, "--no-history", "--always-on", "--data-dir", "/srv/masks"])
    assert settings["ALERTS"] is True and settings["ALERT_FRAMES"] == 5 and settings["ALERT_COOLDOWN"] == 30.0
    assert settings["ALERT_WEBHOOK"] == "https://hooks.example/x" and settings["HISTORY"] is False
    assert settings["ALWAYS_ON"] is True and settings["DATA_DIR"] == "/srv/masks"
    monkeypatch.setenv("MASKDETECTOR_SOURCE", "5")
    settings = app.parse_args(["--source", "entrance=0", "--source", "hall=1"])
    assert settings["SOURCE"] == ["entrance=0", "hall=1"]  # the flags replace the environment's single source


def test_bad_camera_and_alert_settings_are_one_line_errors(tmp_path):
    assert_one_line_error(run_app("--alert-frames", "0"), "--alert-frames")
    assert_one_line_error(run_app("--alert-cooldown", "-1"), "--alert-cooldown")
    assert_one_line_error(run_app("--alert-webhook", "ftp://hooks.example/x"), "http:// or https://")
    assert_one_line_error(run_app("--source", "door=0", "--source", "door=1"), "'door' is used twice")
    assert_one_line_error(run_app("--sources-file", str(tmp_path / "none.txt")), "cannot read sources file")


def test_bad_site_settings_are_one_line_errors():
    assert_one_line_error(run_app("--database-url", "mysql://db.lan/stats"), "sqlite:/// or postgresql://")
    assert_one_line_error(run_app("--instance", "north/door"), "--instance")
    assert_one_line_error(run_app("--mqtt-url", "http://broker.lan"), "mqtt://[user:password@]host")
    assert_one_line_error(run_app("--mqtt-url", "mqtt://"), "mqtt://[user:password@]host")
    assert_one_line_error(run_app("--mqtt-queue", "0"), "--mqtt-queue")


def test_start_up_prints_only_the_apps_own_log_lines(tmp_path, free_port, untrained_model):
    """No TensorFlow start-up chatter (oneDNN, cuInit on a CPU machine, XNNPACK) between the app's lines."""
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MASKDETECTOR_", "TF_CPP"))}
    command = [sys.executable, str(APP), "--source", str(video), "--model", str(untrained_model)]
    app = subprocess.Popen([*command, "--port", str(free_port)], stderr=subprocess.PIPE, text=True, env=environ)
    watchdog = threading.Timer(300, app.kill)  # ends the read loop below if the app never says it is serving
    watchdog.start()
    lines = []
    try:
        for line in app.stderr:
            lines.append(line.rstrip("\n"))
            if "serving" in line:
                break
    finally:
        watchdog.cancel()
        app.terminate()
        lines += [line.rstrip("\n") for line in app.communicate(timeout=60)[1].splitlines()]
    assert any("serving" in line for line in lines), lines
    log_line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) maskdetector[.\w]*: ")
    assert [line for line in lines if not log_line.match(line)] == [], "\n".join(lines)
