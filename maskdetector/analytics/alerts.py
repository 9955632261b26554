"""No-mask alerts: debounced per face track, a cool-down per source, logged with a snapshot, optionally POSTed.

The rule: a tracked face seen without a mask in `frames` frames in a row (a frame where it wears one starts the
count again; frames where the detector misses it do not) raises one alert, unless its source alerted less than
`cooldown_s` seconds ago. A track alerts at most once; one suppressed by the cool-down may alert after it.

The capture thread only decides and queues. The snapshot JPEG and the log line are written by one background
worker, which then puts the alert in the webhook's outbox on disk (webhook.py: a slow or dead webhook cannot hold
up the log, and loses nothing). A data folder deleted while the app runs is created again for the next alert; one
that cannot be written (full, read-only) is logged and reported by problems() (/healthz).
Files (0600): `<data dir>/alerts/alerts.jsonl` (one JSON object per alert), `<data dir>/alerts/<id>.jpg` (the
frame with the face boxed), `<data dir>/alerts/outbox/<id>.json` (alerts not yet delivered to the webhook);
`purge` deletes the log lines and snapshots of alerts older than the retention time.
"""

import json
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from maskdetector.analytics.retention import alert_time, purge_alerts
from maskdetector.analytics.webhook import OUTBOX_DIRNAME, Outbox, Webhook
from maskdetector.errors import UserError
from maskdetector.files import open_private, private_dir, recreate_private_dir, write_private
from maskdetector.types import Face
from maskdetector.vision.annotation import draw_faces, encode_jpeg
from maskdetector.vision.tracking import Track
from maskdetector.workers import BackgroundWorker

log = logging.getLogger(__name__)

NO_MASK_LABEL = "without_mask"
ALERTS_DIRNAME = "alerts"
LOG_FILENAME = "alerts.jsonl"
RECENT = 100  # alerts /api/alerts can list, kept in memory and read back from the log's tail at start-up
TAIL_BYTES = 64 * 1024
QUEUE_SIZE = 100
SNAPSHOT_JPEG_QUALITY = 85
SENDER_CLOSE_S = 1.0

Alert = dict[str, Any]


class AlertGate:
    """The debounce and cool-down rule (see the module docstring). Not thread-safe: Alerts holds a lock."""

    def __init__(self, frames: int, cooldown_s: float) -> None:
        self.frames = frames
        self.cooldown_s = cooldown_s
        self._alerted: set[tuple[str, int]] = set()  # grows by one per alert, not per track
        self._last_at: dict[str, float] = {}

    def due(self, source: str, track: Track, now: float) -> bool:
        """Whether `track` of `source` raises an alert at time `now`; records it if so."""
        if track.face.label != NO_MASK_LABEL or track.streak < self.frames or (source, track.id) in self._alerted:
            return False
        last = self._last_at.get(source)
        if last is not None and now - last < self.cooldown_s:
            return False
        self._alerted.add((source, track.id))
        self._last_at[source] = now
        return True


