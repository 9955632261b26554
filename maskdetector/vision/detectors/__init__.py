"""Face detection behind a small interface: Haar cascades, MTCNN and BlazeFace, chosen by name.

A detector takes a BGR frame and returns face boxes (x, y, w, h) inside the frame; `create_detector`
maps a name from the command line to an implementation and hands it the settings it takes. Settings
meant for other detectors (e.g. `min_neighbors` for MTCNN) are left out, so every front end can pass
the whole settings table.
"""

import inspect
import logging
from collections.abc import Callable
from functools import partial

from maskdetector.errors import UserError
from maskdetector.settings import default
from maskdetector.types import FaceDetector
from maskdetector.vision.detectors.blazeface import BlazeFaceDetector, Calibration
from maskdetector.vision.detectors.combined import CombinedDetector
from maskdetector.vision.detectors.haar import HaarDetector, MultiHaarDetector
from maskdetector.vision.detectors.mtcnn import MtcnnDetector

log = logging.getLogger(__name__)

# The default detector's calibration over its 4 views (full-range, full-range mirrored, back, back mirrored), the
# number of views and O-Net: fitted by `evaluate.py calibrate --data ../shared/datasets/scenes-dev --data
# ../shared/datasets/ilc2021` on the images of both folders that are not held out (docs/detectors.md).
BLAZEFACE_CALIBRATION = Calibration(
    bias=5.987, view_weights=(0.4503, 0.5479, 0.4449, 0.5177), views_seen_weight=-1.0969, verifier_weight=0.3136
)
# Median annotated/BlazeFace box width and height and centre offset over both folders' non-held-out images: a
# compromise between scenes-dev's boxes (chin included) and ilc2021's (about the whole face).
BLAZEFACE_BOX = {"box_scale": (0.93, 1.08), "box_shift": 0.04}


def blazeface_and_mtcnn(
    min_confidence: float | None = None, min_face_size: int = default("min_face_size")
) -> CombinedDetector:
    """`blazeface`, plus MTCNN (at its own default confidence) for the faces it missed: the most faces found on
    scenes-dev, at MTCNN's speed. `min_confidence` is BlazeFace's."""
    blazeface = DETECTORS["blazeface"](min_confidence=min_confidence, min_face_size=min_face_size)
    # A new face is an MTCNN box BlazeFace's own box merging would not have merged into one of its faces.
    return CombinedDetector(blazeface, MtcnnDetector(min_face_size=min_face_size), overlap=blazeface.nms_threshold)


DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "haar": HaarDetector,
    "haar-multi": MultiHaarDetector,
    "mtcnn": MtcnnDetector,
    # Both BlazeFace models on the frame and its mirror image; every view's faces kept and scored by the
    # calibration (views' scores + O-Net): finds masked faces that only some views see.
    "blazeface": partial(
        BlazeFaceDetector,
        models="full+back",
        mirror=True,
        calibration=BLAZEFACE_CALIBRATION,
        verifier=True,
        **BLAZEFACE_BOX,
    ),
    # The same four views fused by their mean score (the default before calibration): for comparison.
    "blazeface-mean": partial(BlazeFaceDetector, models="full+back", mirror=True),
    # Google's full-range model alone, one pass: the fastest.
    "blazeface-fast": partial(BlazeFaceDetector, models="full"),
    # BlazeFace's boxes plus MTCNN's for faces BlazeFace missed: the most faces found, for photos rather than video.
    "blazeface+mtcnn": blazeface_and_mtcnn,
}


def detector_options(name: str) -> set[str]:
    """The keyword settings the detector registered under `name` takes."""
    parameters = inspect.signature(DETECTORS[name]).parameters.values()
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def create_detector(name: str, **settings: object) -> FaceDetector:
    """Build the detector registered under `name` with the settings it takes; UserError for an unknown name.

    Settings the detector does not take (another detector's) are ignored, so callers can pass them all.
    """
    key = name.lower()
    if key not in DETECTORS:
        raise UserError(f"unknown detector {name!r}; available: {', '.join(sorted(DETECTORS))}")
    accepted = detector_options(key)
    ignored = sorted(set(settings) - accepted)
    if ignored:
        log.debug("detector %s ignores %s", key, ", ".join(ignored))
    return DETECTORS[key](**{k: v for k, v in settings.items() if k in accepted})
