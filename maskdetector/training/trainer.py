"""Training the mask classifier: data split, tf.data input pipeline, augmentation, fit, report.

Reads top to bottom: `train()` loads every image once into memory, splits it (stratified, seeded, copies
of one photo together), fits `build_model()` with checkpointing and early stopping on validation loss of a
moving average of the weights, scores the untouched test split (and real held-out scene crops when given)
and writes the artifacts to the output folder.
"""

import json
import logging
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from maskdetector.constants import (
    COLOR_ORDER,
    FACE_MARGIN,
    HOLDOUT_PERCENT,
    INPUT_SIZE,
    LABELS_FILENAME,
    METRICS_FILENAME,
    MODEL_FILENAME,
)
from maskdetector.errors import UserError
from maskdetector.training.datasets import (
    SCENE_CLASSES,
    LabelledFaces,
    class_folders,
    concatenate,
    copy_groups,
    load_image_folder,
    load_scene_crops,
)
from maskdetector.training.metrics import (
    format_scores,
    plot_confusion_matrix,
    plot_mistakes,
    plot_training_curves,
    score,
)
from maskdetector.types import Box
from maskdetector.vision.classifier import MaskClassifier
from maskdetector.vision.detectors import create_detector
from maskdetector.vision.model import build_model, silent_channels

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE

# Real faces measured for the report: crops with both sides at least this long (webcam faces are large).
REAL_EVAL_MIN_SIDE = 32


@dataclass
class TrainingConfig:
    data_dirs: list[Path]
    out_dir: Path
    scenes_dirs: list[Path] = field(default_factory=list)  # PASCAL VOC scenes: non-held-out face crops train
    class_names: list[str] | None = None  # None: the class folders of the first --data folder
    left_out: Path | None = None  # a source not trained on: scored whole after training (leave-one-source-out)
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 3e-4  # Adam; 1e-3 silences most of conv2 in the first epoch (see model.silent_channels)
    patience: int = 6
    seed: int = 42
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    holdout_percent: int = HOLDOUT_PERCENT
    balance_power: float = 0.5  # see balancing_weights
    scene_weight: float = 1.5  # scene crops' loss weight relative to folder images, after balancing (see train)
    scene_min_side: int = 16  # smaller scene faces are too blurry to teach anything
    init_model: Path | None = None  # start from this model's weights (fine-tune / continue) instead of random
    ema_momentum: float = 0.99  # > 0: validate, checkpoint and save an exponential moving average of the weights
    crop_faces: str | None = "blazeface"  # a detector name: --data images are reduced to their largest face
    verbose: int | str = "auto"
    extra_info: dict = field(default_factory=dict)


def build_augmentation(seed: int) -> keras.Sequential:
    """Random changes applied to training batches only: geometry, light, blur and colour."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.04, fill_mode="reflect", seed=seed),
            layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed),
            layers.RandomShear(x_factor=0.05, y_factor=0.05, seed=seed),
            layers.RandomZoom((-0.15, 0.15), fill_mode="reflect", seed=seed),
            layers.RandomBrightness(0.15, seed=seed),
            layers.RandomContrast(0.2, seed=seed),
            layers.RandomSaturation((0.35, 0.65), seed=seed),
            # masks come in every colour and print: hue rotation and some greyscale keep the model off colour
            layers.RandomHue(0.25, value_range=(0, 255), seed=seed),
            layers.RandomGrayscale(0.1, seed=seed),
            layers.RandomGaussianBlur(factor=0.3, sigma=(0.0, 1.0), seed=seed),
            # a hand, a scarf or a logo over part of the face must not decide the label
            layers.RandomErasing(factor=0.25, scale=(0.02, 0.1), fill_value=127.0, value_range=(0, 255), seed=seed),
        ],
        name="augmentation",
    )


def check_writable(out_dir: Path) -> None:
    """Fail before hours of training, not after, if the output folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


def load_real_holdout(scenes_dir: Path, class_names: list[str], holdout_percent: int) -> LabelledFaces:
    """Face crops (both sides >= REAL_EVAL_MIN_SIDE) of the scene images training never sees: the real-photo test."""
    return load_scene_crops(
        scenes_dir, class_names, holdout=True, holdout_percent=holdout_percent, min_side=REAL_EVAL_MIN_SIDE
    )


def face_finder(detector: str | None) -> Callable[[np.ndarray], list[Box]] | None:
    """The `detect` of the named face detector, for cutting faces out of folder images (None: keep them whole)."""
    return create_detector(detector).detect if detector else None


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


