"""Models for several threads: one shared copy behind a lock, or a private copy per thread of the analysis pool."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from maskdetector.vision.tflite import interpreter_threads

T = TypeVar("T")
R = TypeVar("R")

_own_models = threading.local()  # .interpreter_threads is set in threads that run models of their own


@contextmanager
def models_per_thread(threads: int) -> Iterator[None]:
    """Inside the block, shared detectors and classifiers called from this thread run a private copy, built on
    its first call with `threads` threads per interpreter: the live analysis pool's workers run side
    by side without a lock between them and without asking for more cores than they were given."""
    _own_models.interpreter_threads = threads
    try:
        yield
    finally:
        del _own_models.interpreter_threads


class PerThread(Generic[T]):
    """A model object for several threads: one shared copy behind a lock (API requests, detect.py), and a private
    copy per thread inside `models_per_thread` (neither a TFLite interpreter nor, by OpenCV's word, a cascade
    may be run from two threads at once)."""

    def __init__(self, shared: T, copy: Callable[[], T]) -> None:
        self._shared = shared
        self._copy = copy
        self._lock = threading.Lock()
        self._local = threading.local()

    def run(self, call: Callable[[T], R]) -> R:
        threads = getattr(_own_models, "interpreter_threads", None)
        if threads is None:
            with self._lock:
                return call(self._shared)
        private = getattr(self._local, "copy", None)
        if private is None:
            with interpreter_threads(threads):
                private = self._local.copy = self._copy()
        return call(private)
