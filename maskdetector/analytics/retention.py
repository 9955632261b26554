"""Retention: what is older than --retention-days is deleted, at start-up and every hour, by RetentionJob:
alert snapshots and log lines (purge_alerts, Alerts.purge) and per-minute counts (History.purge).
"""

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from maskdetector.files import write_private

log = logging.getLogger(__name__)

DAY_S = 24 * 3600
EVERY_S = 3600.0


def alert_time(alert: dict[str, Any]) -> float:
    """An alert's Unix time, from its ISO time (its millisecond id if that is missing or damaged)."""
    try:
        return datetime.fromisoformat(str(alert["time"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return int(alert.get("id", 0)) / 1000


def purge_alerts(log_path: Path, cutoff: float) -> int:
    """Delete the lines of the alerts log `log_path` and the snapshots beside it (named by their alert's
    millisecond id) of alerts raised before Unix time `cutoff`; how many log lines went. Damaged lines are kept."""
    removed, kept = 0, []
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        try:
            old = alert_time(json.loads(line)) < cutoff
        except (ValueError, AttributeError, TypeError):
            old = False
        removed += old
        if not old:
            kept.append(line)
    if removed:
        write_private(log_path, "".join(line + "\n" for line in kept).encode("utf-8"))
    for snapshot in log_path.parent.glob("*.jpg"):
        if snapshot.stem.isascii() and snapshot.stem.isdigit() and int(snapshot.stem) / 1000 < cutoff:
            snapshot.unlink(missing_ok=True)
    return removed


class RetentionJob:
    """Calls each `purge(cutoff)` with cutoff = now - `days`, at once and then every `every_s` seconds, on a daemon
    thread; a purge that fails is logged and tried again next time."""

    def __init__(
        self,
        days: float,
        purges: Sequence[tuple[str, Callable[[float], int]]],
        clock: Callable[[], float] = time.time,
        every_s: float = EVERY_S,
    ) -> None:
        self.days = days
        self._purges = tuple(purges)
        self._clock = clock
        self._every_s = every_s
        self._stop = threading.Event()
        self.runs = 0
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def run_once(self) -> dict[str, int]:
        """Purge now; what each purge deleted."""
        cutoff = self._clock() - self.days * DAY_S
        deleted = {}
        for name, purge in self._purges:
            try:
                deleted[name] = purge(cutoff)
            except Exception:  # a full disk, a damaged file: keep the app running, try again next time
                log.exception("retention: could not delete old %s", name)
        if any(deleted.values()):
            log.info("retention: deleted %s older than %g days", deleted, self.days)
        self.runs += 1
        return deleted

    def _run(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self._every_s):
                return

    def close(self, timeout: float = 5.0) -> None:
        """Stop; a purge under way may finish within `timeout` seconds."""
        self._stop.set()
        self._thread.join(timeout)
