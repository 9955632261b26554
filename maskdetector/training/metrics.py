"""How good a classifier is: accuracy, per-class precision/recall/F1, confusion matrix, and their plots."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # noqa: E402


def score(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Metrics of predicted vs true class indices, as a JSON-ready dict."""
    indices = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=indices, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
        **compliance(y_true, y_pred, class_names),
    }


def compliance(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """The two-class sense the app counts by (a mask worn incorrectly is not compliant), when there are 3 classes:
    accuracy of "mask" vs "not a mask" and the masked faces' recall."""
    if len(class_names) < 3 or "with_mask" not in class_names or not len(y_true):
        return {}
    mask = class_names.index("with_mask")
    true_mask, said_mask = y_true == mask, y_pred == mask
    return {
        "compliance_accuracy": float(np.mean(true_mask == said_mask)),
        "masked_recall": float(said_mask[true_mask].mean()) if true_mask.any() else 0.0,
    }


def format_scores(title: str, scores: dict) -> str:
    """A small text table of `score` output for the terminal."""
    lines = [f"{title}: accuracy {scores['accuracy']:.4f} on {scores['n']} images"]
    if "compliance_accuracy" in scores:
        lines.append(
            f"  mask vs not (worn incorrectly = not compliant): accuracy {scores['compliance_accuracy']:.4f}, "
            f"masked faces right {scores['masked_recall']:.4f}"
        )
    lines.append(f"  {'class':<24}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, s in scores["per_class"].items():
        lines.append(f"  {name:<24}{s['precision']:>10.4f}{s['recall']:>10.4f}{s['f1']:>10.4f}{s['support']:>9d}")
    lines.append(f"  confusion matrix (rows true, columns predicted): {scores['confusion_matrix']}")
    return "\n".join(lines)


def plot_confusion_matrix(matrix: list[list[int]], class_names: list[str], path: Path) -> None:
    data = np.array(matrix)
    fig, ax = plt.subplots(figsize=(1.6 * len(class_names) + 2, 1.4 * len(class_names) + 1.5))
    ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=20)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(data):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > data.max() / 2 else "black")
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[metric], label=f"train {metric}")
        ax.plot(epochs, history[f"val_{metric}"], label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_mistakes(
    images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, class_names: list[str], path: Path, limit: int = 32
) -> None:
    """A grid of (up to `limit`) wrongly labelled images, each titled "true -> predicted": what the model gets
    wrong, at a glance."""
    wrong = np.flatnonzero(truth != predicted)[:limit]
    columns = 8
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.5, rows * 1.75), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(images[i])
        ax.set_title(f"{class_names[truth[i]]}\n-> {class_names[predicted[i]]}", fontsize=6)
    fig.suptitle(f"Test-split mistakes ({len(wrong)} shown of {int((truth != predicted).sum())})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
