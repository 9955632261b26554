"""Train the mask classifier, or score an existing one (--evaluate-only).

python train.py                     # the shipped model's four sources in ../shared/datasets
python train.py --leave-out ilc2021 # the same without one source, then scored on all of it
python train.py --data dataset --init-model model/mask_detector.keras   # fine-tune on your photos
python train.py --evaluate-only --model model/mask_detector.keras --data DIR
"""

import argparse
import logging
import sys

from maskdetector.cli import add_training_options
from maskdetector.errors import UserError
from maskdetector.training.settings import TrainingSettings, validate


def parse_args(argv: list[str] | None = None) -> TrainingSettings:
    """The validated training settings; a bad flag or value ends with argparse's usage and error lines, exit 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_options(parser)
    try:
        return validate(vars(parser.parse_args(argv)))
    except UserError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        # imports TensorFlow: after argument checks, so --help is instant
        from maskdetector.training import scoring, trainer
        from maskdetector.training.metrics import format_scores

        config = trainer.TrainingConfig(**settings.training_config(), verbose=1 if sys.stdout.isatty() else 2)
        if settings.evaluate_only:
            if settings.test_split:
                results = trainer.evaluate_test_split(settings.model, config)
            else:
                results = scoring.evaluate(
                    settings.model,
                    config.data_dirs,
                    config.scenes_dirs,
                    config.holdout_percent,
                    config.crop_faces,
                    all_scene_images=settings.all_scene_images,
                )
            print("\n".join(format_scores(title, s) for title, s in results.items()))
            return 0
        metrics = trainer.train(config)
        print(scoring.summary(metrics))
        print(f"saved model, labels, metrics and plots to {settings.out}/")
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
