"""The Flask app factory: it wires the sources, the analyzer and the stores, and registers routes.py's blueprint.

`create_app` loads the model at start-up (fail fast) and wires each source -> detector -> classifier into its
own StreamHub, whose on_analysis hook (monitor.py) feeds the statistics and alerts; POST /api/detect (bodies
parsed in uploads.py) shares the analyzer without touching the streams. Tests pass SOURCE_FACTORY (a callable
returning a FrameSource, or {name: callable} for several sources), CLOCK (Unix time for the statistics, to run
minutes quickly) and a small model in `config`.
"""

import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from flask import Flask

from maskdetector.analytics.alerts import ALERTS_DIRNAME, LOG_FILENAME, Alerts, Webhook
from maskdetector.analytics.history import History, database_url, default_instance
from maskdetector.analytics.mqtt import Broker, MqttEvents
from maskdetector.analytics.retention import RetentionJob, purge_alerts
from maskdetector.constants import PROJECT_ROOT
from maskdetector.errors import UserError
from maskdetector.files import private_dir
from maskdetector.settings import resolve
from maskdetector.sources.capture import FrameSource, VideoSource
from maskdetector.sources.parsing import slug, sources_from_settings
from maskdetector.types import Analyzer
from maskdetector.vision.analyzers import build_analyzer
from maskdetector.web.auth import init_auth
from maskdetector.web.detect_pool import DetectPool
from maskdetector.web.metrics import METRICS_KEY, AppMetrics
from maskdetector.web.monitor import SourceMonitor, keep_capturing
from maskdetector.web.routes import bp
from maskdetector.web.scheduler import AnalysisScheduler, pool_size
from maskdetector.web.state import EXTENSION_KEY, Camera, WebState
from maskdetector.web.streaming import StreamHub
from maskdetector.web.viewers import ViewerCount


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
    settings = resolve(config)
    sources = _source_factories(settings)
    analyzer = build_analyzer(settings)
    data_dir = _data_dir(settings)
    instance = str(settings["INSTANCE"]) or default_instance()
    clock = settings.get("CLOCK", time.time)
    hubs: dict[str, StreamHub] = {}
    history, events, alerts = _stores(settings, data_dir, instance, clock, [name for name, _, _ in sources], hubs)
    scheduler = AnalysisScheduler(pool_size(int(settings["ANALYSIS_WORKERS"]), len(sources)))  # one for all sources
    metrics = AppMetrics()
    viewer_count = ViewerCount(int(settings["MAX_VIEWERS"]))  # the cap on all sources' viewers together
    cameras = {}
    for name, label, factory in sources:
        monitor = SourceMonitor(name, [sink for sink in (history, events) if sink], alerts, clock)
        video = metrics.timed(analyzer.for_video(), name)
        hubs[name] = hub = _hub(settings, factory, label, video, monitor, scheduler, viewer_count)
        cameras[name] = Camera(name, hub, monitor)
        if settings["ALWAYS_ON"]:
            keep_capturing(hub)
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"), static_folder=str(PROJECT_ROOT / "static"))
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = int(float(settings["MAX_UPLOAD_MB"]) * 1024 * 1024)
    init_auth(app, settings)
    retention = _retention(settings, data_dir, history, alerts, clock)
    uploads = DetectPool(int(settings["DETECT_WORKERS"]), int(settings["DETECT_QUEUE"]))
    class_names = analyzer.classifier.class_names
    state = WebState(cameras, class_names, analyzer, history, alerts, events, instance, scheduler, uploads, retention)
    app.extensions[EXTENSION_KEY] = state
    metrics.watch(state)
    app.extensions[METRICS_KEY] = metrics
    app.register_blueprint(bp)
    if events is not None:
        events.start()
    return app


def _hub(
    settings: Mapping[str, object],
    factory: Callable[[], FrameSource],
    label: str,
    video: Analyzer,
    monitor: SourceMonitor,
    scheduler: AnalysisScheduler,
    viewer_count: ViewerCount,
) -> StreamHub:
    """One source's capture thread and stream, with the settings it shares with every source."""
    return StreamHub(
        factory,
        video,
        label,
        jpeg_quality=int(settings["JPEG_QUALITY"]),
        idle_timeout=float(settings["IDLE_TIMEOUT"]),
        retry_initial=float(settings["RETRY_INITIAL"]),
        retry_max=float(settings["RETRY_MAX"]),
        on_analysis=monitor,
        scheduler=scheduler,
        motion_gating=bool(settings["MOTION_GATING"]),
        max_viewers=int(settings["MAX_VIEWERS_PER_SOURCE"]),
        viewer_count=viewer_count,
    )


def _data_dir(settings: Mapping[str, object]) -> Path:
    """The data folder, made 0700 if it does not exist: it keeps pictures of people and the login secrets."""
    path = Path(str(settings["DATA_DIR"]))
    try:
        return private_dir(path)
    except OSError as exc:
        raise UserError(f"cannot create the data folder {path}: {exc.strerror or exc}") from None


def _stores(
    settings: Mapping[str, object],
    data_dir: Path,
    instance: str,
    clock: Callable[[], float],
    names: list[str],
    hubs: Mapping[str, StreamHub],
) -> tuple[History | None, MqttEvents | None, Alerts | None]:
    """The statistics history, the MQTT publisher and the alerts, each None when off; the broker URL is checked
    before anything is opened."""
    broker = Broker.from_url(str(settings["MQTT_URL"])) if settings["MQTT_URL"] else None
    history = None
    if settings["HISTORY"]:
        history = History(database_url(str(settings["DATABASE_URL"]), data_dir), instance)
    events = None
    if broker is not None:
        events = MqttEvents(
            broker,
            instance,
            {name: partial(_source_up, hubs, name) for name in names},
            queue_limit=int(settings["MQTT_QUEUE"]),
            clock=clock,
        )
    alerts = None
    if settings["ALERTS"] or settings["ALERT_WEBHOOK"]:
        webhook = Webhook(str(settings["ALERT_WEBHOOK"])) if settings["ALERT_WEBHOOK"] else None
        listeners = [events.alert] if events else []
        alerts = Alerts(data_dir, int(settings["ALERT_FRAMES"]), float(settings["ALERT_COOLDOWN"]), webhook, listeners)
    return history, events, alerts


def _retention(
    settings: Mapping[str, object],
    data_dir: Path,
    history: History | None,
    alerts: Alerts | None,
    clock: Callable[[], float],
) -> RetentionJob:
    """Old alerts go whether or not alerts are on now (an earlier run may have left some); old counts go from the
    statistics database while the history is on."""
    purge_old_alerts = alerts.purge if alerts else partial(purge_alerts, data_dir / ALERTS_DIRNAME / LOG_FILENAME)
    purges = [("alerts", purge_old_alerts)] + ([("history rows", history.purge)] if history else [])
    return RetentionJob(float(settings["RETENTION_DAYS"]), purges, clock)


def _source_up(hubs: Mapping[str, StreamHub], name: str) -> bool:
    return hubs[name].stats()["camera"] == "ok"
