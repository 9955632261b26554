"""The blueprint: the page, the MJPEG streams and the JSON endpoints, all reading the app's WebState."""

import logging
import re
import time
from collections import Counter

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request, send_file, url_for
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from maskdetector.analytics.alerts import RECENT
from maskdetector.analytics.history import MAX_MINUTES, SCOPES, DatabaseUnavailable, summarize
from maskdetector.constants import CLASS_DISPLAY
from maskdetector.vision.analyzers import frame_record
from maskdetector.web.auth import admin_only, current_account
from maskdetector.web.metrics import METRICS_KEY
from maskdetector.web.state import Camera, WebState, get_state
from maskdetector.web.streaming import StreamHub
from maskdetector.web.uploads import ImageLimits, checked_size, decode_image, upload_bytes
from maskdetector.web.viewers import BOUNDARY, ViewerLimit, multipart_stream

DEFAULT_HISTORY_MINUTES = 60
VIEWER_RETRY_AFTER_S = 10
WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")

bp = Blueprint("maskdetector", __name__)
log = logging.getLogger(__name__)


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
    """Query parameter `name` as a whole number from 1 to `highest`; 400 otherwise (ASCII digits only: str.isdigit
    takes "²", which int() refuses)."""
    text = request.args.get(name, str(default))
    if not WHOLE_NUMBER.fullmatch(text) or not 1 <= int(text) <= highest:
        abort(400, description=f"{name} must be a whole number from 1 to {highest}")
    return int(text)


def _all_stats(state: WebState) -> dict[str, object]:
    """The first source's stats at the top level (as before several cameras), then per source, total and alerts."""
    per_source = {name: camera.stats() for name, camera in state.cameras.items()}
    counted = ("faces", *CLASS_DISPLAY, "viewers", "frames")
    total = {key: sum(int(stats[key]) for stats in per_source.values()) for key in counted}
    people = sum((camera.monitor.people() for camera in state.cameras.values()), Counter())
    latest = _shown(state.alerts.recent(1)) if state.alerts else []
    return {
        **next(iter(per_source.values())),
        "sources": per_source,
        "total": {
            **total,
            "cameras": len(per_source),
            "cameras_ok": sum(stats["camera"] == "ok" for stats in per_source.values()),
            "people": summarize(people),
        },
        "alerts": {
            "enabled": state.alerts is not None,
            "latest": latest[0] if latest else None,
            **(state.alerts.counts() if state.alerts else {}),
        },
        "instance": state.instance,
        "history": state.history.stats() if state.history else None,
        "mqtt": state.events.stats() if state.events else None,
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
        history_shared=state.history is not None and state.history.shared,
        instance=state.instance,
        alerts=state.alerts is not None,
        history_minutes=DEFAULT_HISTORY_MINUTES,
    )


