"""Command-line pieces app.py and detect.py share, so their detector flags and error style cannot drift apart."""

import argparse
from collections.abc import Mapping
from typing import NoReturn

from maskdetector.constants import CLASSIFIER_BACKENDS
from maskdetector.settings import DEFAULTS, from_env
from maskdetector.vision.detectors import DETECTORS


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end like every other bad input: one `error:` line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


class AppendOverDefault(argparse.Action):
    """A flag that may be repeated: its first use replaces the default (or environment) value, later uses add
    to it, so `--source a --source b` gives ["a", "b"] and no flag keeps the single default."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, option: str | None = None
    ) -> None:
        current = getattr(namespace, self.dest)
        setattr(namespace, self.dest, [*current, values] if isinstance(current, list) else [values])


def add_analyzer_options(parser: argparse.ArgumentParser, extra_detectors: tuple[str, ...] = ()) -> None:
    """--model, --detector and the detector flags; defaults come from parser.set_defaults() with settings.DEFAULTS.

    `extra_detectors` adds choices such as "all" for tools that run several detectors.
    """
    add = parser.add_argument
    add("--model", help="trained model file (default %(default)s)")
    add(
        "--backend",
        choices=CLASSIFIER_BACKENDS,
        help="how the classifier runs (default %(default)s): tflite converts the model in memory and is faster, "
        "keras calls it as it is",
    )
    add(
        "--detector",
        choices=[*sorted(DETECTORS), *extra_detectors],
        help="face detector (default %(default)s): haar and haar-multi are OpenCV cascades; mtcnn, blazeface and "
        "blazeface-fast are neural networks; blazeface+mtcnn adds MTCNN's faces to BlazeFace's (most found, slowest)",
    )
    add("--cascade", help="Haar cascade XML (default: haarcascades/ in the project, else OpenCV's bundled one)")
    add("--scale-factor", type=float, help="haar/haar-multi: image pyramid step, > 1.0 (default %(default)s)")
    add("--min-neighbors", type=int, help="haar/haar-multi: detections needed to accept a face (default %(default)s)")
    add("--min-face-size", type=int, help="smallest face to detect, in pixels (default %(default)s)")
    add(
        "--redetect-every",
        type=int,
        metavar="N",
        help="video and live streams: run the detector on every Nth frame and follow the faces in between; "
        "1 = on every frame (default %(default)s)",
    )
    add(
        "--label-window",
        type=int,
        metavar="N",
        help="video and live streams: label each tracked face by its class probabilities averaged over its last N "
        "frames, so one bad frame does not flip it; 1 = each frame on its own (default %(default)s)",
    )
    add(
        "--min-confidence",
        type=float,
        help="mtcnn/blazeface: lowest face score to accept, 0-1; 0 = the detector's own default (default %(default)s)",
    )


def set_settings_defaults(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Flag defaults from the settings table overridden by MASKDETECTOR_* variables: the command line wins."""
    parser.set_defaults(**{key.lower(): value for key, value in {**DEFAULTS, **from_env(environ)}.items()})


def settings_from_args(args: argparse.Namespace) -> dict[str, object]:
    """The settings dict (create_app / build_analyzer keys) from parsed flags."""
    return {key: getattr(args, key.lower()) for key in DEFAULTS}
