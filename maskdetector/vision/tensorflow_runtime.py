"""TensorFlow, loaded once and quietly, for the command lines and the TFLite interpreters.

On a CPU-only machine TensorFlow's native libraries announce oneDNN, fail to find CUDA ("failed call to cuInit")
and create the XNNPACK delegate in lines written straight to file descriptor 2, several before any log level
applies (TF_CPP_MIN_LOG_LEVEL only filters the later ones). On a terminal they read like a crash, so they are
dropped while TensorFlow starts and while an interpreter is built; Python's own errors still show.
"""

import functools
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points at /dev/null for the block; Python's sys.stderr is flushed first and after."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.cache
def load_tensorflow() -> ModuleType:
    """`import tensorflow` with its start-up lines dropped; also probes for a GPU now, which is where the CUDA
    error comes from, rather than at the first model load."""
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # "Assets written to ..." on every TFLite conversion
    return tf
