"""The settings model is the one definition: --help, docs/configuration.md, environment variables and defaults."""

import subprocess
import sys
from pathlib import Path

import pytest

from maskdetector.errors import UserError
from maskdetector.settings import FIELDS, env_var, flag, resolve
from maskdetector.settings_docs import markdown
from maskdetector.vision.detectors import DETECTORS, create_detector
from maskdetector.vision.detectors.combined import CombinedDetector

ROOT = Path(__file__).resolve().parents[1]

# A valid value other than the default, for the settings whose type alone does not give one.
OTHER_VALUES = {
    "backend": "keras",
    "alert_webhook": "https://hooks.example/x",
    "min_confidence": 0.5,
    "database_url": "sqlite:///elsewhere.sqlite3",
    "mqtt_url": "mqtt://broker.example/masks",
    "login_limit": "3 per minute",
}


def other_value(name: str) -> object:
    if name in OTHER_VALUES:
        return OTHER_VALUES[name]
    value = FIELDS[name].default
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return "elsewhere"


def test_configuration_page_is_generated_from_the_model():
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == markdown(), "docs/configuration.md is stale: run `make docs`"


def test_app_help_lists_every_setting_with_its_environment_variable():
    command = [sys.executable, str(ROOT / "app.py"), "--help"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())  # argparse wraps long lines
    for name in FIELDS:
        assert flag(name) in help_text and env_var(name) in help_text, name


@pytest.mark.parametrize("name", list(FIELDS))
def test_every_environment_variable_sets_its_setting(name, monkeypatch):
    value = other_value(name)
    monkeypatch.setenv(env_var(name), str(value).lower() if isinstance(value, bool) else str(value))
    assert resolve({})[name.upper()] == value
    assert resolve({name.upper(): FIELDS[name].default})[name.upper()] == FIELDS[name].default  # config wins


def test_bad_values_name_the_flag_and_the_variable():
    with pytest.raises(UserError, match="--port / MASKDETECTOR_PORT: .*less than or equal to 65535"):
        resolve({"PORT": 70000})
    with pytest.raises(UserError, match="--retry-initial must not be more than --retry-max"):
        resolve({"RETRY_INITIAL": 9, "RETRY_MAX": 8})


def test_keys_that_are_not_settings_pass_through():
    factory = object()
    settings = resolve({"SOURCE_FACTORY": factory, "TESTING": True})
    assert settings["SOURCE_FACTORY"] is factory and settings["TESTING"] is True


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detectors_default_to_the_apps_min_face_size(name):
    detector = create_detector(name)
    parts = [detector.first, detector.second] if isinstance(detector, CombinedDetector) else [detector]
    assert {part.min_face_size for part in parts} == {FIELDS["min_face_size"].default}
