"""The Flask app: an application factory plus one blueprint with the page, the MJPEG stream and JSON endpoints.

`create_app` loads the model at start-up (fail fast) and wires source -> detector -> classifier into one
StreamHub; POST /api/detect (bodies parsed in uploads.py) shares that analyzer without touching the stream.
Tests pass SOURCE_FACTORY (a callable returning a FrameSource) and a small model in `config`.
"""

import os
import time
from collections.abc import Generator, Mapping
from contextlib import closing
from dataclasses import dataclass
from functools import partial

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from maskdetector.capture import VideoSource, describe_source, parse_source
from maskdetector.config import CLASS_DISPLAY, PROJECT_ROOT
from maskdetector.pipeline import FrameAnalyzer
from maskdetector.service import build_analyzer, frame_record
from maskdetector.settings import resolve
from maskdetector.streaming import StreamHub
from maskdetector.uploads import decode_image, upload_bytes

BOUNDARY = "frame"
EXTENSION_KEY = "maskdetector"

bp = Blueprint("maskdetector", __name__)


@dataclass(frozen=True)
class WebState:
    """What the routes need, kept on app.extensions[EXTENSION_KEY] rather than in module globals."""

    hub: StreamHub
    class_names: list[str]
    analyzer: FrameAnalyzer


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """Build the app from `config` over MASKDETECTOR_* environment variables over defaults.

    Raises UserError/ModelError (one-line messages) for a bad source, detector setting or model.
    Call `get_state(app).hub.close()` when done to stop the capture thread.
    """
    settings = resolve(config, os.environ)
    source_factory = settings.get("SOURCE_FACTORY")
    if source_factory is None:
        spec = parse_source(settings["SOURCE"])
        source_name = describe_source(spec)
        source_factory = partial(VideoSource, spec, mirror=bool(settings["MIRROR"]), loop=bool(settings["LOOP"]))
    else:
        source_name = str(settings["SOURCE"])
    analyzer = build_analyzer(settings)
    hub = StreamHub(
        source_factory,
        analyzer,
        source_name,
        jpeg_quality=int(settings["JPEG_QUALITY"]),
        idle_timeout=float(settings["IDLE_TIMEOUT"]),
        retry_initial=float(settings["RETRY_INITIAL"]),
        retry_max=float(settings["RETRY_MAX"]),
    )
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"), static_folder=str(PROJECT_ROOT / "static"))
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = int(float(settings["MAX_UPLOAD_MB"]) * 1024 * 1024)
    app.extensions[EXTENSION_KEY] = WebState(hub, analyzer.classifier.class_names, analyzer)
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


@bp.get("/")
def index() -> str:
    state = get_state(current_app)
    hub = state.hub
    # The browser-camera overlay draws boxes in the same names and colours as the server's annotation.
    classes = {label: {"name": name, "colour": _css_colour(bgr)} for label, (name, bgr) in CLASS_DISPLAY.items()}
    return render_template(
        "index.html", source=hub.source_name, stats=hub.stats(), classes=classes, model_classes=state.class_names
    )


@bp.get("/video_feed")
def video_feed() -> Response:
    return Response(
        multipart_stream(get_state(current_app).hub.frames()),
        mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-cache, no-store, must-revalidate", "X-Accel-Buffering": "no"},
    )


@bp.get("/api/stats")
def api_stats() -> Response:
    return jsonify(get_state(current_app).hub.stats())


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
    """Programs calling /api/... get {"error": "..."} with the status (413 for a too-large body included);
    Flask has already logged the traceback of an unexpected error by the time it arrives here as a 500."""
    if not request.path.startswith("/api/"):
        return exc
    response = jsonify(error=exc.description)
    response.status_code = exc.code or 500
    return response
