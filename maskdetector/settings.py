"""Every setting of app.py, detect.py, evaluate.py and create_app(), defined once in `Settings`.

Each field holds its type, default, range and help; its environment variable is MASKDETECTOR_<NAME> and its flag
--<name>. The command lines build their flags from the fields (cli.py), create_app() validates its config with the
same model, and docs/configuration.md is generated from it (settings_docs.py), so none can drift.
Precedence: explicit config (or flags) > environment > default.
"""

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import limits
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from maskdetector.constants import APP_DATA_DIR, CLASSIFIER_BACKENDS, DEFAULT_MODEL_PATH, PROJECT_ROOT
from maskdetector.errors import UserError

ENV_PREFIX = "MASKDETECTOR_"
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
# The URL settings: the schemes each takes (with a host), and what to say of any other value.
URL_FORMS = {
    "alert_webhook": (("http", "https"), "must be an http:// or https:// URL"),
    "mqtt_url": (("mqtt", "mqtts"), "must look like mqtt://[user:password@]host[:port][/prefix] (mqtts:// for TLS)"),
}
HOST_NAME = re.compile(r"\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


def host_names(text: str) -> list[str]:
    """--trusted-hosts as a list: comma-separated, blanks ignored."""
    return [name.strip() for name in text.split(",") if name.strip()]


class Settings(BaseSettings):
    """The settings table. Field order is the order of --help and docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    source: Annotated[str | list[str], NoDecode] = Field(
        "0",
        description="camera index, video file, or rtsp/http(s) stream URL, optionally named: NAME=SOURCE; "
        "repeat the flag for several cameras",
    )
    sources_file: str = Field("", description="file of `name source` lines, one camera each; replaces --source")
    host: str = Field("127.0.0.1", description="address to listen on (127.0.0.1: this machine only)")
    port: int = Field(5000, ge=1, le=65535, description="port to listen on")
    model: str = Field(str(DEFAULT_MODEL_PATH), description="trained model file")
    backend: Literal[CLASSIFIER_BACKENDS] = Field(
        CLASSIFIER_BACKENDS[0],
        description="how the classifier runs: tflite converts the model in memory to int8 (float32 for the faces it "
        "is unsure of), tflite-float to float32, keras calls it as it is",
    )
    detector: str = Field(
        "blazeface",
        description="face detector: haar and haar-multi are OpenCV cascades; mtcnn, blazeface and blazeface-fast "
        "are neural networks; blazeface+mtcnn adds MTCNN's faces to BlazeFace's (most found, slowest)",
    )
    cascade: str = Field("", description="Haar cascade XML (empty: haarcascades/ in the project, else OpenCV's own)")
    scale_factor: float = Field(1.1, gt=1.0, description="haar/haar-multi: image pyramid step")
    min_neighbors: int = Field(5, ge=0, description="haar/haar-multi: detections needed to accept a face")
    min_face_size: int = Field(24, ge=1, description="smallest face to detect, in pixels")
    min_confidence: float = Field(
        0.0, ge=0.0, lt=1.0, description="mtcnn/blazeface: lowest face score to accept; 0 = the detector's own default"
    )
    redetect_every: int = Field(
        3,
        ge=1,
        description="video and live streams: run the detector on every Nth frame and follow the faces in between; "
        "1 = on every frame",
    )
    label_window: int = Field(
        5,
        ge=1,
        description="video and live streams: label each tracked face by its class probabilities averaged over its last "
        "N frames, so one bad frame does not flip it; 1 = each frame on its own",
    )
    motion_gating: bool = Field(
        True, description="skip analyzing frames in which nothing moved since the last analyzed one"
    )
    analysis_workers: int = Field(
        0, ge=0, description="threads analyzing all cameras' frames; 0 = one per core, at most one per source"
    )
    mirror: bool = Field(False, description="flip frames horizontally, for webcams")
    loop: bool = Field(False, description="replay a video file when it ends")
    jpeg_quality: int = Field(80, ge=1, le=100, description="stream JPEG quality")
    idle_timeout: float = Field(10.0, ge=0, description="seconds without viewers before the camera is released")
    retry_initial: float = Field(0.5, gt=0, description="seconds before the first retry of a failed source")
    retry_max: float = Field(8.0, gt=0, description="longest wait between retries (the wait doubles up to this)")
    max_upload_mb: float = Field(10.0, gt=0, description="largest POST /api/detect body, in MB")
    max_image_pixels: int = Field(40_000_000, ge=1, description="largest image POST /api/detect decodes, in pixels")
    max_image_side: int = Field(
        12_000, ge=1, description="longest side of an image POST /api/detect decodes, in pixels"
    )
    max_image_aspect: float = Field(
        20.0, ge=1, description="POST /api/detect refuses images whose one side is more than this many times the other"
    )
    detect_workers: int = Field(
        1, ge=1, description="uploads POST /api/detect analyzes at once, at a lower priority than the live streams"
    )
    detect_queue: int = Field(
        4, ge=0, description="uploads waiting for a detect worker; more are answered 503 with Retry-After"
    )
    max_viewers: int = Field(
        100, ge=1, description="open streams (/video_feed) the app serves at once, all sources together; more get 503"
    )
    max_viewers_per_source: int = Field(50, ge=1, description="open streams of one source at once; more get 503")
    socket_timeout: float = Field(
        10.0,
        gt=0,
        description="seconds a connection may stay silent (an idle keep-alive, headers sent halfway, a viewer that "
        "stopped reading) before app.py's server closes it",
    )
    data_dir: str = Field(str(APP_DATA_DIR), description="folder for the statistics database and the alerts log")
    history: bool = Field(True, description="keep per-minute counts of people (counts only, no images)")
    database_url: str = Field(
        "",
        description="where the per-minute counts go: sqlite:///FILE, or postgresql://user[:password]@host[:port]/db "
        "shared by the instances of a site (empty: history.sqlite3 in --data-dir)",
    )
    instance: str = Field(
        "",
        pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="this app's name in a shared database and on MQTT: 1-64 letters, digits, '-', '_' or '.' "
        "(empty: the host name)",
    )
    mqtt_url: str = Field(
        "",
        description="publish alerts, per-minute counts and online state to this MQTT broker: "
        "mqtt[s]://[user:password@]host[:port][/topic-prefix]",
    )
    mqtt_queue: int = Field(1000, ge=1, description="messages kept while the MQTT broker is away; more are dropped")
    always_on: bool = Field(
        False, description="keep every source open and analyzed with nobody watching, for statistics and alerts"
    )
    alerts: bool = Field(False, description="alert when a face without a mask stays in view")
    alert_frames: int = Field(10, ge=1, description="frames in a row without a mask that raise an alert")
    alert_cooldown: float = Field(60.0, ge=0, description="seconds after an alert before a source alerts again")
    alert_webhook: str = Field("", description="POST each alert as JSON to this http(s) URL (implies --alerts)")
    retention_days: float = Field(
        14.0,
        gt=0,
        description="days alert snapshots, the alerts log and the per-minute counts are kept; older ones are deleted "
        "(at start and every hour)",
    )
    trusted_hosts: str = Field(
        "",
        description="host names the app answers to besides localhost, 127.0.0.1 and --host, comma-separated "
        "(.example.com: its subdomains too; IPv4 addresses, not IPv6); requests for other names get 400",
    )
    proxies: int = Field(
        0,
        ge=0,
        le=5,
        description="reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host headers to trust",
    )
    secure_cookies: bool = Field(False, description="send the login cookie over HTTPS only (behind a TLS proxy)")
    session_hours: float = Field(12.0, gt=0, description="hours a login lasts")
    login_limit: str = Field(
        "5 per minute;30 per hour",
        description="failed logins allowed per client address (Flask-Limiter notation, ';' between limits)",
    )

    @field_validator(*URL_FORMS)
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        schemes, problem = URL_FORMS[str(info.field_name)]
        parts = urlsplit(value)
        if value and not (parts.scheme in schemes and parts.hostname):
            raise ValueError(problem)
        return value

    @field_validator("trusted_hosts")
    @classmethod
    def _host_names(cls, value: str) -> str:
        for name in host_names(value):
            if not HOST_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a host name (name, .domain or IPv4 address; no port)")
        return value

    @field_validator("login_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            limits.parse_many(value)
        except ValueError:
            raise ValueError("must look like '5 per minute' or '5/minute;30/hour'") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if value and urlsplit(value).scheme.split("+")[0] not in DATABASE_SCHEMES:
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @model_validator(mode="after")
    def _retry_order(self) -> "Settings":
        if self.retry_initial > self.retry_max:
            raise ValueError("--retry-initial must not be more than --retry-max")
        return self


# The settings detect.py and evaluate.py take: the ones that choose and tune the analyzer.
ANALYZER_SETTINGS = (
    "model",
    "backend",
    "detector",
    "cascade",
    "scale_factor",
    "min_neighbors",
    "min_face_size",
    "redetect_every",
    "min_confidence",
    "label_window",
)
FIELDS = Settings.model_fields
DEFAULTS: dict[str, object] = {name.upper(): field.default for name, field in FIELDS.items()}


def default(name: str) -> Any:
    """A setting's default, for code that takes it as a parameter (the detectors): one default, the app's."""
    return FIELDS[name].default


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_var(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as one line naming the setting's flag and environment variable."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    name = str(error["loc"][0])
    return f"{flag(name)} / {env_var(name)}: {message} (got {error['input']!r})"


def resolve(config: Mapping[str, object] | None = None) -> dict[str, object]:
    """Defaults, overridden by MASKDETECTOR_* environment variables, overridden by `config` (UPPER_CASE keys as in
    Flask's config); validated. Keys that are not settings (e.g. SOURCE_FACTORY, TESTING) pass through unchanged.
    Raises UserError with one line per bad value."""
    config = dict(config or {})
    given = {key.lower(): config.pop(key) for key in list(config) if key.lower() in FIELDS}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise UserError("; ".join(_describe(e) for e in exc.errors())) from None
    return {**config, **{name.upper(): value for name, value in settings.model_dump().items()}}


def shown_default(name: str, fields: Mapping[str, FieldInfo] = FIELDS) -> str:
    """A default as --help and the docs show it: yes/no for switches, paths inside the project relative to it.
    `fields` is this model's (the app's) or another's (train.py's)."""
    value = fields[name].default
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = "" if value is None or value == [] else str(value)
    return text.removeprefix(str(PROJECT_ROOT) + "/") if text else "(empty)"
