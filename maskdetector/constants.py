"""Project-wide constants: one place for sizes, colour order, paths and class display names."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MODEL_DIR = PROJECT_ROOT / "model"
MODEL_FILENAME = "mask_detector.keras"
LABELS_FILENAME = "labels.json"
METRICS_FILENAME = "metrics.json"
DEFAULT_MODEL_PATH = MODEL_DIR / MODEL_FILENAME
DEFAULT_DATA_DIR = PROJECT_ROOT / "dataset"
# The shipped model's training sources (../shared/datasets beside the project): what `python train.py` reads
# when given no --data and no --scenes.
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
TRAINING_FOLDERS = (SHARED_DATASETS / "observations", SHARED_DATASETS / "chandrikadeb7")
TRAINING_SCENES = (SHARED_DATASETS / "scenes-dev", SHARED_DATASETS / "ilc2021")
# The web app's statistics database and alerts log (git-ignored): see README, "Several cameras, statistics and alerts".
APP_DATA_DIR = PROJECT_ROOT / "data"

# The CNN sees RGB faces of this size; OpenCV hands us BGR, preprocessing.py converts.
INPUT_SIZE = (100, 100)  # (height, width)
COLOR_ORDER = "RGB"

# Fraction of the box size added on every side when cutting a face out of a frame. Used both when
# cutting training crops from annotated scenes and when classifying detected faces, so they match.
FACE_MARGIN = 0.1

# Share of annotated scene images never trained on (chosen by file name, see datasets.is_holdout_scene):
# train.py trains on the others, and its report and evaluate.py score real photos on these.
HOLDOUT_PERCENT = 30

# How the classifier runs: "tflite" (the .keras model converted in memory at load time to int8, run by TFLite's
# XNNPACK, faces it is unsure of checked by the float32 conversion: the same labels, several times faster),
# "tflite-float" (the float32 conversion alone) or "keras" (the model called directly). The first is the default.
CLASSIFIER_BACKENDS = ("tflite", "tflite-float", "keras")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Display names and BGR box colours per class label.
CLASS_DISPLAY = {
    "with_mask": ("Mask", (0, 200, 0)),
    "without_mask": ("No mask", (0, 0, 230)),
    "mask_weared_incorrect": ("Mask worn wrong", (0, 140, 255)),
}