def load_for(model_path: Path, class_names: list[str]) -> MaskClassifier:
    """Load a model that must predict exactly the data's classes (UserError otherwise)."""
    classifier = MaskClassifier.load(model_path)
    if list(classifier.class_names) != class_names:
        raise UserError(f"{model_path} predicts {list(classifier.class_names)}, but the data has classes {class_names}")
    return classifier


def folder_kind(crop_faces: str | None) -> str:
    """How class-folder images were read, for the report."""
    if not crop_faces:
        return "class folders, whole images"
    return f"class folders, the largest face cut out by {crop_faces} (margin {FACE_MARGIN}); whole if none found"


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


def split(data: LabelledFaces, config: TrainingConfig) -> tuple[dict[str, np.ndarray], str]:
    """Indices of train/validation/test, made within each source (so adding or leaving out a source never moves
    another source's images between splits), stratified by class, reproducible with the seed, and how they
    were made (for the report).

    Copies of one photo (and crops of one scene photo) stay together in one split (see `copy_groups`)
    unless that cannot give every split every class of the source.
    """
    groups = copy_groups(data)
    log.info("%d images make %d groups of copies", len(data), len(set(groups)))
    sources = np.array(data.sources)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    plain = False
    for source in sorted(set(data.sources)):
        idx = np.flatnonzero(sources == source)
        n_classes = len(set(data.labels[idx]))
        n_test = max(n_classes, round(config.test_fraction * len(idx)))
        n_val = max(n_classes, round(config.val_fraction * len(idx)))
        if len(idx) - n_test - n_val < n_classes:
            raise UserError(f"only {len(idx)} images in {source}: too few to split into train, validation and test")
        rest, test, plain_test = cut(idx, n_test, data.labels, groups, config.seed)
        train, val, plain_val = cut(rest, n_val, data.labels, groups, config.seed)
        plain |= plain_test or plain_val
        for name, chosen in (("train", train), ("validation", val), ("test", test)):
            parts[name].append(chosen)
    method = "within each source, stratified by class; " + (
        "copies of one photo may be on both sides (too few groups of copies)"
        if plain
        else "copies of one photo kept in one split (datasets.copy_groups)"
    )
    return {name: np.sort(np.concatenate(chosen)) for name, chosen in parts.items()}, method


