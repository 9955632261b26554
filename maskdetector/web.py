"""The Flask app: an application factory plus one blueprint with the page, the MJPEG stream and JSON endpoints.

`create_app` loads the model at start-up (fail fast) and wires each source -> detector -> classifier into its
own StreamHub, whose on_analysis hook (monitor.py) feeds the statistics and alerts; POST /api/detect (bodies
parsed in uploads.py) shares the analyzer without touching the streams. Tests pass SOURCE_FACTORY (a callable
returning a FrameSource, or {name: callable} for several sources) and a small model in `config`.
"""

import os
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request, send_file, url_for
from werkzeug.exceptions import HTTPException

from maskdetector.alerts import RECENT, Alerts, Webhook
from maskdetector.capture import FrameSource, VideoSource
from maskdetector.config import CLASS_DISPLAY, PROJECT_ROOT
from maskdetector.history import MAX_MINUTES, History, summarize
from maskdetector.monitor import SourceMonitor, keep_capturing
from maskdetector.pipeline import FrameAnalyzer
from maskdetector.service import build_analyzer, frame_record
from maskdetector.settings import resolve
from maskdetector.sources import slug, sources_from_settings
from maskdetector.streaming import StreamHub
from maskdetector.uploads import decode_image, upload_bytes

BOUNDARY = "frame"
EXTENSION_KEY = "maskdetector"
DEFAULT_HISTORY_MINUTES = 60

bp = Blueprint("maskdetector", __name__)


@dataclass(frozen=True)
class Camera:
    """One source: its shared stream and the hook that counts its people and raises its alerts."""

    name: str  # URL-safe: /video_feed/<name>
    hub: StreamHub
    monitor: SourceMonitor

    def stats(self) -> dict[str, object]:
        return {**self.hub.stats(), "name": self.name, "people": summarize(self.monitor.people())}


@dataclass(frozen=True)
class WebState:
    """What the routes need, kept on app.extensions[EXTENSION_KEY] rather than in module globals."""

    cameras: dict[str, Camera]  # in --source order; the first also serves /video_feed and /api/stats' top level
    class_names: list[str]
    analyzer: FrameAnalyzer
    history: History | None
    alerts: Alerts | None

    @property
    def hub(self) -> StreamHub:
        """The first source's stream (the single-source app's only one)."""
        return next(iter(self.cameras.values())).hub

    def close(self) -> None:
        """Stop the capture threads, then let the history and alert workers finish what is queued."""
        for camera in self.cameras.values():
            camera.hub.close()
        for store in (self.history, self.alerts):
            if store is not None:
                store.close()


def _source_factories(settings: Mapping[str, object]) -> list[tuple[str, str, Callable[[], FrameSource]]]:
    """(name, label shown on the page, factory) per source, from SOURCE/SOURCES_FILE or an injected SOURCE_FACTORY."""
    injected = settings.get("SOURCE_FACTORY")
    if injected is None:
        options = {"mirror": bool(settings["MIRROR"]), "loop": bool(settings["LOOP"])}
        return [(s.name, s.label, partial(VideoSource, s.spec, **options)) for s in sources_from_settings(settings)]
    if callable(injected):
        return [(slug(str(settings["SOURCE"])), str(settings["SOURCE"]), injected)]
    return [(name, name, factory) for name, factory in injected.items()]


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """Build the app from `config` over MASKDETECTOR_* environment variables over defaults.

    Raises UserError/ModelError (one-line messages) for a bad source, detector setting, model or data folder.
    Call `get_state(app).close()` when done to stop the capture threads and background writers.
    """
    settings = resolve(config, os.environ)
    sources = _source_factories(settings)
    analyzer = build_analyzer(settings)
    data_dir = Path(str(settings["DATA_DIR"]))
    history = History(data_dir) if settings["HISTORY"] else None
    alerts = None
    if settings["ALERTS"] or settings["ALERT_WEBHOOK"]:
        webhook = Webhook(str(settings["ALERT_WEBHOOK"])) if settings["ALERT_WEBHOOK"] else None
        alerts = Alerts(data_dir, int(settings["ALERT_FRAMES"]), float(settings["ALERT_COOLDOWN"]), webhook)
    cameras = {}
    for name, label, factory in sources:
        monitor = SourceMonitor(name, history, alerts)
        hub = StreamHub(
            factory,
            analyzer.for_video(),
            label,
            jpeg_quality=int(settings["JPEG_QUALITY"]),
            idle_timeout=float(settings["IDLE_TIMEOUT"]),
            retry_initial=float(settings["RETRY_INITIAL"]),
            retry_max=float(settings["RETRY_MAX"]),
            on_analysis=monitor,
        )
        cameras[name] = Camera(name, hub, monitor)
        if settings["ALWAYS_ON"]:
            keep_capturing(hub)
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"), static_folder=str(PROJECT_ROOT / "static"))
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = int(float(settings["MAX_UPLOAD_MB"]) * 1024 * 1024)
    app.extensions[EXTENSION_KEY] = WebState(cameras, analyzer.classifier.class_names, analyzer, history, alerts)
    app.register_blueprint(bp)
    return app


