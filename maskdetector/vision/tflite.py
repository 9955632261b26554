"""TensorFlow Lite interpreters (XNNPACK on the CPU) for the BlazeFace detectors and the fast classifier path.

One place chooses the interpreter (LiteRT's if installed, else the one inside TensorFlow) and its threads.
"""

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from maskdetector.vision.tensorflow_runtime import load_tensorflow, native_stderr_silenced

# Intra-op threads per interpreter: every core up to 4; a single invoke on this project's small models
# does not speed up beyond that, and more threads only contend with the capture and encoding threads.
# A thread that runs beside others of its kind (the live analysis pool) asks for fewer: `interpreter_threads`.
TFLITE_THREADS = max(1, min(4, os.cpu_count() or 1))

_this_thread = threading.local()


@contextmanager
def interpreter_threads(count: int) -> Iterator[None]:
    """Interpreters made in this thread inside the block use `count` intra-op threads."""
    before = getattr(_this_thread, "count", None)
    _this_thread.count = count
    try:
        yield
    finally:
        _this_thread.count = before


def threads_here() -> int:
    """The intra-op threads an interpreter made in this thread now gets."""
    return getattr(_this_thread, "count", None) or TFLITE_THREADS


def make_interpreter(
    model_path: Path | None = None, model_content: bytes | None = None, num_threads: int | None = None
) -> Any:
    """A TFLite interpreter with tensors allocated, from a .tflite file or from a model held in memory; with
    `threads_here()` intra-op threads unless `num_threads` says otherwise."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = load_tensorflow().lite.Interpreter  # noqa: N806
    with warnings.catch_warnings(), native_stderr_silenced():  # "Created TensorFlow Lite XNNPACK delegate for CPU"
        warnings.simplefilter("ignore")  # TensorFlow's deprecation notice pointing to LiteRT
        interpreter = Interpreter(
            model_path=str(model_path) if model_path else None,
            model_content=model_content,
            num_threads=num_threads or threads_here(),
        )
        interpreter.allocate_tensors()
    return interpreter
