"""What a training run leaves in its output folder: model, labels, metrics with how it was made, plots."""

import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from maskdetector.constants import (
    COLOR_ORDER,
    FACE_MARGIN,
    INPUT_SIZE,
    LABELS_FILENAME,
    METRICS_FILENAME,
    MODEL_FILENAME,
)
from maskdetector.training.datasets import LabelledFaces
from maskdetector.training.metrics import plot_confusion_matrix, plot_training_curves
from maskdetector.training.scoring import REAL_EVAL_MIN_SIDE, folder_kind
from maskdetector.vision.model import build_model

if TYPE_CHECKING:  # the config type only: trainer imports this module
    from maskdetector.training.trainer import TrainingConfig


def run_info(
    config: "TrainingConfig",
    data: LabelledFaces,
    split_method: str,
    history: dict,
    seconds: float,
    model: keras.Model,
    silent: dict[str, list[int]],
) -> dict:
    """What the report says about how the model was made: data sources, split, schedule, environment."""
    totals = {layer.name: layer.filters for layer in model.layers if layer.name in silent}
    val_losses = history["val_loss"]
    return {
        "data_sources": [{"path": str(d), "kind": folder_kind(config.crop_faces)} for d in config.data_dirs]
        + [
            {
                "path": str(scenes),
                "kind": "PASCAL VOC scenes: face crops (margin "
                f"{FACE_MARGIN}) with both sides >= {config.scene_min_side} px from images not held out",
                "holdout_rule": f"crc32(image file stem) % 100 < {config.holdout_percent}",
                "real_holdout_min_side": REAL_EVAL_MIN_SIDE,
            }
            for scenes in config.scenes_dirs
        ],
        "left_out_source": str(config.left_out) if config.left_out else None,
        "silent_channels": {name: {"silent": len(c), "of": totals[name]} for name, c in silent.items()},
        "skipped_files": data.skipped,
        "split": split_method,
        "seed": config.seed,
        "epochs_requested": config.epochs,
        "epochs_run": len(val_losses),
        "best_epoch": int(np.argmin(val_losses)) + 1,
        "best_val_loss": float(np.min(val_losses)),
        "training_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(1, len(val_losses)), 1),
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "init_model": str(config.init_model) if config.init_model else None,
        "ema_momentum": config.ema_momentum,  # 0: no averaging
        "balance_power": config.balance_power,
        "scene_weight": config.scene_weight,
        "environment": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        **config.extra_info,
    }


def save_artifacts(model: keras.Model, names: list[str], metrics: dict, history: dict, out: Path) -> None:
    """Write everything next to each other; the model file is replaced atomically, without optimizer state."""
    inference_model = build_model(len(names))  # uncompiled twin: saves weights without optimizer state
    inference_model.set_weights(model.get_weights())
    tmp = out / f".{MODEL_FILENAME}.tmp.keras"
    inference_model.save(tmp)
    os.replace(tmp, out / MODEL_FILENAME)
    labels = {
        "classes": names,
        "input_size": list(INPUT_SIZE),
        "color_order": COLOR_ORDER,
        "pixel_range": "0-255 (the model rescales to 0-1 itself)",
        "face_margin": FACE_MARGIN,
    }
    (out / LABELS_FILENAME).write_text(json.dumps(labels, indent=2) + "\n")
    (out / METRICS_FILENAME).write_text(json.dumps(metrics, indent=2) + "\n")
    plot_training_curves(history, out / "training_curves.png")
    plot_confusion_matrix(metrics["test"]["confusion_matrix"], names, out / "confusion_matrix.png")
