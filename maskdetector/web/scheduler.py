"""One pool of analysis threads for every live source: sized to the cores, fair, always on each source's newest frame.

A thread per camera, all sharing one detector behind a lock, is what this replaces: with four cameras the
threads spent two thirds of their time waiting for that lock while the interpreters' own threads and the
capture threads fought over two cores (docs/performance.md). Here every source gets a `Lane` that holds at
most one frame waiting (a newer frame replaces it, so lag cannot grow) and at most one in analysis. Lanes
with a frame waiting line up in the order they became ready; a free worker takes the first, and a lane
whose next frame arrived meanwhile goes to the back of the line: every source gets its turn, whatever its
frame rate. The pool has a fixed number of threads, so adding a camera adds work, not threads; each worker
runs its own interpreters (per_thread.models_per_thread), with the cores divided between the workers rather
than every interpreter asking for all of them.
"""

import logging
import os
import threading
from collections import deque
from collections.abc import Callable

import cv2
import numpy as np

from maskdetector.types import Analyzer, Face
from maskdetector.vision.per_thread import models_per_thread

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0


def machine_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def pool_size(workers: int, sources: int) -> int:
    """`workers` if set, else one worker per core but no more than there are sources: a lone camera gets one
    worker whose interpreters use every core (two single-threaded workers would leave one core idle, since a
    source's frames are analyzed one at a time)."""
    return workers or min(machine_cores(), max(1, sources))


class Lane:
    """One source's place in the scheduler: `submit` its frames, results go to `on_result` on a worker thread."""

    def __init__(
        self,
        scheduler: "AnalysisScheduler",
        analyzer: Analyzer,
        on_result: Callable[[np.ndarray, list[Face]], None],
        name: str,
    ) -> None:
        self.name = name
        self.analyzer = analyzer
        self.on_result = on_result
        self._scheduler = scheduler
        # All guarded by the scheduler's condition.
        self.pending: np.ndarray | None = None
        self.queued = False
        self.busy = False
        self.error: Exception | None = None
        self.stopped = False

    def submit(self, frame: np.ndarray) -> bool:
        """Hand over the newest frame; True if it replaced one still waiting, which is skipped (never analyzed).
        Raises the exception of an analysis that failed since the last call."""
        return self._scheduler.submit(self, frame)

    def stop(self) -> None:
        """Let the frame waiting, if any, be analyzed, then take the lane out of the line."""
        self._scheduler.stop(self)


class AnalysisScheduler:
    """`workers` threads (pool_size says how many) shared by every lane; close() ends them."""

    def __init__(self, workers: int, name: str = "analysis") -> None:
        cores = machine_cores()
        self.workers = workers
        # Each worker's interpreters get an equal share of the cores: no oversubscription however many cameras.
        self.interpreter_threads = max(1, cores // self.workers)
        if self.workers > 1:  # OpenCV's own pool too (one per process): the workers already use every core
            cv2.setNumThreads(self.interpreter_threads)
        self._cond = threading.Condition()
        self._ready: deque[Lane] = deque()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name} {i + 1}", daemon=True) for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def lane(self, analyzer: Analyzer, on_result: Callable[[np.ndarray, list[Face]], None], name: str) -> Lane:
        return Lane(self, analyzer, on_result, name)

    def submit(self, lane: Lane, frame: np.ndarray) -> bool:
        with self._cond:
            error, lane.error = lane.error, None
            if error is not None:
                lane.pending = None
                raise error
            lane.stopped = False
            skipped = lane.pending is not None
            lane.pending = frame
            if not lane.queued and not lane.busy:
                lane.queued = True
                self._ready.append(lane)
                self._cond.notify()
            return skipped

    def stop(self, lane: Lane) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: lane.pending is None and not lane.busy, JOIN_TIMEOUT_S):
                log.warning("analysis of %s did not finish within %.0fs", lane.name, JOIN_TIMEOUT_S)
            lane.stopped = True
            lane.pending = None

    def close(self) -> None:
        """Finish the frames waiting, then end the threads; safe to call twice."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT_S)

    def _work(self) -> None:
        with models_per_thread(self.interpreter_threads):
            while (lane := self._next()) is not None:
                self._analyze(lane)

    def _next(self) -> Lane | None:
        """The first lane in line with a frame to analyze (marked busy, its frame taken), None once closed."""
        with self._cond:
            while True:
                self._cond.wait_for(lambda: self._ready or self._closed)
                if not self._ready:
                    return None
                lane = self._ready.popleft()
                lane.queued = False
                if lane.pending is not None and not lane.stopped:
                    lane.busy = True
                    return lane

    def _analyze(self, lane: Lane) -> None:
        with self._cond:
            frame, lane.pending = lane.pending, None
        try:
            faces = lane.analyzer.analyze(frame)
        except Exception as exc:  # handed to the capture thread, which shows a placeholder and retries
            with self._cond:
                lane.error = exc
        else:
            try:
                lane.on_result(frame, faces)
            except Exception:
                log.exception("handling the analysis of %s failed", lane.name)
        with self._cond:
            lane.busy = False
            if lane.pending is not None and lane.error is None and not lane.stopped:
                lane.queued = True
                self._ready.append(lane)  # the back of the line: the others go first
            self._cond.notify_all()
