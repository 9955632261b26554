"""Real-time face-mask detection: face detection + a small Keras CNN, served over Flask."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU feature notes) drowns real messages on a terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
