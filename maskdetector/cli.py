"""Command-line pieces app.py and detect.py share, so their detector flags and error style cannot drift apart."""

import argparse
from typing import NoReturn

from maskdetector.detection import DETECTORS


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end like every other bad input: one `error:` line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def add_analyzer_options(parser: argparse.ArgumentParser) -> None:
    """--model, --detector and the Haar flags; defaults come from parser.set_defaults() with settings.DEFAULTS."""
    add = parser.add_argument
    add("--model", help="trained model file (default %(default)s)")
    add("--detector", choices=sorted(DETECTORS), help="face detector (default %(default)s)")
    add("--cascade", help="Haar cascade XML (default: haarcascades/ in the project, else OpenCV's bundled one)")
    add("--scale-factor", type=float, help="Haar image pyramid step, > 1.0 (default %(default)s)")
    add("--min-neighbors", type=int, help="Haar detections needed to accept a face (default %(default)s)")
    add("--min-face-size", type=int, help="smallest face to detect, in pixels (default %(default)s)")
