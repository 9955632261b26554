"""The Flask app: an application factory plus one blueprint with the page, the MJPEG stream and JSON endpoints.

`create_app` loads the model at start-up (fail fast) and wires source -> detector -> classifier into one
StreamHub. Tests pass SOURCE_FACTORY (a callable returning a FrameSource) and a small model in `config`.
"""

import os
from collections.abc import Generator, Mapping
from contextlib import closing
from dataclasses import dataclass
from functools import partial

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template

from maskdetector.capture import VideoSource, describe_source, parse_source
from maskdetector.classification import MaskClassifier
from maskdetector.config import PROJECT_ROOT
from maskdetector.detection import create_detector
from maskdetector.pipeline import FrameAnalyzer
from maskdetector.settings import resolve
from maskdetector.streaming import StreamHub

BOUNDARY = "frame"
EXTENSION_KEY = "maskdetector"

bp = Blueprint("maskdetector", __name__)


@dataclass(frozen=True)
class WebState:
    """What the routes need, kept on app.extensions[EXTENSION_KEY] rather than in module globals."""

    hub: StreamHub
    class_names: list[str]


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
    detector = create_detector(
        str(settings["DETECTOR"]),
        cascade=settings["CASCADE"] or None,
        scale_factor=float(settings["SCALE_FACTOR"]),
        min_neighbors=int(settings["MIN_NEIGHBORS"]),
        min_face_size=int(settings["MIN_FACE_SIZE"]),
    )
    classifier = MaskClassifier.load(str(settings["MODEL"]))
    hub = StreamHub(
        source_factory,
        FrameAnalyzer(detector, classifier),
        source_name,
        jpeg_quality=int(settings["JPEG_QUALITY"]),
        idle_timeout=float(settings["IDLE_TIMEOUT"]),
        retry_initial=float(settings["RETRY_INITIAL"]),
        retry_max=float(settings["RETRY_MAX"]),
    )
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"), static_folder=str(PROJECT_ROOT / "static"))
    app.config.update(settings)
    app.extensions[EXTENSION_KEY] = WebState(hub, classifier.class_names)
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


@bp.get("/")
def index() -> str:
    hub = get_state(current_app).hub
    return render_template("index.html", source=hub.source_name, stats=hub.stats())


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
