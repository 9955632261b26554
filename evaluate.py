"""Measure the whole pipeline on annotated photos: `python evaluate.py scenes --data DIR [--data DIR2 ...]
[--detector NAME|all]`.

Each DIR holds images/ and annotations/*.xml (PASCAL VOC). For each folder and detector it prints face recall
(over all classes and per annotated class), detection precision, label accuracy on the faces found and
end-to-end recall, at IoU 0.3 and 0.5, over all faces and over faces with both sides >= --min-side px, for all
images and for the held-out images (by a hash of the file name, as train.py does: never trained or tuned on).
See maskdetector/training/scene_eval.py for the matching rules.
Bad input ends with one `error: ...` line and exit code 2.
"""

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path

from maskdetector.cli import EPILOG, OneLineParser, add_settings_options, settings_from_args
from maskdetector.constants import HOLDOUT_PERCENT
from maskdetector.errors import UserError
from maskdetector.settings import ANALYZER_SETTINGS
from maskdetector.training.datasets import SceneAnnotation, is_holdout_scene, load_scene_annotations
from maskdetector.vision.detectors import DETECTORS
from maskdetector.vision.tensorflow_runtime import load_tensorflow

IOU_THRESHOLDS = (0.3, 0.5)
# Column headings of the per-class recall, in this order; other annotated classes follow under their own names.
CLASS_HEADINGS = {"with_mask": "mask", "without_mask": "no mask", "mask_weared_incorrect": "worn wrong"}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, object]]:
    parser = OneLineParser(
        description="Evaluate face detection and mask classification on annotated photos.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    scenes = commands.add_parser("scenes", help="photos with PASCAL VOC face boxes (images/ + annotations/)")
    add = scenes.add_argument
    add(
        "--data",
        type=Path,
        action="append",
        required=True,
        help="folder with images/ and annotations/*.xml; repeat it to evaluate several folders",
    )
    add("--holdout-only", action="store_true", help="only the images the classifier was not trained on")
    add(
        "--holdout-percent",
        type=int,
        default=HOLDOUT_PERCENT,
        help="the share of images train.py held out (default %(default)s)",
    )
    add("--min-side", type=int, default=32, help="size subset: faces with both sides >= this (default %(default)s)")
    add("--limit", type=int, default=0, help="only the first N images (0: all), for quick checks")
    add("--json", type=Path, metavar="OUT", help="also write all numbers to this JSON file")
    add_settings_options(scenes, ANALYZER_SETTINGS, extra_detectors=("all",))
    calibrate = commands.add_parser(
        "calibrate", help="fit the blazeface detector's calibration on the images that are not held out"
    )
    calibrate.add_argument("--data", type=Path, action="append", required=True, help="scene folder; repeatable")
    calibrate.add_argument("--holdout-percent", type=int, default=HOLDOUT_PERCENT, help="as for scenes")
    calibrate.add_argument("--min-side", type=int, default=32, help="as for scenes (default %(default)s)")
    add_settings_options(calibrate, ANALYZER_SETTINGS)
    args = parser.parse_args(argv)
    return args, settings_from_args(args)


def format_rows(rows: list[dict]) -> str:
    """The rows as a table; per-class recall columns for every class annotated in any row ('-': no such face)."""
    labels = {label for r in rows for label in r["class_recall"]}
    classes = [c for c in CLASS_HEADINGS if c in labels] + sorted(labels - set(CLASS_HEADINGS))
    headings = [CLASS_HEADINGS.get(c, c) for c in classes]
    widths = [max(8, len(h) + 1) for h in headings]
    lines = [
        f"  {'images':<9}{'faces':<8}{'IoU':>4}{'GT':>6}{'recall':>8}"
        + "".join(f"{h:>{w}}" for h, w in zip(headings, widths, strict=True))
        + f"{'precision':>10}{'label acc':>10}{'(n)':>6}{'end-to-end':>11}"
    ]
    for r in rows:
        recalls = r["class_recall"]
        per_class = "".join(
            f"{recalls[c]:>{w}.3f}" if c in recalls else f"{'-':>{w}}" for c, w in zip(classes, widths, strict=True)
        )
        lines.append(
            f"  {r['images']:<9}{r['subset']:<8}{r['iou']:>4.1f}{r['faces']:>6d}{r['recall']:>8.3f}{per_class}"
            f"{r['precision']:>10.3f}{r['label_accuracy']:>10.3f}{r['labelled']:>6d}{r['end_to_end_recall']:>11.3f}"
        )
    return "\n".join(lines)


def folder_scenes(folder: Path, args: argparse.Namespace) -> list[SceneAnnotation]:
    """The annotated images of one folder that the arguments select; UserError if none."""
    scenes = load_scene_annotations(folder)
    if args.holdout_only:
        scenes = [s for s in scenes if is_holdout_scene(s.image_path, args.holdout_percent)]
    if args.limit:
        scenes = scenes[: args.limit]
    if not scenes:
        raise UserError(f"no images to evaluate in {folder}")
    return scenes


def evaluate_scenes(args: argparse.Namespace, settings: dict[str, object]) -> int:
    load_tensorflow()
    from maskdetector.training.scene_eval import mean_ms, run_scenes, score_scenes
    from maskdetector.vision.analyzers import detector_from_settings
    from maskdetector.vision.classifier import MaskClassifier  # imports TensorFlow: after the cheap checks

    folders = {folder: folder_scenes(folder, args) for folder in args.data}  # every folder checked before any run
    chosen = getattr(args, "detector", settings["DETECTOR"])  # the flag, else the environment or the default
    names = sorted(DETECTORS) if chosen == "all" else [str(chosen)]
    detectors = {name: detector_from_settings(settings, name) for name in names}  # bad settings fail before the model
    classifier = MaskClassifier.load(str(settings["MODEL"]), str(settings["BACKEND"]))
    report: dict[str, object] = {"model": str(settings["MODEL"]), "folders": {}}
    for folder, scenes in folders.items():
        folder_report: dict[str, object] = {}
        report["folders"][str(folder)] = folder_report
        for name, detector in detectors.items():
            results, skipped = run_scenes(scenes, detector, classifier)
            if not results:
                raise UserError(f"none of the {len(scenes)} images in {folder} could be read")
            detect_ms, total_ms = mean_ms(results)
            width = statistics.median(r.frame_size[0] for r in results)
            height = statistics.median(r.frame_size[1] for r in results)
            scopes = [("all", results)]
            if not args.holdout_only:
                scopes.append(
                    ("held-out", [r for r in results if is_holdout_scene(r.scene.image_path, args.holdout_percent)])
                )
            rows = []
            for scope, subset in scopes:
                for subset_name, min_side in (("all", 0), (f">={args.min_side}px", args.min_side)):
                    for iou in IOU_THRESHOLDS:
                        counts = score_scenes(subset, iou, classifier.class_names, min_side)
                        rows.append(
                            {
                                "images": scope,
                                "images_n": len(subset),
                                "subset": subset_name,
                                "iou": iou,
                                **counts.summary(),
                            }
                        )
            n_faces = sum(len(r.faces) for r in results)
            print(
                f"{folder} · {name}: {len(results)} images (median {width:.0f}x{height:.0f}; {skipped} unreadable), "
                f"{n_faces} detections; detection {detect_ms:.1f} ms/frame, whole pipeline {total_ms:.1f} ms/frame"
            )
            print(format_rows(rows), flush=True)
            folder_report[name] = {"detect_ms": round(detect_ms, 2), "pipeline_ms": round(total_ms, 2), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def calibrate(args: argparse.Namespace, settings: dict[str, object]) -> int:
    """Fit the detector's calibration on the folders' images that are not held out; print it and, per folder and
    threshold, the recall and precision it gives on those images (faces >= --min-side, IoU 0.3)."""
    from maskdetector.training.detector_fit import fit_calibration, label_candidates
    from maskdetector.training.scene_eval import Counts, score_image
    from maskdetector.types import Face
    from maskdetector.vision.analyzers import detector_from_settings

    detector = detector_from_settings(settings)
    if getattr(detector, "calibration", None) is None:
        raise UserError(f"detector {settings['DETECTOR']} has no calibration to fit")
    folders = {}
    for folder in args.data:
        scenes = [s for s in load_scene_annotations(folder) if not is_holdout_scene(s.image_path, args.holdout_percent)]
        if not scenes:
            raise UserError(f"no images left to fit on in {folder}")
        folders[folder] = label_candidates(detector, scenes)
    verifier = detector._verifier is not None
    fitted = fit_calibration([item for items in folders.values() for item in items], verifier)
    print(fitted)
    detector.calibration = fitted
    for folder, items in folders.items():
        scored = [(item, detector.score(item.candidates)) for item in items]
        for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
            counts = sum(
                (
                    score_image(
                        item.scene.faces,
                        [Face(c.box, "", 1.0) for c, p in zip(item.candidates, scores, strict=True) if p >= threshold],
                        0.3,
                        (),
                        args.min_side,
                    )
                    for item, scores in scored
                ),
                Counts(),
            )
            per_class = " ".join(f"{label} {rate:.3f}" for label, rate in counts.class_recall().items())
            print(
                f"{folder} ({len(items)} images) threshold {threshold}: recall {counts.recall:.3f} ({per_class}), "
                f"precision {counts.precision:.3f}"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        args, settings = parse_args(argv)
        return evaluate_scenes(args, settings) if args.command == "scenes" else calibrate(args, settings)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
