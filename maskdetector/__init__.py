"""Real-time face-mask detection: face detection + a small Keras CNN, served over Flask."""

import os

# TensorFlow's native INFO and WARNING lines once it has started (vision/tensorflow_runtime.py drops the ones before).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