class Alerts:
    """The alert rule, the alerts log with snapshots and the optional webhook, for every source of one app."""

    def __init__(
        self,
        data_dir: Path,
        frames: int,
        cooldown_s: float,
        webhook: Webhook | None = None,
        listeners: Sequence[Callable[[Alert], None]] = (),
    ) -> None:
        """`listeners` are called with each alert once it is logged, on the writer thread: they must not block
        (the MQTT publisher only queues)."""
        self.folder = Path(data_dir) / ALERTS_DIRNAME
        try:
            private_dir(self.folder)
        except OSError as exc:
            raise UserError(f"cannot create the alerts folder {self.folder}: {exc.strerror or exc}") from None
        self._gate = AlertGate(frames, cooldown_s)
        self._outbox = Outbox(self.folder / OUTBOX_DIRNAME, webhook) if webhook else None
        self._disk_error = ""  # why the latest alert could not be written, until one is
        self._listeners = tuple(listeners)
        self._raised: Counter[str] = Counter()  # per source, since start-up
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()  # the writer appends to the log, purge rewrites it
        self._recent: deque[Alert] = deque(self._read_recent(), maxlen=RECENT)
        self._last_id = max((int(alert.get("id", 0)) for alert in self._recent), default=0)
        self._writer: BackgroundWorker[tuple[Alert, np.ndarray, Face]] = BackgroundWorker(
            "alert writer", self._store, QUEUE_SIZE
        )

    def observe(self, source: str, frame: np.ndarray, tracks: Sequence[Track], now: float) -> list[Alert]:
        """Apply the rule to the tracks seen in one frame of `source`; queue what the alerts raised need done."""
        raised: list[tuple[Alert, Track]] = []
        with self._lock:
            for track in tracks:
                if self._gate.due(source, track, now):
                    alert = self._new_alert(source, track, now)
                    self._recent.append(alert)
                    self._raised[source] += 1
                    raised.append((alert, track))
        for alert, track in raised:
            log.warning("no-mask alert %s at %s (track %s)", alert["id"], source, track.id)
            self._writer.submit((alert, frame.copy(), track.face))  # the capture side may reuse its buffer
        return [alert for alert, _ in raised]

    def _new_alert(self, source: str, track: Track, now: float) -> Alert:
        # Millisecond ids: unique and increasing across restarts without reading the whole log.
        self._last_id = max(self._last_id + 1, int(now * 1000))
        return {
            "id": self._last_id,
            "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "source": source,
            "label": track.face.label,
            "confidence": round(track.face.confidence, 4),
            "box": list(track.face.box),
            "track": track.id,
            "frames": track.streak,
            "snapshot": f"/api/alerts/{self._last_id}/snapshot.jpg",
        }

    def recent(self, limit: int) -> list[Alert]:
        """The last `limit` alerts, newest first."""
        with self._lock:
            return list(self._recent)[::-1][:limit]

    @property
    def has_webhook(self) -> bool:
        return self._outbox is not None

    def counts(self) -> dict[str, object]:
        """Alerts raised per source and webhook deliveries since start-up (failed: refused by the receiver or lost
        to a full or unwritable outbox; pending: waiting in the outbox), for /api/stats and /metrics."""
        webhook = self._outbox.status() if self._outbox else {}
        with self._lock:
            return {
                "raised": dict(self._raised),
                "webhook_delivered": webhook.get("delivered", 0),
                "webhook_failed": webhook.get("refused", 0) + webhook.get("lost", 0),
                "webhook_pending": webhook.get("pending", 0),
            }

    def purge(self, cutoff: float) -> int:
        """Delete the alerts raised before Unix time `cutoff`: log lines, snapshots and the in-memory list."""
        with self._file_lock:
            removed = purge_alerts(self.folder / LOG_FILENAME, cutoff)
        with self._lock:
            kept = [alert for alert in self._recent if alert_time(alert) >= cutoff]
            self._recent.clear()
            self._recent.extend(kept)
        return removed

    def problems(self) -> list[str]:
        """What goes wrong now, one line each, for /healthz: the alerts folder cannot be written, the webhook fails."""
        found = [f"alerts: {self._disk_error}"] if self._disk_error else []
        if self._outbox is not None:
            webhook = self._outbox.status()
            if not webhook["ok"]:
                found.append(f"alert webhook to {webhook['host']}: {webhook['error']} ({webhook['pending']} waiting)")
        return found

    def snapshot_path(self, alert_id: int) -> Path:
        return self.folder / f"{alert_id}.jpg"

    def flush(self, timeout: float = 10.0) -> bool:
        return self._writer.flush(timeout) and (self._outbox is None or self._outbox.flush(timeout))

    def close(self, timeout: float = 2.0) -> None:
        """Finish writing the log; give the webhook a moment only: what it has not sent stays in the outbox."""
        self._writer.close(timeout)
        if self._outbox is not None:
            self._outbox.close(timeout=SENDER_CLOSE_S)

    def _store(self, item: tuple[Alert, np.ndarray, Face]) -> None:
        alert, frame, face = item
        path = self.snapshot_path(alert["id"])
        try:  # bytes written by Python, not cv2.imwrite: that fails on non-ASCII data folders
            recreate_private_dir(self.folder)  # again: the folder may have been deleted meanwhile
            write_private(path, encode_jpeg(draw_faces(frame, [face]), SNAPSHOT_JPEG_QUALITY))
            with self._file_lock, open_private(self.folder / LOG_FILENAME, "a") as log_file:
                log_file.write(json.dumps(alert) + "\n")
            self._disk_error = ""
        except (OSError, ValueError) as exc:
            self._disk_error = f"cannot write to {self.folder}: {getattr(exc, 'strerror', None) or exc}"
            log.error("alert %s is not in the alerts log: %s", alert["id"], self._disk_error)
        if self._outbox is not None:  # after the snapshot is on disk, so the receiver can fetch it at once
            self._outbox.add(alert)
        for listener in self._listeners:
            listener(alert)

    def _read_recent(self) -> list[Alert]:
        """The last RECENT alerts of the log, from its tail; a damaged line is skipped with a warning."""
        path = self.folder / LOG_FILENAME
        try:
            with path.open("rb") as log_file:
                size = log_file.seek(0, 2)
                log_file.seek(max(0, size - TAIL_BYTES))
                lines = log_file.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise UserError(f"cannot read the alerts log {path}: {exc.strerror or exc}") from None
        alerts = []
        for line in lines[1:] if size > TAIL_BYTES else lines:  # the first line of a tail may be cut
            try:
                alert = json.loads(line)
            except ValueError:
                log.warning("skipping a damaged line in %s", path)
                continue
            if isinstance(alert, dict) and "id" in alert:
                alerts.append(alert)
        return alerts[-RECENT:]
