"""Train/validation/test splits: made within each source, stratified by class, copies of one photo together."""

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from maskdetector.errors import UserError
from maskdetector.training.datasets import LabelledFaces, copy_groups

if TYPE_CHECKING:  # the config type only: trainer imports this module
    from maskdetector.training.trainer import TrainingConfig

log = logging.getLogger(__name__)


def split(data: LabelledFaces, config: "TrainingConfig") -> tuple[dict[str, np.ndarray], str]:
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


def counts_by_source(data: LabelledFaces, idx: np.ndarray) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for i in idx:
        per_class = out.setdefault(data.sources[i], dict.fromkeys(data.class_names, 0))
        per_class[data.class_names[data.labels[i]]] += 1
    return out