def _mjpeg(hub: StreamHub) -> Response:
    """The stream for one more viewer, or 503 when its source or the app has as many as it takes."""
    try:
        viewer = hub.viewer()
    except ViewerLimit as exc:
        raise ServiceUnavailable(str(exc), retry_after=VIEWER_RETRY_AFTER_S) from None
    response = Response(
        multipart_stream(viewer.frames()),
        mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-cache, no-store, must-revalidate", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(viewer.close)  # also when the client left before the first frame was asked for
    return response


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
    """People seen per minute over the last `minutes` (default 60), per source and in total, of this instance's
    cameras or, with `scope=site`, of every instance writing to the same database."""
    minutes = _int_arg("minutes", DEFAULT_HISTORY_MINUTES, MAX_MINUTES)
    scope = request.args.get("scope", SCOPES[0])
    if scope not in SCOPES:
        abort(400, description=f"scope must be one of {', '.join(SCOPES)}")
    history = get_state(current_app).history
    if history is None:
        abort(404, description="statistics history is off (--no-history)")
    try:
        return jsonify(history.report(minutes, time.time(), scope))
    except DatabaseUnavailable as exc:
        abort(503, description=f"the statistics database is unavailable: {exc}")


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus text format. A route of this blueprint like the others, so whatever guards them (logins,
    once accounts exist) guards it too."""
    return Response(current_app.extensions[METRICS_KEY].render(), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/api/alerts")
def api_alerts() -> Response:
    """The latest `limit` alerts (default 20), newest first."""
    limit = _int_arg("limit", 20, RECENT)
    alerts = get_state(current_app).alerts
    return jsonify(enabled=alerts is not None, alerts=_shown(alerts.recent(limit)) if alerts else [])


def _shown(alerts: list[dict[str, object]]) -> list[dict[str, object]]:
    """Alerts as this account may see them: a viewer's have no snapshot link (the pictures are for admins)."""
    if current_account().is_admin:
        return alerts
    return [{key: value for key, value in alert.items() if key != "snapshot"} for alert in alerts]


@bp.get("/api/alerts/<int:alert_id>/snapshot.jpg")
@admin_only
def api_alert_snapshot(alert_id: int) -> Response:
    """A picture of a person: for admins only, and kept out of every cache (shared or the browser's disk)."""
    alerts = get_state(current_app).alerts
    path = alerts.snapshot_path(alert_id) if alerts else None
    if path is None or not path.is_file():
        abort(404, description=f"no snapshot for alert {alert_id}")
    response = send_file(path, mimetype="image/jpeg", conditional=False, etag=False)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the app runs; the model is loaded at start-up, the camera may be down. `status` is "degraded"
    and `problems` says why when a store cannot write or the webhook fails (each also logged where it happens)."""
    state = get_state(current_app)
    stats = state.hub.stats()
    problems = state.problems()
    return jsonify(
        status="degraded" if problems else "ok",
        problems=problems,
        model_ready=True,
        classes=state.class_names,
        camera_ready=stats["camera"] == "ok",
        camera=stats["camera"],
        camera_reason=stats["camera_reason"],
    )


@bp.post("/api/detect")
def api_detect() -> Response:
    """Faces in one uploaded image, analyzed on the upload workers (detect_pool.py): never opens the camera or the
    stream, never holds up its analysis. The header is checked before the image waits in line."""
    started = time.perf_counter()
    state = get_state(current_app)
    config = current_app.config
    limits = ImageLimits(
        int(config["MAX_IMAGE_PIXELS"]), int(config["MAX_IMAGE_SIDE"]), float(config["MAX_IMAGE_ASPECT"])
    )
    data = upload_bytes(request)
    checked_size(data, limits)

    def detect() -> dict[str, object]:
        image = decode_image(data, limits)
        return frame_record(image, state.analyzer.analyze(image))

    record = state.uploads.run(detect)
    return jsonify({**record, "ms": round((time.perf_counter() - started) * 1000, 1)})


def _is_api(path: str) -> bool:
    return path.startswith(("/api/", "/video_feed"))


@bp.app_errorhandler(HTTPException)
def api_http_error(exc: HTTPException) -> Response | HTTPException:
    """Programs calling /api/..., /video_feed or /video_feed/<name> get {"error": "..."} with the status (413 for a
    too-large body included) and the exception's own headers (Retry-After, Allow)."""
    if not _is_api(request.path):
        return exc
    response = jsonify(error=exc.description)
    response.status_code = exc.code or 500
    for key, value in exc.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            response.headers[key] = value
    return response


@bp.app_errorhandler(Exception)
def api_unexpected_error(exc: Exception) -> Response | HTTPException:
    """A bug, logged with its traceback: still a JSON answer for programs (never an HTML 500 page on the API)."""
    log.exception("%s %s failed", request.method, request.path)
    if not _is_api(request.path):
        return InternalServerError(original_exception=exc)
    response = jsonify(error=f"internal error ({type(exc).__name__}); the server log has the details")
    response.status_code = 500
    return response
