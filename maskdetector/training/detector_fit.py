"""Fitting BlazeFace's calibration (`blazeface.Calibration`) on annotated scenes, never on held-out images.

Every candidate the detector's views report on an image is labelled by the annotations: a face if greedy IoU
matching (as the scene evaluation does, IoU >= MATCH_IOU, against every annotated face of any size) pairs it with
an annotated face, not a face otherwise. A logistic regression over the candidates' features then gives the
weights. Unannotated real faces (background faces some folders leave out) count as "not a face", so the
calibration learns each folder's annotation habit along with what a face looks like.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from maskdetector.training.datasets import SceneAnnotation
from maskdetector.vision.boxes import greedy_match
from maskdetector.vision.detectors.blazeface import BlazeFaceDetector, Calibration, Candidate
from maskdetector.vision.preprocessing import read_image

log = logging.getLogger(__name__)

MATCH_IOU = 0.3


@dataclass
class LabelledCandidates:
    """One image's candidates and whether each is an annotated face."""

    scene: SceneAnnotation
    candidates: list[Candidate]
    is_face: np.ndarray


def label_candidates(detector: BlazeFaceDetector, scenes: Iterable[SceneAnnotation]) -> list[LabelledCandidates]:
    """The detector's candidates on every readable image, labelled by the annotations."""
    labelled = []
    for scene in scenes:
        frame = read_image(scene.image_path)
        if frame is None:
            log.warning("skipping unreadable image %s", scene.image_path)
            continue
        candidates = detector.candidates(frame)
        matches = greedy_match([f.box for f in scene.faces], [c.box for c in candidates], MATCH_IOU)
        is_face = np.zeros(len(candidates), bool)
        is_face[[j for _, j in matches]] = True
        labelled.append(LabelledCandidates(scene, candidates, is_face))
    return labelled


def fit_calibration(labelled: Iterable[LabelledCandidates], verifier: bool) -> Calibration:
    """Logistic-regression weights over the candidates' features (L2, C=1, scikit-learn's defaults)."""
    from sklearn.linear_model import LogisticRegression

    rows = [item for item in labelled if item.candidates]
    per_view = np.concatenate([np.stack([c.per_view for c in item.candidates]) for item in rows])
    verified = np.array([c.verifier for item in rows for c in item.candidates]) if verifier else None
    is_face = np.concatenate([item.is_face for item in rows])
    if is_face.all() or not is_face.any():
        raise ValueError("fitting a calibration needs candidates of both kinds, faces and non-faces")
    model = LogisticRegression(max_iter=5000).fit(Calibration.features(per_view, verified), is_face)
    weights = [round(float(w), 4) for w in model.coef_[0]]
    views = per_view.shape[1]
    return Calibration(
        bias=round(float(model.intercept_[0]), 4),
        view_weights=tuple(weights[:views]),
        views_seen_weight=weights[views],
        verifier_weight=weights[views + 1] if verifier else 0.0,
    )
