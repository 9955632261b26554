"""Training input pipeline: naive per-epoch disk decoding vs the project's decode-once tf.data pipeline.

    python benchmarks/training_input_bench.py [--data ../shared/datasets/observations] [--images 320]

Both feed the same augmentation and the same model for one epoch over the same images, in one run:
(a) naive: a keras.utils.PyDataset that reads, decodes and resizes every file from disk for every batch
    (what ImageDataGenerator.flow_from_directory did), augmenting batch by batch in the training thread;
(b) project: images decoded once into memory, then shuffle -> batch -> parallel augmentation -> prefetch.
Prints seconds for the input pipeline alone and for a full training epoch with each.
"""

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from maskdetector.constants import IMAGE_EXTENSIONS  # noqa: E402
from maskdetector.training.datasets import class_folders, load_image_folder  # noqa: E402
from maskdetector.training.inputs import build_augmentation, make_dataset  # noqa: E402
from maskdetector.training.trainer import TrainingConfig  # noqa: E402
from maskdetector.vision.model import build_model  # noqa: E402
from maskdetector.vision.preprocessing import face_to_input, read_image  # noqa: E402


class NaiveDiskBatches(keras.utils.PyDataset):
    """Decodes every image from disk again for every batch of every epoch."""

    def __init__(self, files: list[Path], labels: np.ndarray, n_classes: int, batch_size: int) -> None:
        super().__init__()
        self.files, self.labels, self.n_classes, self.batch_size = files, labels, n_classes, batch_size
        self.augmentation = build_augmentation(0)

    def __len__(self) -> int:
        return math.ceil(len(self.files) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        images = np.stack([face_to_input(read_image(f)) for f in self.files[part]]).astype(np.float32)
        augmented = np.asarray(self.augmentation(images, training=True))
        return augmented, keras.utils.to_categorical(self.labels[part], self.n_classes)


def timed(label: str, fn: callable) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<48}{seconds:8.1f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/observations"))
    parser.add_argument("--images", type=int, default=320, help="images per epoch (0 = all)")
    args = parser.parse_args()

    names = class_folders(args.data)
    files, labels = [], []
    for index, name in enumerate(names):
        for path in sorted((args.data / name).iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS and read_image(path) is not None:
                files.append(path)
                labels.append(index)
    order = np.random.default_rng(0).permutation(len(files))[: args.images or None]
    files, labels = [files[i] for i in order], np.array(labels)[order]
    config = TrainingConfig(data_dirs=[args.data], out_dir=Path("."), epochs=1)
    print(f"{len(files)} images, batch {config.batch_size}, {len(names)} classes")

    naive = NaiveDiskBatches(files, labels, len(names), config.batch_size)
    decoded: list[np.ndarray] = []
    timed("(b) one-time decode of the whole folder", lambda: decoded.append(load_image_folder(args.data).images))
    in_memory = decoded[0][order]
    fast = make_dataset(in_memory, labels, len(names), config, augment=True)

    naive_input = timed("(a) naive input only, one epoch", lambda: [naive[i] for i in range(len(naive))])
    fast_input = timed("(b) project input only, one epoch", lambda: list(fast))

    def epoch(data: object) -> None:
        model = build_model(len(names))
        model.compile(keras.optimizers.Adam(), "categorical_crossentropy", metrics=["accuracy"])
        model.fit(data, epochs=1, verbose=0)

    epoch(fast.take(2))  # warm-up: graph tracing and thread pools
    naive_epoch = timed("(a) naive training epoch", lambda: epoch(naive))
    fast_epoch = timed("(b) project training epoch", lambda: epoch(fast))
    print(f"input pipeline speed-up b/a: {naive_input / fast_input:.1f}x")
    print(f"training epoch speed-up b/a: {naive_epoch / fast_epoch:.2f}x")


if __name__ == "__main__":
    main()
