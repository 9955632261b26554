"""Where the classifier's time goes: the TFLite path cut after each layer, against the whole 100x100 graph.

    python benchmarks/classifier_layers.py [--model model/mask_detector.keras] [--rounds 10] [--calls 30]

The app's TFLite graph (fed the 98x98 input pixels that reach the output, see model.used_input_size) is
converted once per layer, ending after that layer; the graphs are timed at batch 1 in interleaved rounds (this
machine's speed drifts within a minute), and each layer's cost is the difference between the medians of the
graph ending after it and the graph ending before it. The whole graph on the full 100x100 input, what
`--backend tflite` ran before, is timed in the same rounds. Multiply-accumulates per layer show how close each
convolution runs to the CPU's peak.
"""

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from pipeline_bench import median_ms  # noqa: E402  (this script's folder is on sys.path)

from maskdetector.constants import DEFAULT_MODEL_PATH  # noqa: E402
from maskdetector.vision.classifier import to_tflite  # noqa: E402
from maskdetector.vision.model import used_input_size, with_input_size  # noqa: E402
from maskdetector.vision.tflite import make_interpreter  # noqa: E402


def multiply_adds(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates of one image through a Conv2D or Dense layer (0 for the others)."""
    if isinstance(layer, keras.layers.Conv2D):
        height, width, filters = layer.output.shape[1:]
        return height * width * filters * int(np.prod(layer.kernel.shape[:-1]))
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(layer.kernel.shape))
    return 0


def invoker(model: keras.Model, batch: np.ndarray) -> Callable[[], None]:
    """Runs the model's TFLite conversion on `batch`. The output is not read: copying a cut graph's large
    feature maps out would be timed as if it were the layer's work."""
    interpreter = make_interpreter(model_content=to_tflite(model))
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
    return interpreter.invoke


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=30, help="calls per graph per round (their median counts)")
    args = parser.parse_args()

    model = keras.models.load_model(args.model, compile=False)
    size = used_input_size(model)
    trimmed = with_input_size(model, size)
    timed = [layer for layer in trimmed.layers if not isinstance(layer, keras.layers.Dropout)]
    image = np.random.default_rng(0).integers(0, 256, (1, *model.input_shape[1:])).astype(np.float32)
    fed = np.ascontiguousarray(image[:, : size[0], : size[1]])
    graphs = {layer.name: invoker(keras.Model(trimmed.inputs, layer.output), fed) for layer in timed}
    graphs["whole"] = invoker(model, image)

    medians: dict[str, list[float]] = {name: [] for name in graphs}
    for _ in range(args.rounds):
        for name, run in graphs.items():
            medians[name].append(median_ms(run, args.calls))
    ms = {name: statistics.median(values) for name, values in medians.items()}

    print(f"TFLite classifier at batch 1, {size[0]}x{size[1]} input, medians of {args.rounds} interleaved rounds:")
    print(f"  {'graph ends after':<18}{'ms':>8}{'layer ms':>10}{'MMAC':>8}{'GMAC/s':>8}")
    before = 0.0
    for layer in timed:
        cost, macs = ms[layer.name] - before, multiply_adds(layer)
        rate = f"{macs / cost / 1e6:8.0f}" if macs and cost > 0 else f"{'':>8}"
        print(f"  {layer.name:<18}{ms[layer.name]:8.2f}{cost:10.2f}{macs / 1e6:8.1f}{rate}")
        before = ms[layer.name]
    print(f"  whole graph on the full {model.input_shape[1]}x{model.input_shape[2]} input: {ms['whole']:.2f} ms")


if __name__ == "__main__":
    main()
