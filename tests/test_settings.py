"""The settings model is the one definition: --help, docs/configuration.md, environment variables and defaults."""

import subprocess
import sys
from pathlib import Path

import pytest

import train
from maskdetector.constants import TRAINING_FOLDERS, TRAINING_SCENES
from maskdetector.errors import UserError
from maskdetector.settings import FIELDS, env_var, flag, resolve, shown_default
from maskdetector.settings_docs import markdown, training_markdown
from maskdetector.training import settings as training_settings
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


def test_configuration_page_is_generated_from_the_models():
    page = (ROOT / "docs" / "configuration.md").read_text()
    expected = markdown() + training_markdown(training_settings.FIELDS)
    assert page == expected, "docs/configuration.md is stale: run `make docs`"


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


def test_train_help_lists_every_training_setting_with_its_default():
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())
    for name in training_settings.FIELDS:
        shown = shown_default(name, training_settings.FIELDS)
        assert f"{flag(name)} " in help_text and f"(default: {shown})" in help_text, name


def test_training_config_takes_its_defaults_from_the_training_settings():
    from dataclasses import MISSING, fields

    from maskdetector.training.trainer import TrainingConfig

    config_defaults = {f.name: f.default for f in fields(TrainingConfig) if f.default is not MISSING}
    settings_defaults = train.parse_args([]).training_config()
    shared = set(config_defaults) & set(settings_defaults) - {"class_names", "left_out"}
    assert {"epochs", "learning_rate", "holdout_percent", "ema_momentum", "crop_faces"} <= shared
    for name in shared:
        assert config_defaults[name] == settings_defaults[name], name


def test_train_with_no_sources_trains_the_shipped_models_four():
    config = train.parse_args([]).training_config()
    assert (config["data_dirs"], config["scenes_dirs"]) == (list(TRAINING_FOLDERS), list(TRAINING_SCENES))
    left_out = train.parse_args(["--leave-out", TRAINING_SCENES[1].name]).training_config()
    assert left_out["left_out"] == TRAINING_SCENES[1] and left_out["scenes_dirs"] == [TRAINING_SCENES[0]]
    assert left_out["data_dirs"] == list(TRAINING_FOLDERS)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "--epochs: Input should be greater than or equal to 1"),
        (["--ema-momentum", "1"], "--ema-momentum: Input should be less than 1"),
        (["--batch-size", "many"], "--batch-size: Input should be a valid integer"),
        (["--crop-faces", "eyes"], "argument --crop-faces: invalid choice"),
        (["--all-scene-images"], "--all-scene-images goes with --evaluate-only"),
        (["--evaluate-only", "--leave-out", "ilc2021"], "--leave-out trains"),
    ],
)
def test_bad_training_flags_are_usage_errors_naming_the_flag(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(flags)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
