"""Training the mask classifier: tf.data input pipeline, augmentation, weighting, fit, report.

Reads top to bottom: `train()` loads every source once into memory, splits each (splits.py), fits
`build_model()` with checkpointing and early stopping on validation loss of a moving average of the weights,
scores the untouched test split, the real held-out scene crops and a left-out source (scoring.py) and writes
the artifacts to the output folder.
"""

import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from maskdetector.errors import UserError
from maskdetector.training.artifacts import run_info, save_artifacts
from maskdetector.training.datasets import (
    SCENE_CLASSES,
    LabelledFaces,
    class_folders,
    concatenate,
    load_image_folder,
    load_scene_crops,
)
from maskdetector.training.inputs import make_dataset, training_weights
from maskdetector.training.metrics import plot_mistakes, score
from maskdetector.training.scoring import (
    face_finder,
    folder_kind,
    load_for,
    load_real_holdout,
    score_folder,
    score_scenes,
    score_split,
)
from maskdetector.training.settings import default
from maskdetector.training.splits import counts_by_source, split
from maskdetector.vision.classifier import MaskClassifier
from maskdetector.vision.model import build_model, silent_channels

log = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    """One training run. The defaults of the settings train.py has a flag for are train.py's (training/settings.py)."""

    data_dirs: list[Path]
    out_dir: Path
    scenes_dirs: list[Path] = field(default_factory=list)  # PASCAL VOC scenes: non-held-out face crops train
    class_names: list[str] | None = None  # None: the class folders of the first --data folder
    left_out: Path | None = None  # a source not trained on: scored whole after training (leave-one-source-out)
    epochs: int = default("epochs")
    batch_size: int = default("batch_size")
    learning_rate: float = default("learning_rate")  # Adam; 1e-3 silences most of conv2 in the first epoch
    patience: int = default("patience")
    seed: int = default("seed")
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    holdout_percent: int = default("holdout_percent")
    balance_power: float = default("balance_power")  # see balancing_weights
    scene_weight: float = default("scene_weight")  # scene crops' loss weight relative to folder images (see train)
    scene_min_side: int = 16  # smaller scene faces are too blurry to teach anything
    init_model: Path | None = None  # start from this model's weights (fine-tune / continue) instead of random
    ema_momentum: float = default("ema_momentum")  # > 0: validate, checkpoint and save a moving average of the weights
    crop_faces: str | None = default("crop_faces")  # a detector name: --data images are reduced to their largest face
    verbose: int | str = "auto"
    extra_info: dict = field(default_factory=dict)


def check_writable(out_dir: Path) -> None:
    """Fail before hours of training, not after, if the output folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


def load_training_data(config: TrainingConfig) -> LabelledFaces:
    """Every --data folder (faces cut out) and every --scenes folder's non-held-out face crops, one source each."""
    find_faces = face_finder(config.crop_faces)
    first = config.data_dirs[0] if config.data_dirs else None
    names = config.class_names or (list(SCENE_CLASSES) if config.scenes_dirs or not first else class_folders(first))
    parts = [load_image_folder(d, names, find_faces=find_faces) for d in config.data_dirs]
    for scenes in config.scenes_dirs:
        parts.append(
            load_scene_crops(
                scenes, names, holdout=False, holdout_percent=config.holdout_percent, min_side=config.scene_min_side
            )
        )
    if not any(len(p) for p in parts):
        raise UserError("no training images: give --data and/or --scenes folders")
    return concatenate(parts)


def starting_weights(start: MaskClassifier, class_names: list[str]) -> list[np.ndarray]:
    """`start`'s weights for a model predicting `class_names`: every layer as it is, the output layer's columns
    matched by class name. A class `start` lacks (e.g. mask_weared_incorrect after a 2-class model) starts as a
    copy of without_mask's column made less likely, so fine-tuning a 2-class model into 3 classes works."""
    old = list(start.class_names)
    if not set(old) & set(class_names):
        raise UserError(f"the init model predicts {old}, but the data has classes {class_names}: none in common")
    weights = start.model.get_weights()
    kernel, bias = weights[-2], weights[-1]
    fallback = old.index("without_mask") if "without_mask" in old else 0
    columns = [old.index(name) if name in old else fallback for name in class_names]
    new_bias = bias[columns].copy()
    new_bias[[name not in old for name in class_names]] -= 2.0
    return [*weights[:-2], kernel[:, columns], new_bias]


