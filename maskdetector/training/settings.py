"""Every setting of train.py, defined once in `TrainingSettings`: its type, default, range and help.

train.py builds its flags from the fields (cli.add_training_options) and validates them with the model,
TrainingConfig takes its defaults from it, and docs/configuration.md's train.py table is generated from it
(settings_docs.training_markdown; `python -m maskdetector.training.settings` prints it). train.py reads no
environment variables: a run is what its command line says.
"""

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from maskdetector.constants import (
    DEFAULT_DATA_DIR,
    DEFAULT_MODEL_PATH,
    HOLDOUT_PERCENT,
    MODEL_DIR,
    TRAINING_FOLDERS,
    TRAINING_SCENES,
)
from maskdetector.errors import UserError
from maskdetector.settings import flag
from maskdetector.settings_docs import training_markdown
from maskdetector.vision.detectors import DETECTORS

CROP_CHOICES = (*sorted(DETECTORS), "none")


class TrainingSettings(BaseModel):
    """The train.py settings table. Field order is the order of --help and docs/configuration.md."""

    model_config = ConfigDict(extra="forbid")

    data: list[Path] | None = Field(
        None,
        description="folder with one sub-folder of face images per class; repeat to combine folders (without "
        "--data and --scenes: the shipped model's sources observations, chandrikadeb7, scenes-dev and "
        "ilc2021 in ../shared/datasets; dataset/ for --evaluate-only)",
    )
    scenes: list[Path] = Field(
        [],
        description="PASCAL VOC folder (images/ + annotations/): train on face crops of its non-held-out images "
        "and report accuracy on the held-out ones; repeat for several sources",
    )
    classes: str | None = Field(
        None,
        description="comma-separated classes to train (by default the scene classes with_mask, without_mask, "
        "mask_weared_incorrect when --scenes is given, else the first --data folder's class folders)",
    )
    out: Path = Field(MODEL_DIR, description="output folder")
    epochs: int = Field(20, ge=1, description="most epochs to train (early stopping may end sooner)")
    batch_size: int = Field(32, ge=1, description="images per training batch")
    learning_rate: float = Field(
        3e-4, gt=0, description="Adam's initial learning rate (1e-3 leaves most conv2 channels dead)"
    )
    patience: int = Field(6, ge=1, description="early-stopping patience in epochs")
    seed: int = Field(42, ge=0, description="seed of the split, the shuffling and the initial weights")
    balance_power: float = Field(
        0.5,
        ge=0,
        le=1,
        description="class weighting within each data source: 1 balances the classes fully, 0 not at all",
    )
    scene_weight: float = Field(
        1.5,
        gt=0,
        description="loss weight of each --scenes face crop relative to a --data image, after the class weighting "
        "(above 1: real faces count more)",
    )
    holdout_percent: int = Field(HOLDOUT_PERCENT, ge=0, lt=100, description="share of --scenes images never trained on")
    init_model: Path | None = Field(
        None,
        description="start from this model's weights instead of random ones (fine-tune on your photos, or continue "
        "a run)",
    )
    ema_momentum: float = Field(
        0.99,
        ge=0,
        lt=1,
        description="validate and save an exponential moving average of the weights with this momentum (0 saves "
        "the weights as trained)",
    )
    crop_faces: Literal[CROP_CHOICES] = Field(  # type: ignore[valid-type]
        "blazeface",
        description="cut the largest face out of every --data image with this face detector, as the app crops the "
        "faces it classifies (images without a face stay whole); none: use the images whole",
    )
    leave_out: str | None = Field(
        None,
        description="train without this source (a --data or --scenes folder's name) and score the model on all of "
        "it: the leave-one-source-out test of how the model does on a source it never saw",
    )
    evaluate_only: bool = Field(False, description="score --model on --data/--scenes, no training")
    model: Path = Field(DEFAULT_MODEL_PATH, description="model for --evaluate-only")
    all_scene_images: bool = Field(
        False,
        description="with --evaluate-only: score every image of the --scenes folders, not only the held-out ones "
        "(a source the model never trained on: the leave-one-source-out test)",
    )
    test_split: bool = Field(
        False,
        description="with --evaluate-only: score only the test split that training on the same --data, --scenes, "
        "--seed and --holdout-percent holds out (re-measures a trained model's report)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "TrainingSettings":
        if self.leave_out and self.evaluate_only:
            raise ValueError("--leave-out trains: it does not go with --evaluate-only")
        if self.leave_out and self.left_out is None:
            raise ValueError(f"--leave-out {self.leave_out}: not one of the sources")
        for name in ("test_split", "all_scene_images"):
            if getattr(self, name) and not self.evaluate_only:
                raise ValueError(f"{flag(name)} goes with --evaluate-only")
        return self

    def _named_sources(self) -> tuple[list[Path], list[Path]]:
        """--data and --scenes as given; training with neither reads the shipped model's sources."""
        if not self.evaluate_only and not self.data and not self.scenes:
            return list(TRAINING_FOLDERS), list(TRAINING_SCENES)
        return list(self.data or []), list(self.scenes)

    @property
    def left_out(self) -> Path | None:
        """The source --leave-out names, or None."""
        data, scenes = self._named_sources()
        return next((path for path in [*data, *scenes] if path.name == self.leave_out), None)

    @property
    def scenes_dirs(self) -> list[Path]:
        return [path for path in self._named_sources()[1] if path != self.left_out]

    @property
    def data_dirs(self) -> list[Path]:
        """The image folders to read; dataset/ when no source is left (a run on --scenes alone reads none)."""
        data = [path for path in self._named_sources()[0] if path != self.left_out]
        return data or ([] if self.scenes_dirs else [DEFAULT_DATA_DIR])

    def training_config(self) -> dict[str, Any]:
        """The keyword arguments of trainer.TrainingConfig."""
        same = ("epochs", "batch_size", "learning_rate", "patience", "seed", "holdout_percent", "init_model")
        return {
            "data_dirs": self.data_dirs,
            "out_dir": self.out,
            "scenes_dirs": self.scenes_dirs,
            "class_names": None if self.classes is None else [c.strip() for c in self.classes.split(",") if c.strip()],
            "left_out": self.left_out,
            "crop_faces": None if self.crop_faces == "none" else self.crop_faces,
            **{name: getattr(self, name) for name in (*same, "balance_power", "scene_weight", "ema_momentum")},
        }


FIELDS = TrainingSettings.model_fields


def default(name: str) -> Any:
    """A training setting's default, for TrainingConfig: one default, train.py's."""
    return FIELDS[name].default


def validate(given: dict[str, object]) -> TrainingSettings:
    """The settings from train.py's flags (strings as given, absent ones take their defaults); raises UserError
    with one `--flag: problem` part per bad value."""
    try:
        return TrainingSettings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            where = f"{flag(str(error['loc'][0]))}: " if error["loc"] else ""
            problems.append(f"{where}{message}" + (f" (got {error['input']!r})" if error["loc"] else ""))
        raise UserError("; ".join(problems)) from None


if __name__ == "__main__":
    sys.stdout.write(training_markdown(FIELDS))
