"""Alerts to a webhook: an outbox on disk, so none is lost to a dead receiver, a full queue or a restart.

Each alert is written to `<alerts folder>/outbox/<id>.json` (mode 0600) before anything is sent, and deleted once
the receiver has taken it (any 2xx). One thread sends the outbox oldest first. A receiver that cannot be reached,
times out, or answers 5xx or 429 costs one attempt (`timeout_s`, 3 s by default) and then a wait that doubles from
1 s up to a minute, so a dead webhook costs a few seconds a minute whatever the alert rate; meanwhile alerts wait on
disk and are sent, in order, once it answers again, after a restart too. A receiver that refuses an alert (another
4xx) will refuse it again: the file moves to `outbox/refused/` with an error in the log. Delivery is at least once
(a receiver that took an alert just as the app stopped gets it again after the restart; its `id` tells).
"""

import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from maskdetector.files import private_dir, recreate_private_dir, write_private

log = logging.getLogger(__name__)

OUTBOX_DIRNAME = "outbox"
REFUSED_DIRNAME = "refused"
OUTBOX_LIMIT = 10_000  # alerts kept for a receiver that is away; beyond this each new one is logged and counted lost
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0

Alert = dict[str, Any]


class Delivery(Enum):
    DELIVERED = "delivered"
    REFUSED = "refused"  # a 4xx other than 429: sending it again will not help
    FAILED = "failed"  # unreachable, timed out, 5xx, 429: worth another try later


class Webhook:
    """POSTs one alert as JSON to an http(s) URL. Logs name only the URL's host: it often carries a secret."""

    def __init__(self, url: str, timeout_s: float = 3.0) -> None:
        self.url = url
        self.host = urlsplit(url).hostname or "?"
        self._timeout_s = timeout_s

    def send(self, alert: Alert) -> tuple[Delivery, str]:
        """One attempt: (the outcome, what went wrong or "")."""
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"event": "no_mask", **alert}).encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "maskdetector"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
            return Delivery.DELIVERED, ""
        except urllib.error.HTTPError as exc:
            retry = exc.code >= 500 or exc.code == 429
            return (Delivery.FAILED if retry else Delivery.REFUSED), f"HTTP {exc.code}"
        except (OSError, http.client.HTTPException) as exc:  # refused, unreachable, timed out, garbled reply
            return Delivery.FAILED, str(getattr(exc, "reason", exc)) or type(exc).__name__


class Outbox:
    """The alerts on their way to `webhook`, kept in `folder` until delivered; its own sending thread."""

    def __init__(
        self,
        folder: Path,
        webhook: Webhook,
        limit: int = OUTBOX_LIMIT,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.folder = Path(folder)
        self.webhook = webhook
        self._limit = limit
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.delivered = self.refused = self.lost = self.failures = 0
        self.last_error = ""  # the latest failed attempt's reason while the receiver is failing, else ""
        try:
            private_dir(self.folder)
        except OSError as exc:  # add() tries again and reports it
            log.error("cannot create the webhook outbox %s: %s", self.folder, exc.strerror or exc)
        waiting = len(self._files())
        if waiting:
            log.info("%d alert(s) from before the restart wait in %s for %s", waiting, self.folder, webhook.host)
        self._thread = threading.Thread(target=self._run, name="alert webhook", daemon=True)
        self._thread.start()

    def add(self, alert: Alert) -> bool:
        """Keep `alert` on disk for sending; False (logged, counted lost) if the outbox is full or cannot be written."""
        try:
            recreate_private_dir(self.folder)
            if len(self._files()) >= self._limit:
                raise OSError(f"{self._limit} alerts already wait for {self.webhook.host}")
            write_private(self.folder / f"{alert['id']}.json", json.dumps(alert).encode("utf-8"))
        except OSError as exc:
            with self._lock:
                self.lost += 1
            log.error("alert %s will not reach the webhook: cannot keep it in %s (%s)", alert["id"], self.folder, exc)
            return False
        self._wake.set()
        return True

    def pending(self) -> int:
        return len(self._files())

    def status(self) -> dict[str, object]:
        """For /healthz and /api/stats: whether the receiver takes alerts, and what waits or was lost."""
        with self._lock:
            return {
                "host": self.webhook.host,
                "ok": not self.last_error,
                "error": self.last_error,
                "pending": self.pending(),
                "delivered": self.delivered,
                "refused": self.refused,
                "lost": self.lost,
            }

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the outbox is empty; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, timeout: float = 1.0) -> None:
        """Stop sending; an attempt under way may finish within `timeout`. What is left stays for the next start."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        left = self.pending()
        if left:
            log.warning(
                "%d alert(s) not yet delivered to %s stay in %s for the next start",
                left,
                self.webhook.host,
                self.folder,
            )

    def _files(self) -> list[Path]:
        """The waiting alerts, oldest (smallest id) first."""
        try:
            names = [path for path in self.folder.glob("*.json") if path.stem.isdigit()]
        except OSError:
            return []
        return sorted(names, key=lambda path: int(path.stem))

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            files = self._files()
            if not files:
                self._wake.wait()
                self._wake.clear()
                continue
            if self._send(files[0]):
                delay = self._backoff[0]
            else:
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])

    def _send(self, path: Path) -> bool:
        """Send one file; False when the receiver failed (back off before the next attempt)."""
        try:
            alert = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return True
        except (OSError, ValueError) as exc:
            self._refuse(path, f"unreadable ({exc})")
            return True
        outcome, problem = self.webhook.send(alert)
        if outcome is Delivery.FAILED:
            with self._lock:
                self.failures += 1
                first = not self.last_error
                self.last_error = problem
            if first or self.failures % 100 == 0:
                log.error(
                    "alert webhook to %s failed (%s): %d alert(s) wait in %s",
                    self.webhook.host,
                    problem,
                    self.pending(),
                    self.folder,
                )
            return False
        if outcome is Delivery.REFUSED:
            self._refuse(path, problem)
        else:
            path.unlink(missing_ok=True)
            with self._lock:
                self.delivered += 1
                if self.last_error:
                    log.info("alert webhook to %s answers again", self.webhook.host)
                self.last_error = ""
        return True

    def _refuse(self, path: Path, problem: str) -> None:
        with self._lock:
            self.refused += 1
        refused = self.folder / REFUSED_DIRNAME
        try:
            private_dir(refused)
            os.replace(path, refused / path.name)
        except OSError:
            path.unlink(missing_ok=True)
        log.error(
            "alert webhook to %s refused alert %s (%s): kept in %s", self.webhook.host, path.stem, problem, refused
        )
