"""Analysis beside the capture thread, on the newest frame only: a slow model skips frames, it never queues them."""

import threading
from collections.abc import Callable

import numpy as np

from maskdetector.types import Analyzer, Face

JOIN_TIMEOUT_S = 5.0


class LatestFrameAnalysis:
    """Analyses the newest frame handed to it, on its own thread, then reports it to `on_result`.

    A frame handed over while the previous one is still being analysed replaces any frame waiting, so the
    analysis rate is the model's own and it always works on the freshest picture. A failed analysis is
    raised to the capture thread by its next `submit`, which treats it like a failing source.
    """

    def __init__(self, analyzer: Analyzer, on_result: Callable[[np.ndarray, list[Face]], None], name: str) -> None:
        self._analyzer = analyzer
        self._on_result = on_result
        self._cond = threading.Condition()
        self._pending: np.ndarray | None = None
        self._error: Exception | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, frame: np.ndarray) -> None:
        """Hand over the newest frame; raises the exception of an analysis that failed since the last call."""
        with self._cond:
            error, self._error = self._error, None
            if error is not None:
                self._pending = None
                raise error
            self._pending = frame
            self._cond.notify()

    def stop(self) -> None:
        """Analyse the frame still waiting, if any, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(JOIN_TIMEOUT_S)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                frame, self._pending = self._pending, None
            if frame is None:
                return
            try:
                faces = self._analyzer.analyze(frame)
            except Exception as exc:  # handed to the capture thread, which shows a placeholder and retries
                with self._cond:
                    self._error = exc
                continue
            self._on_result(frame, faces)
