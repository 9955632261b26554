"""Where uploaded images are analyzed: a few threads of their own, below the live streams' priority, and a short
line; an upload that finds the line full is answered 503 with Retry-After at once.

Before this, every POST /api/detect ran on its request thread with the shared models behind their lock: ten
large uploads at once ran ten decodes side by side (+1.9 GB) and froze the cameras' analysis. Here at most
`workers` uploads are decoded and analyzed at a time, each worker runs its own models (models_per_thread) with one
interpreter thread, and the workers are niced, so on a busy machine the live analysis pool goes first.
"""

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import TypeVar

from werkzeug.exceptions import ServiceUnavailable

from maskdetector.vision.per_thread import models_per_thread

log = logging.getLogger(__name__)

R = TypeVar("R")

# How much lower than the live streams the upload workers run (Linux nice levels; the process default is 0).
UPLOAD_NICENESS = 10
RETRY_AFTER_S = 2


def _lower_priority() -> None:
    """Nice this worker thread (Linux: a thread is a schedulable task of its own); elsewhere do nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), UPLOAD_NICENESS)
    except (AttributeError, OSError) as exc:
        log.debug("upload worker keeps its priority: %s", exc)


class DetectPool:
    """`workers` niced threads for uploads plus `queue` waiting places; `run` raises 503 beyond those."""

    def __init__(self, workers: int = 1, queue: int = 4) -> None:
        self.workers = workers
        self.places = workers + queue
        self._admitted = threading.BoundedSemaphore(self.places)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="upload", initializer=_lower_priority)

    def run(self, work: Callable[[], R]) -> R:
        """`work()` on a worker (its own models, one interpreter thread), waiting in line if need be; 503 with
        Retry-After when every worker is busy and the line is full."""
        if not self._admitted.acquire(blocking=False):
            raise ServiceUnavailable(
                f"busy: {self.workers} upload(s) being analyzed and {self.places - self.workers} waiting; "
                f"retry in {RETRY_AFTER_S} s",
                retry_after=RETRY_AFTER_S,
            )
        try:
            try:
                future = self._executor.submit(_with_own_models, work)
            except RuntimeError:  # "cannot schedule new futures after shutdown"
                raise ServiceUnavailable("the server is shutting down", retry_after=RETRY_AFTER_S) from None
            try:
                return future.result()
            except CancelledError:  # waiting in line when the app shut down
                raise ServiceUnavailable("the server is shutting down", retry_after=RETRY_AFTER_S) from None
        finally:
            self._admitted.release()

    def close(self) -> None:
        """Let the uploads under way finish; new ones are refused by the server, which stops first."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _with_own_models(work: Callable[[], R]) -> R:
    with models_per_thread(1):
        return work()