def train(config: TrainingConfig) -> dict:
    """Train, evaluate and write model, labels, metrics, plots and CSV log to `config.out_dir`."""
    check_writable(config.out_dir)
    keras.utils.set_random_seed(config.seed)
    data = load_training_data(config)
    names = data.class_names
    parts, split_method = split(data, config)
    log.info("images per split: %s", {k: len(v) for k, v in parts.items()})

    model = build_model(len(names))
    if config.init_model is not None:
        model.set_weights(starting_weights(MaskClassifier.load(config.init_model), names))
        log.info("starting from the weights of %s", config.init_model)
    started = time.perf_counter()
    history = fit(model, data, parts, config)
    seconds = time.perf_counter() - started

    classifier = MaskClassifier(model, names)
    test_idx = parts["test"]
    predicted, metrics = report(classifier, data, parts, config)
    silent = silent_channels(model, data.images[parts["train"]])
    warn_if_silent(model, silent)
    metrics.update(run_info(config, data, split_method, history, seconds, model, silent))
    save_artifacts(model, names, metrics, history, config.out_dir)
    plot_mistakes(data.images[test_idx], data.labels[test_idx], predicted, names, config.out_dir / "mistakes.png")
    (config.out_dir / "best.weights.h5").unlink(missing_ok=True)
    return metrics


def fit(model: keras.Model, data: LabelledFaces, parts: dict[str, np.ndarray], config: TrainingConfig) -> dict:
    """Compile and fit `model` on the train split, validating on the validation split; the Keras history."""
    train_idx, val_idx, n = parts["train"], parts["validation"], len(data.class_names)
    weights = training_weights(data, train_idx, config)
    train_ds = make_dataset(data.images[train_idx], data.labels[train_idx], n, config, augment=True, weights=weights)
    val_ds = make_dataset(data.images[val_idx], data.labels[val_idx], n, config, augment=False)
    model.compile(
        optimizer=keras.optimizers.Adam(
            config.learning_rate, use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum
        ),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    checkpoint = config.out_dir / "best.weights.h5"  # survives an interrupted run; removed once the model is saved
    # With EMA the averaged weights are swapped in at each epoch's end, so validation, checkpoint and early
    # stopping all judge (and keep) the average rather than the last step's weights.
    callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_momentum > 0 else []
    callbacks += [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True, save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=1e-5),
        keras.callbacks.CSVLogger(config.out_dir / "training_log.csv"),
    ]
    # Keras warns that it ignores shuffle=True for a tf.data input; the dataset shuffles itself above.
    warnings.filterwarnings("ignore", message=".*shuffle=True.*tf.data.Dataset", category=UserWarning)
    return model.fit(
        train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, verbose=config.verbose
    ).history


def report(
    classifier: MaskClassifier, data: LabelledFaces, parts: dict[str, np.ndarray], config: TrainingConfig
) -> tuple[np.ndarray, dict]:
    """The test split's predictions, and the scores of the test split (all, per source), each scenes folder's
    held-out crops and the left-out source, with the image counts behind them."""
    names = data.class_names
    predicted, scores = score_split(classifier, data, parts["test"])
    metrics = {"classes": names, **scores}
    counts = {k: counts_by_source(data, v) for k, v in parts.items()}
    for scenes in config.scenes_dirs:
        holdout = load_real_holdout(scenes, names, config.holdout_percent)
        if len(holdout):
            real = metrics.setdefault("real_holdout", {})
            real[scenes.name] = score(holdout.labels, classifier.predict_indices(holdout.images), names)
            counts[f"real_holdout/{scenes.name}"] = holdout.counts()
    if config.left_out is not None:
        metrics["left_out"] = dict([score_left_out(classifier, config)])
    metrics["counts"] = counts
    return predicted, metrics


def warn_if_silent(model: keras.Model, silent: dict[str, list[int]]) -> None:
    """Most channels of a layer never firing means the learning rate killed them (dying ReLU)."""
    totals = {layer.name: layer.filters for layer in model.layers if layer.name in silent}
    for name, channels in silent.items():
        if len(channels) > totals[name] // 2:
            log.warning(
                "%s: %d of %d channels never fire on the training images (dying ReLU): try a lower --learning-rate",
                name,
                len(channels),
                totals[name],
            )


def score_left_out(classifier: MaskClassifier, config: TrainingConfig) -> tuple[str, dict]:
    """Scores on all of the source training left out: a class folder or a scenes folder (faces >= 32 px)."""
    source = config.left_out
    if (source / "annotations").is_dir():
        return score_scenes(classifier, source, config.holdout_percent, all_images=True)
    return score_folder(classifier, source, config.crop_faces)


def evaluate_test_split(model_path: Path, config: TrainingConfig) -> dict:
    """Score a model on the test split that training with `config` holds out (same data, seed and hold-out),
    to re-measure a trained model's report, e.g. with faces cut out differently."""
    data = load_training_data(config)
    classifier = load_for(model_path, data.class_names)
    parts, _ = split(data, config)
    _, scores = score_split(classifier, data, parts["test"])
    kind = folder_kind(config.crop_faces)
    results = {f"test split ({kind})": scores["test"]}
    results.update({f"test split, {source}": s for source, s in scores["test_by_source"].items()})
    return results
