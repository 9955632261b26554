"""Command-line flags made from the settings models: the app's, shared by app.py, detect.py and evaluate.py, and
train.py's."""

import argparse
from collections.abc import Iterable
from typing import Literal, get_args, get_origin

from maskdetector.errors import OneLineParser  # noqa: F401 - app.py, detect.py and evaluate.py import it from here
from maskdetector.settings import FIELDS, env_var, flag, resolve, shown_default
from maskdetector.training import settings as training_settings
from maskdetector.vision.detectors import DETECTORS

EPILOG = "Every option can also be set as the environment variable shown in its help; the command line wins."


def add_settings_options(
    parser: argparse.ArgumentParser, names: Iterable[str] = FIELDS, extra_detectors: tuple[str, ...] = ()
) -> None:
    """One flag per setting in `names`, its help, choices and environment variable from the settings model.

    Flags not given stay out of the parsed namespace, so settings_from_args() lets the environment and the
    defaults fill them in. `extra_detectors` adds choices such as "all" for tools that run several detectors.
    """
    for name in names:
        field = FIELDS[name]
        help_text = f"{field.description} (default: {shown_default(name)}; {env_var(name)})".replace("%", "%%")
        options: dict[str, object] = {"default": argparse.SUPPRESS, "help": help_text}
        if field.annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif name == "source":
            options["action"] = "append"
        if name == "detector":
            options["choices"] = [*sorted(DETECTORS), *extra_detectors]
        elif get_origin(field.annotation) is Literal:
            options["choices"] = get_args(field.annotation)
        parser.add_argument(flag(name), **options)


def settings_from_args(args: argparse.Namespace) -> dict[str, object]:
    """The validated settings dict (create_app / build_analyzer keys): flags over environment over defaults."""
    return resolve({name.upper(): value for name, value in vars(args).items() if name in FIELDS})


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """train.py's flags, one per field of the training settings model, its help and choices from the field.

    Flags not given stay out of the parsed namespace and take the model's defaults; the values stay text for
    training_settings.validate() to convert and check, so every range lives in the model.
    """
    for name, field in training_settings.FIELDS.items():
        help_text = f"{field.description} (default: {shown_default(name, training_settings.FIELDS)})"
        options: dict[str, object] = {"default": argparse.SUPPRESS, "help": help_text.replace("%", "%%")}
        if field.annotation is bool:
            options["action"] = "store_true"
        elif any(get_origin(kind) is list for kind in (field.annotation, *get_args(field.annotation))):
            options["action"] = "append"
        elif get_origin(field.annotation) is Literal:
            options["choices"] = get_args(field.annotation)
        parser.add_argument(flag(name), **options)