def get_state(app: Flask) -> WebState:
    return app.extensions[EXTENSION_KEY]


def multipart_stream(jpegs: Generator[bytes, None, None]) -> Generator[bytes, None, None]:
    """Wrap JPEGs as multipart/x-mixed-replace parts; closing this closes `jpegs` (the viewer leaves)."""
    with closing(jpegs):
        for jpeg in jpegs:
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            yield head.encode("ascii") + jpeg + b"\r\n"


def _css_colour(bgr: tuple[int, int, int]) -> str:
    blue, green, red = bgr
    return f"#{red:02x}{green:02x}{blue:02x}"


def _camera(name: str) -> Camera:
    camera = get_state(current_app).cameras.get(name)
    if camera is None:
        abort(404, description=f"no source named {name!r}: see /api/sources")
    return camera


def _stream_url(index: int, name: str) -> str:
    """The first source keeps the single-source app's /video_feed, so existing pages and links still work."""
    return url_for("maskdetector.video_feed") if index == 0 else url_for("maskdetector.video_feed_source", name=name)


def _int_arg(name: str, default: int, highest: int) -> int:
    """Query parameter `name` as a whole number from 1 to `highest`; 400 otherwise."""
    text = request.args.get(name, str(default))
    if not text.isdigit() or not 1 <= int(text) <= highest:
        abort(400, description=f"{name} must be a whole number from 1 to {highest}")
    return int(text)


def _all_stats(state: WebState) -> dict[str, object]:
    """The first source's stats at the top level (as before several cameras), then per source, total and alerts."""
    per_source = {name: camera.stats() for name, camera in state.cameras.items()}
    counted = ("faces", *CLASS_DISPLAY, "viewers", "frames")
    total = {key: sum(int(stats[key]) for stats in per_source.values()) for key in counted}
    people = sum((camera.monitor.people() for camera in state.cameras.values()), Counter())
    latest = state.alerts.recent(1) if state.alerts else []
    return {
        **next(iter(per_source.values())),
        "sources": per_source,
        "total": {
            **total,
            "cameras": len(per_source),
            "cameras_ok": sum(stats["camera"] == "ok" for stats in per_source.values()),
            "people": summarize(people),
        },
        "alerts": {"enabled": state.alerts is not None, "latest": latest[0] if latest else None},
    }


