"""Train the mask classifier, or score an existing one (--evaluate-only).

python train.py                     # the shipped model's four sources in ../shared/datasets
python train.py --leave-out ilc2021 # the same without one source, then scored on all of it
python train.py --data dataset --init-model model/mask_detector.keras   # fine-tune on your photos
python train.py --evaluate-only --model model/mask_detector.keras --data DIR
"""

import argparse
import logging
import sys
from pathlib import Path

from maskdetector.constants import (
    DEFAULT_DATA_DIR,
    DEFAULT_MODEL_PATH,
    HOLDOUT_PERCENT,
    MODEL_DIR,
    TRAINING_FOLDERS,
    TRAINING_SCENES,
)
from maskdetector.errors import UserError
from maskdetector.vision.detectors import DETECTORS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help="folder with one sub-folder of face images per class; repeat to combine folders (default: with no "
        "--data and no --scenes, the shipped model's sources observations, chandrikadeb7, scenes-dev and ilc2021 "
        "in ../shared/datasets; dataset/ for --evaluate-only)",
    )
    parser.add_argument(
        "--scenes",
        type=Path,
        action="append",
        default=[],
        help="PASCAL VOC folder (images/ + annotations/): train on face crops of its non-held-out images "
        "and report accuracy on the held-out ones; repeat for several sources",
    )
    parser.add_argument(
        "--classes",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        help="comma-separated classes to train (default: the scene classes with_mask, without_mask, "
        "mask_weared_incorrect when --scenes is given, else the first --data folder's class folders)",
    )
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help="output folder (default model/)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=3e-4,
        help="Adam's initial learning rate (default 3e-4; 1e-3 leaves most conv2 channels dead)",
    )
    parser.add_argument("--patience", type=int, default=6, help="early-stopping patience in epochs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--balance-power",
        type=float,
        default=0.5,
        help="class weighting within each data source: 1 balances the classes fully, 0 not at all (default 0.5)",
    )
    parser.add_argument(
        "--scene-weight",
        type=float,
        default=1.5,
        help="loss weight of each --scenes face crop relative to a --data image, after the class weighting "
        "(default 1.5: real faces count more)",
    )
    parser.add_argument(
        "--holdout-percent", type=int, default=HOLDOUT_PERCENT, help="share of --scenes images never trained on"
    )
    parser.add_argument(
        "--init-model",
        type=Path,
        help="start from this model's weights instead of random ones (fine-tune on your photos, or continue a run)",
    )
    parser.add_argument(
        "--ema-momentum",
        type=float,
        default=0.99,
        help="validate and save an exponential moving average of the weights with this momentum (default 0.99; "
        "0 saves the weights as trained)",
    )
    parser.add_argument(
        "--crop-faces",
        default="blazeface",
        choices=[*sorted(DETECTORS), "none"],
        help="cut the largest face out of every --data image with this face detector, as the app crops the faces "
        "it classifies (default blazeface; images without a face stay whole); none: use the images whole",
    )
    parser.add_argument(
        "--leave-out",
        metavar="SOURCE",
        help="train without this source (a --data or --scenes folder's name) and score the model on all of it: "
        "the leave-one-source-out test of how the model does on a source it never saw",
    )
    parser.add_argument("--evaluate-only", action="store_true", help="score --model on --data/--scenes, no training")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="model for --evaluate-only")
    parser.add_argument(
        "--all-scene-images",
        action="store_true",
        help="with --evaluate-only: score every image of the --scenes folders, not only the held-out ones "
        "(a source the model never trained on: the leave-one-source-out test)",
    )
    parser.add_argument(
        "--test-split",
        action="store_true",
        help="with --evaluate-only: score only the test split that training on the same --data, --scenes, "
        "--seed and --holdout-percent holds out (re-measures a trained model's report)",
    )
    args = parser.parse_args(argv)
    if not args.evaluate_only and not args.data and not args.scenes:
        args.data, args.scenes = list(TRAINING_FOLDERS), list(TRAINING_SCENES)
    args.left_out = None
    if args.leave_out:
        if args.evaluate_only:
            parser.error("--leave-out trains: it does not go with --evaluate-only")
        matches = [p for p in [*(args.data or []), *args.scenes] if p.name == args.leave_out]
        if not matches:
            parser.error(f"--leave-out {args.leave_out}: not one of the sources")
        args.left_out = matches[0]
        args.data = [p for p in args.data or [] if p != args.left_out]
        args.scenes = [p for p in args.scenes if p != args.left_out]
    args.crop_faces = None if args.crop_faces == "none" else args.crop_faces
    for name in ("epochs", "batch_size", "patience"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.scene_weight <= 0:
        parser.error("--scene-weight must be above 0")
    if not 0 <= args.balance_power <= 1:
        parser.error("--balance-power must be in 0..1")
    if not 0 <= args.ema_momentum < 1:
        parser.error("--ema-momentum must be in 0..1 (exclusive of 1)")
    for flag in ("test_split", "all_scene_images"):
        if getattr(args, flag) and not args.evaluate_only:
            parser.error(f"--{flag.replace('_', '-')} goes with --evaluate-only")
    if not 0 <= args.holdout_percent < 100:
        parser.error("--holdout-percent must be in 0..99")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        # imports TensorFlow: after argument checks, so --help is instant
        from maskdetector.training import scoring, trainer
        from maskdetector.training.metrics import format_scores

        config = trainer.TrainingConfig(
            data_dirs=args.data or ([] if args.scenes else [DEFAULT_DATA_DIR]),
            out_dir=args.out,
            scenes_dirs=args.scenes,
            class_names=args.classes,
            left_out=args.left_out,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            patience=args.patience,
            seed=args.seed,
            holdout_percent=args.holdout_percent,
            init_model=args.init_model,
            balance_power=args.balance_power,
            scene_weight=args.scene_weight,
            ema_momentum=args.ema_momentum,
            crop_faces=args.crop_faces,
            verbose=1 if sys.stdout.isatty() else 2,
        )
        if args.evaluate_only:
            if args.test_split:
                results = trainer.evaluate_test_split(args.model, config)
            else:
                data = args.data or ([] if args.scenes else [DEFAULT_DATA_DIR])
                results = scoring.evaluate(
                    args.model,
                    data,
                    args.scenes,
                    args.holdout_percent,
                    args.crop_faces,
                    all_scene_images=args.all_scene_images,
                )
            print("\n".join(format_scores(title, s) for title, s in results.items()))
            return 0
        metrics = trainer.train(config)
        print(scoring.summary(metrics))
        print(f"saved model, labels, metrics and plots to {args.out}/")
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
