"""A background thread with a bounded queue: disk and network work (SQLite, snapshots, webhooks) off the frame loop.

`submit` never blocks: the capture thread must keep its frame rate whatever the disk or a webhook does, so a
full queue drops the item and logs it instead of waiting.
"""

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Flush:
    """Queued by flush(): reached once every item queued before it is handled."""

    def __init__(self) -> None:
        self.reached = threading.Event()


_STOP = object()  # queued by close(): the thread ends when it gets there


class BackgroundWorker(Generic[T]):
    """Hands queued items, in order, to `handle` on one daemon thread; a failing item is logged and skipped."""

    def __init__(self, name: str, handle: Callable[[T], None], max_queue: int = 1000) -> None:
        self.name = name
        self._handle = handle
        self._items: queue.Queue = queue.Queue(max_queue)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Queue `item`; False (and a warning) if the worker is closed or its queue is full."""
        if not self._closed:
            with contextlib.suppress(queue.Full):
                self._items.put_nowait(item)
                return True
        log.warning("%s: queue full or closed, dropping an item", self.name)
        return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every item queued so far has been handled; False on timeout."""
        if not self._thread.is_alive():
            return self._items.empty()
        marker = _Flush()
        try:
            self._items.put(marker, timeout=timeout)  # may wait for room, unlike submit()
        except queue.Full:
            return False
        return marker.reached.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Handle what is queued (up to `timeout`), then stop the thread."""
        self._closed = True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._items.put(_STOP, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("%s: %d items still queued at shutdown", self.name, self._items.qsize())

    def _run(self) -> None:
        while (item := self._items.get()) is not _STOP:
            if isinstance(item, _Flush):
                item.reached.set()
                continue
            try:
                self._handle(item)
            except Exception:
                log.exception("%s: handling an item failed", self.name)