@bp.get("/")
def index() -> str:
    state = get_state(current_app)
    # The browser-camera overlay draws boxes in the same names and colours as the server's annotation.
    classes = {label: {"name": name, "colour": _css_colour(bgr)} for label, (name, bgr) in CLASS_DISPLAY.items()}
    cameras = [
        {**camera.stats(), "stream": _stream_url(i, camera.name)} for i, camera in enumerate(state.cameras.values())
    ]
    return render_template(
        "index.html",
        source=state.hub.source_name,
        cameras=cameras,
        stats=_all_stats(state),
        classes=classes,
        model_classes=state.class_names,
        history=state.history is not None,
        alerts=state.alerts is not None,
        history_minutes=DEFAULT_HISTORY_MINUTES,
    )


def _mjpeg(hub: StreamHub) -> Response:
    return Response(
        multipart_stream(hub.frames()),
        mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-cache, no-store, must-revalidate", "X-Accel-Buffering": "no"},
    )


@bp.get("/video_feed")
def video_feed() -> Response:
    return _mjpeg(get_state(current_app).hub)


@bp.get("/video_feed/<name>")
def video_feed_source(name: str) -> Response:
    return _mjpeg(_camera(name).hub)


@bp.get("/api/sources")
def api_sources() -> Response:
    cameras = get_state(current_app).cameras.values()
    return jsonify(
        sources=[
            {"name": camera.name, "label": camera.hub.source_name, "stream": _stream_url(i, camera.name)}
            for i, camera in enumerate(cameras)
        ]
    )


@bp.get("/api/stats")
def api_stats() -> Response:
    return jsonify(_all_stats(get_state(current_app)))


@bp.get("/api/history")
def api_history() -> Response:
    """People seen per minute over the last `minutes` (default 60), per source and in total."""
    minutes = _int_arg("minutes", DEFAULT_HISTORY_MINUTES, MAX_MINUTES)
    history = get_state(current_app).history
    if history is None:
        abort(404, description="statistics history is off (--no-history)")
    return jsonify(history.report(minutes, time.time()))


@bp.get("/api/alerts")
def api_alerts() -> Response:
    """The latest `limit` alerts (default 20), newest first."""
    limit = _int_arg("limit", 20, RECENT)
    alerts = get_state(current_app).alerts
    return jsonify(enabled=alerts is not None, alerts=alerts.recent(limit) if alerts else [])


@bp.get("/api/alerts/<int:alert_id>/snapshot.jpg")
def api_alert_snapshot(alert_id: int) -> Response:
    alerts = get_state(current_app).alerts
    path = alerts.snapshot_path(alert_id) if alerts else None
    if path is None or not path.is_file():
        abort(404, description=f"no snapshot for alert {alert_id}")
    return send_file(path, mimetype="image/jpeg", max_age=3600)


@bp.get("/healthz")
def healthz() -> Response:
    """Always 200 while the app runs; the model is loaded at start-up, the camera may be down."""
    state = get_state(current_app)
    stats = state.hub.stats()
    return jsonify(
        status="ok",
        model_ready=True,
        classes=state.class_names,
        camera_ready=stats["camera"] == "ok",
        camera=stats["camera"],
        camera_reason=stats["camera_reason"],
    )


@bp.post("/api/detect")
def api_detect() -> Response:
    """Faces in one uploaded image. Uses the shared analyzer directly: never opens the camera or the stream."""
    started = time.perf_counter()
    image = decode_image(upload_bytes(request), int(current_app.config["MAX_IMAGE_PIXELS"]))
    faces = get_state(current_app).analyzer.analyze(image)
    return jsonify({**frame_record(image, faces), "ms": round((time.perf_counter() - started) * 1000, 1)})


@bp.app_errorhandler(HTTPException)
def api_http_error(exc: HTTPException) -> Response | HTTPException:
    """Programs calling /api/... or /video_feed/<name> get {"error": "..."} with the status (413 for a too-large
    body included); Flask has already logged the traceback of an unexpected error by the time it arrives here as a
    500."""
    if not request.path.startswith(("/api/", "/video_feed/")):
        return exc
    response = jsonify(error=exc.description)
    response.status_code = exc.code or 500
    return response
