"""A background thread with a bounded queue: disk and network work (SQLite, snapshots, webhooks) off the frame loop.

`submit` never blocks: the capture thread must keep its frame rate whatever the disk or a webhook does, so a
full queue drops the item and logs it instead of waiting.
"""

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class BackgroundWorker(Generic[T]):
    """Hands queued items, in order, to `handle` on one daemon thread; a failing item is logged and skipped."""

    def __init__(self, name: str, handle: Callable[[T], None], max_queue: int = 1000) -> None:
        self.name = name
        self._handle = handle
        self._max_queue = max_queue
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Queue `item`; False (and a warning) if the worker is closed or its queue is full."""
        with self._cond:
            if self._closed or len(self._items) >= self._max_queue:
                log.warning("%s: queue full or closed, dropping an item", self.name)
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued item has been handled; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Handle what is queued (up to `timeout`), then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: %d items still queued at shutdown", self.name, len(self._items))

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._closed)
                if not self._items:
                    return
                item = self._items.popleft()
                self._busy = True
            try:
                self._handle(item)
            except Exception:
                log.exception("%s: handling an item failed", self.name)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
