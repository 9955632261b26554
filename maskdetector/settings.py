"""The web app's settings in one table: defaults, MASKDETECTOR_* environment variables, validation.

app.py builds its command line from the same table, so a flag, its environment variable and the key a
test passes to create_app() cannot drift apart. Precedence: explicit config (or CLI) > environment > default.
"""

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from maskdetector.constants import APP_DATA_DIR, CLASSIFIER_BACKENDS, DEFAULT_MODEL_PATH
from maskdetector.errors import UserError

ENV_PREFIX = "MASKDETECTOR_"

DEFAULTS: dict[str, object] = {
    "SOURCE": "0",  # a list when --source is given several times (several cameras)
    "SOURCES_FILE": "",  # `name source` lines; replaces SOURCE when set
    "HOST": "127.0.0.1",
    "PORT": 5000,
    "MODEL": str(DEFAULT_MODEL_PATH),
    "BACKEND": CLASSIFIER_BACKENDS[0],  # "tflite": the model converted in memory, same labels, faster than "keras"
    "DETECTOR": "blazeface",  # the most accurate on scenes-dev (README: Face detectors); "haar" is the classic path
    "CASCADE": "",
    "SCALE_FACTOR": 1.1,
    "MIN_NEIGHBORS": 5,
    "MIN_FACE_SIZE": 24,  # faces of 24-40 px are common in photos; 40 cost Haar and BlazeFace recall
    "MIN_CONFIDENCE": 0.0,  # 0: the detector's own (mtcnn 0.9, blazeface 0.3, blazeface-fast 0.5); Haar has none
    "REDETECT_EVERY": 3,  # video: faces followed between detector runs (face_following.py); 1 = detect on every frame
    "LABEL_WINDOW": 5,  # video: a tracked face's label is its mean class probabilities over N frames (tracking.py)
    "MOTION_GATING": True,  # live: frames where nothing moved keep the last analysis (motion_gate.py)
    "ANALYSIS_WORKERS": 0,  # live: threads of the one analysis pool for all cameras; 0 = one per core (scheduler.py)
    "MIRROR": False,
    "LOOP": False,
    "JPEG_QUALITY": 80,
    "IDLE_TIMEOUT": 10.0,
    "RETRY_INITIAL": 0.5,
    "RETRY_MAX": 8.0,
    "MAX_UPLOAD_MB": 10.0,
    "MAX_IMAGE_PIXELS": 40_000_000,
    "DATA_DIR": str(APP_DATA_DIR),
    "HISTORY": True,  # counts only (no images), in the git-ignored data folder: the chart works out of the box
    "DATABASE_URL": "",  # "": sqlite:///<DATA_DIR>/history.sqlite3; postgresql://user@host/db for a whole site
    "INSTANCE": "",  # "": this machine's host name; names this app's cameras in a shared database and on MQTT
    "MQTT_URL": "",  # mqtt://user:password@host:1883/prefix: alerts, counts and online state to a broker
    "MQTT_QUEUE": 1000,  # messages kept while the broker is away; more are dropped, counted and logged
    "ALWAYS_ON": False,  # keeping cameras open with nobody watching would surprise a webcam user
    "ALERTS": False,
    "ALERT_FRAMES": 10,
    "ALERT_COOLDOWN": 60.0,
    "ALERT_WEBHOOK": "",  # implies ALERTS
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(key: str, text: str) -> object:
    kind = type(DEFAULTS[key])
    name = ENV_PREFIX + key
    if kind is bool:
        if text.strip().lower() in _TRUE | _FALSE:
            return text.strip().lower() in _TRUE
        raise UserError(f"{name}={text!r} is not a yes/no value (use 1/0, true/false)")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise UserError(f"{name}={text!r} is not a {'whole ' if kind is int else ''}number") from None
    return text


def from_env(environ: Mapping[str, str]) -> dict[str, object]:
    """Settings given as MASKDETECTOR_<KEY> environment variables, converted to the default's type."""
    return {key: _convert(key, environ[ENV_PREFIX + key]) for key in DEFAULTS if ENV_PREFIX + key in environ}


def _is_url(text: str, schemes: tuple[str, ...]) -> bool:
    parts = urlsplit(text)
    return parts.scheme in schemes and bool(parts.hostname)


DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
INSTANCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _url_scheme(text: str) -> str:
    return urlsplit(text).scheme.split("+")[0]


def validate(settings: Mapping[str, object]) -> None:
    """UserError for values that would only fail later, deep inside OpenCV or the server."""
    checks = [
        (1 <= settings["PORT"] <= 65535, "port must be between 1 and 65535"),
        (settings["SCALE_FACTOR"] > 1.0, "scale factor must be greater than 1.0"),
        (settings["MIN_NEIGHBORS"] >= 0, "min neighbors must be 0 or more"),
        (settings["MIN_FACE_SIZE"] >= 1, "min face size must be at least 1 pixel"),
        (0.0 <= settings["MIN_CONFIDENCE"] < 1.0, "min confidence must be from 0 up to (not including) 1"),
        (settings["REDETECT_EVERY"] >= 1, "redetect every must be at least 1 (1 = detect on every frame)"),
        (settings["LABEL_WINDOW"] >= 1, "label window must be at least 1 (1 = each frame's own label)"),
        (settings["ANALYSIS_WORKERS"] >= 0, "analysis workers must be 0 (one per core) or more"),
        (settings["BACKEND"] in CLASSIFIER_BACKENDS, f"backend must be one of {', '.join(CLASSIFIER_BACKENDS)}"),
        (1 <= settings["JPEG_QUALITY"] <= 100, "JPEG quality must be between 1 and 100"),
        (settings["IDLE_TIMEOUT"] >= 0, "idle timeout must be 0 or more seconds"),
        (0 < settings["RETRY_INITIAL"] <= settings["RETRY_MAX"], "retry delays must be positive, initial <= max"),
        (settings["MAX_UPLOAD_MB"] > 0, "max upload size must be more than 0 MB"),
        (settings["MAX_IMAGE_PIXELS"] >= 1, "max image pixels must be at least 1"),
        (settings["ALERT_FRAMES"] >= 1, "alert frames must be at least 1"),
        (settings["ALERT_COOLDOWN"] >= 0, "alert cool-down must be 0 or more seconds"),
        (
            not settings["ALERT_WEBHOOK"] or _is_url(str(settings["ALERT_WEBHOOK"]), ("http", "https")),
            "alert webhook must be an http:// or https:// URL",
        ),
        (
            not settings["INSTANCE"] or INSTANCE_PATTERN.fullmatch(str(settings["INSTANCE"])),
            "instance name must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit",
        ),
        (
            not settings["DATABASE_URL"] or _url_scheme(str(settings["DATABASE_URL"])) in DATABASE_SCHEMES,
            "database URL must start with sqlite:/// or postgresql://",
        ),
        (
            not settings["MQTT_URL"] or _is_url(str(settings["MQTT_URL"]), ("mqtt", "mqtts")),
            "MQTT URL must look like mqtt://[user:password@]host[:port][/prefix] (mqtts:// for TLS)",
        ),
        (settings["MQTT_QUEUE"] >= 1, "MQTT queue must hold at least 1 message"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def resolve(config: Mapping[str, object] | None, environ: Mapping[str, str]) -> dict[str, object]:
    """Defaults, overridden by the environment, overridden by `config`; validated."""
    settings = {**DEFAULTS, **from_env(environ), **(config or {})}
    validate(settings)
    return settings