def cut(
    idx: np.ndarray, size: int, labels: np.ndarray, groups: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Hold about `size` of the images `idx` out: one fold of a stratified group k-fold, whose both sides have
    every class of `idx`; failing that a plain stratified split (True as the third value)."""
    n_classes = len(set(labels[idx]))
    folds = StratifiedGroupKFold(max(2, round(len(idx) / size)), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members"
        try:
            rest, held = next(folds.split(idx, labels[idx], groups[idx]))
            if len(held) <= 2 * size and all(len(set(labels[idx[p]])) == n_classes for p in (rest, held)):
                return idx[rest], idx[held], False
        except ValueError:  # fewer groups than folds
            pass
    log.warning("copies of one photo cannot be kept apart in %d images: a plain split instead", len(idx))
    try:
        rest, held = train_test_split(idx, test_size=size, random_state=seed, stratify=labels[idx])
    except ValueError:  # a class too small to be split: a plain shuffled split
        rest, held = train_test_split(idx, test_size=size, random_state=seed)
    return rest, held, True


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    config: TrainingConfig,
    *,
    augment: bool,
    weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Decoded images already sit in memory; batches are augmented in parallel and prefetched."""
    columns = (images, keras.utils.to_categorical(labels, n_classes))
    ds = tf.data.Dataset.from_tensor_slices(columns if weights is None else (*columns, weights))
    if augment:
        ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).map(lambda x, *rest: (tf.cast(x, tf.float32), *rest), num_parallel_calls=AUTOTUNE)
    if augment:
        augmentation = build_augmentation(config.seed)
        ds = ds.map(lambda x, *rest: (augmentation(x, training=True), *rest), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def balancing_weights(labels: np.ndarray, sources: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Per-image loss weights that (partly) balance the classes within each data source; mean weight 1.

    A class with n images of its source weighs n**-power per image: power 1 balances the classes fully,
    0 leaves them as they are. Scene crops are mostly masked faces: unweighted, the model learns "real photo
    => mask"; fully balanced, each rare unmasked face weighs six masked ones and real masks get called
    unmasked. Each source keeps its share of the total weight.
    """
    weights = np.empty(len(labels), np.float32)
    for source in np.unique(sources):
        in_source = sources == source
        present, sizes = np.unique(labels[in_source], return_counts=True)
        per_image = sizes.astype(np.float64) ** -power
        per_image *= in_source.sum() / (per_image * sizes).sum()
        for label, weight in zip(present, per_image, strict=True):
            weights[in_source & (labels == label)] = weight
    return weights


def training_weights(data: LabelledFaces, idx: np.ndarray, config: TrainingConfig) -> np.ndarray:
    """Loss weights of the images `idx`: classes balanced within each source (`balancing_weights`), then
    scene crops times `config.scene_weight`: the app sees real faces, and the folder images are partly drawn-on."""
    sources = np.array(data.sources)[idx]
    weights = balancing_weights(data.labels[idx], sources, config.balance_power)
    weights[~np.isin(sources, [d.name for d in config.data_dirs])] *= config.scene_weight
    return weights


def counts_by_source(data: LabelledFaces, idx: np.ndarray) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for i in idx:
        per_class = out.setdefault(data.sources[i], dict.fromkeys(data.class_names, 0))
        per_class[data.class_names[data.labels[i]]] += 1
    return out


def train(config: TrainingConfig) -> dict:
    """Train, evaluate and write model, labels, metrics, plots and CSV log to `config.out_dir`."""
    out = config.out_dir
    check_writable(out)
    keras.utils.set_random_seed(config.seed)

    data = load_training_data(config)
    names = data.class_names
    parts, split_method = split(data, config)
    log.info("images per split: %s", {k: len(v) for k, v in parts.items()})

    train_idx, val_idx = parts["train"], parts["validation"]
    weights = training_weights(data, train_idx, config)
    train_ds = make_dataset(
        data.images[train_idx], data.labels[train_idx], len(names), config, augment=True, weights=weights
    )
    val_ds = make_dataset(data.images[val_idx], data.labels[val_idx], len(names), config, augment=False)

    model = build_model(len(names))
    if config.init_model is not None:
        model.set_weights(starting_weights(MaskClassifier.load(config.init_model), names))
        log.info("starting from the weights of %s", config.init_model)
    model.compile(
        optimizer=keras.optimizers.Adam(
            config.learning_rate, use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum
        ),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    checkpoint = out / "best.weights.h5"  # survives an interrupted run; removed once the model is saved
    # With EMA the averaged weights are swapped in at each epoch's end, so validation, checkpoint and early
    # stopping all judge (and keep) the average rather than the last step's weights.
    callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_momentum > 0 else []
    callbacks += [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True, save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=1e-5),
        keras.callbacks.CSVLogger(out / "training_log.csv"),
    ]
    # Keras warns that it ignores shuffle=True for a tf.data input; the dataset shuffles itself above.
    warnings.filterwarnings("ignore", message=".*shuffle=True.*tf.data.Dataset", category=UserWarning)
    started = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=config.verbose,
    ).history
    training_seconds = time.perf_counter() - started

    test_idx = parts["test"]
    classifier = MaskClassifier(model, names)
    predicted, scores = score_split(classifier, data, test_idx)
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

    silent = silent_channels(model, data.images[train_idx])
    totals = {layer.name: layer.filters for layer in model.layers if layer.name in silent}
    for name, channels in silent.items():
        if len(channels) > totals[name] // 2:
            log.warning(
                "%s: %d of %d channels never fire on the training images (dying ReLU): try a lower --learning-rate",
                name,
                len(channels),
                totals[name],
            )

    val_losses = history["val_loss"]
    metrics.update(
        {
            "counts": counts,
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
            "silent_channels": {name: {"silent": len(c), "of": totals[name]} for name, c in silent.items()},
            "skipped_files": data.skipped,
            "split": split_method,
            "seed": config.seed,
            "epochs_requested": config.epochs,
            "epochs_run": len(val_losses),
            "best_epoch": int(np.argmin(val_losses)) + 1,
            "best_val_loss": float(np.min(val_losses)),
            "training_seconds": round(training_seconds, 1),
            "seconds_per_epoch": round(training_seconds / max(1, len(val_losses)), 1),
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
    )
    save_artifacts(model, names, metrics, history, out, silent)
    plot_mistakes(data.images[test_idx], data.labels[test_idx], predicted, names, out / "mistakes.png")
    checkpoint.unlink(missing_ok=True)
    return metrics


def score_left_out(classifier: MaskClassifier, config: TrainingConfig) -> tuple[str, dict]:
    """Scores on all of the source training left out: a class folder or a scenes folder (faces >= 32 px)."""
    source = config.left_out
    if (source / "annotations").is_dir():
        return score_scenes(classifier, source, config.holdout_percent, all_images=True)
    return score_folder(classifier, source, config.crop_faces)


def score_split(classifier: MaskClassifier, data: LabelledFaces, idx: np.ndarray) -> tuple[np.ndarray, dict]:
    """Predictions for the images `idx` of `data`, and their scores: all together ("test") and per data source
    ("test_by_source")."""
    predicted = classifier.predict_indices(data.images[idx])
    truth, sources, names = data.labels[idx], np.array(data.sources)[idx], data.class_names
    return predicted, {
        "test": score(truth, predicted, names),
        "test_by_source": {s: score(truth[sources == s], predicted[sources == s], names) for s in sorted(set(sources))},
    }


def save_artifacts(
    model: keras.Model,
    names: list[str],
    metrics: dict,
    history: dict,
    out: Path,
    silent_channels: dict[str, list[int]],
) -> None:
    """Write everything next to each other; the model file is replaced atomically, without optimizer state.

    labels.json lists the channels that never fired on the training images: the fast classifier leaves them out.
    """
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
        "silent_channels": silent_channels,
    }
    (out / LABELS_FILENAME).write_text(json.dumps(labels, indent=2) + "\n")
    (out / METRICS_FILENAME).write_text(json.dumps(metrics, indent=2) + "\n")
    plot_training_curves(history, out / "training_curves.png")
    plot_confusion_matrix(metrics["test"]["confusion_matrix"], names, out / "confusion_matrix.png")


def score_folder(classifier: MaskClassifier, data_dir: Path, crop_faces: str | None) -> tuple[str, dict]:
    """A title and the scores of a labelled folder, faces cut out as in training."""
    data = load_image_folder(data_dir, classifier.class_names, face_finder(crop_faces))
    scores = score(data.labels, classifier.predict_indices(data.images), data.class_names)
    return f"{data_dir} ({folder_kind(crop_faces)})", scores


def score_scenes(
    classifier: MaskClassifier, scenes_dir: Path, holdout_percent: int, all_images: bool
) -> tuple[str, dict]:
    """A title and the scores of a scene folder's face crops (>= REAL_EVAL_MIN_SIDE): its held-out images, or
    all of them for a source the model never saw. Faces of a class the model lacks (worn incorrectly, for a
    2-class model) are kept: they count as not compliant."""
    names = classifier.class_names
    truth = sorted(set(names) | set(SCENE_CLASSES), key=list(SCENE_CLASSES).index)
    crops = concatenate(
        [
            load_scene_crops(scenes_dir, truth, holdout=h, holdout_percent=holdout_percent, min_side=REAL_EVAL_MIN_SIDE)
            for h in ((True, False) if all_images else (True,))
        ]
    )
    if not len(crops):
        raise UserError(f"no face crops of the model's classes in {scenes_dir}")
    predicted = np.array([truth.index(names[k]) for k in classifier.predict_indices(crops.images)], np.int64)
    which = "all" if all_images else "held-out"
    return f"{scenes_dir} ({which} face crops >= {REAL_EVAL_MIN_SIDE} px)", score(crops.labels, predicted, truth)


def evaluate(
    model_path: Path,
    data_dirs: Sequence[Path],
    scenes_dirs: Sequence[Path],
    holdout_percent: int,
    crop_faces: str | None,
    *,
    all_scene_images: bool = False,
) -> dict:
    """Scores of an existing model on labelled folders and on scene folders (see score_folder, score_scenes)."""
    classifier = MaskClassifier.load(model_path)
    results = dict(score_folder(classifier, d, crop_faces) for d in data_dirs)
    results.update(score_scenes(classifier, d, holdout_percent, all_scene_images) for d in scenes_dirs)
    return results


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


def summary(metrics: dict) -> str:
    """The report of a training run as terminal text."""
    blocks = [format_scores("test split", metrics["test"])]
    blocks += [format_scores(f"test split, {s}", m) for s, m in metrics["test_by_source"].items()]
    for source, scores in metrics.get("real_holdout", {}).items():
        blocks.append(format_scores(f"real held-out scene crops, {source}", scores))
    for title, scores in metrics.get("left_out", {}).items():
        blocks.append(format_scores(f"left out of training: {title}", scores))
    blocks.append(
        f"trained {metrics['epochs_run']} epochs in {metrics['training_seconds']} s "
        f"({metrics['seconds_per_epoch']} s/epoch), best epoch {metrics['best_epoch']}"
    )
    if metrics.get("silent_channels"):
        counts = ", ".join(f"{name} {c['silent']}/{c['of']}" for name, c in metrics["silent_channels"].items())
        blocks.append(f"channels that never fire on the training images: {counts}")
    return "\n".join(blocks)
