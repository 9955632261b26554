"""Mask detection without a live stream: `python detect.py INPUT... [-o OUT] [--json]`.

Each INPUT is an image, a folder of images, a video file or a camera index. The detector, model and their
flags are the ones app.py uses (same defaults and MASKDETECTOR_* variables). Bad input ends with one
`error: ...` line and exit code 2.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from maskdetector.cli import EPILOG, OneLineParser, add_settings_options, settings_from_args
from maskdetector.errors import UserError
from maskdetector.settings import ANALYZER_SETTINGS
from maskdetector.sources.files import (
    AnnotatedWriter,
    Frame,
    Input,
    Progress,
    VideoInput,
    analyze_in_order,
    plan_inputs,
)
from maskdetector.types import Face, FileAnalyzer
from maskdetector.vision.annotation import draw_faces
from maskdetector.vision.tensorflow_runtime import load_tensorflow


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, object]]:
    """The parsed command line, and the settings dict build_analyzer() takes (flags over environment over defaults)."""
    parser = OneLineParser(
        description="Detect faces and masks in images, folders of images, video files or a camera.",
        epilog=EPILOG,
    )
    add = parser.add_argument
    add("inputs", nargs="+", metavar="INPUT", help="an image, a folder of images, a video file or a camera index")
    add(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="write annotated copies: into the folder OUT (images keep their names, videos become NAME.mp4), "
        "or to OUT.mp4 for a single video",
    )
    add("--json", action="store_true", help="print one JSON object per image or video frame on stdout")
    add("--whole-image", action="store_true", help="classify each image as one face crop, without detection")
    add("--quiet", action="store_true", help="no progress bar")
    add_settings_options(parser, ANALYZER_SETTINGS)
    args = parser.parse_args(argv)
    return args, settings_from_args(args)


def run(
    inputs: list[Input], analyzer: FileAnalyzer, writer: AnnotatedWriter | None, as_json: bool, progress: Progress
) -> int:
    """Analyze every frame of every input in order, decoding, analysis and output overlapped (files.analyze_in_order);
    returns the number of frames processed.

    Ctrl+C (the way to stop a camera) ends the run early but normally: outputs are finished, the summary printed.
    """
    from maskdetector.vision.analyzers import frame_record  # imports TensorFlow: main() loads it after cheap checks

    processed = 0
    bar = False

    def emit(frame: Frame, faces: list[Face]) -> None:
        nonlocal processed
        if as_json:
            where = {"path": frame.source} if frame.index is None else {"path": frame.source, "frame": frame.index}
            print(json.dumps({**where, **frame_record(frame.image, faces)}), flush=True)
        if writer is not None:
            writer.write(frame, draw_faces(frame.image, faces))
        processed += 1
        if bar:
            progress.step()

    try:
        for item in inputs:
            total = item.count()
            bar = total is None or total > 1  # folders and videos, not single images
            if bar:
                progress.start(item.name, total)
            frame_analyzer = analyzer.for_video() if isinstance(item, VideoInput) else analyzer
            analyze_in_order(item.frames(), frame_analyzer.analyze, emit)
            if bar:
                progress.finish()
    except KeyboardInterrupt:
        progress.finish()
    return processed


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    writer = None
    try:
        args, settings = parse_args(argv)
        inputs = plan_inputs(args.inputs)  # cheap checks first: the model load below takes seconds
        writer = AnnotatedWriter(args.output, inputs) if args.output else None
        load_tensorflow()
        from maskdetector.vision.analyzers import WholeImageAnalyzer, build_analyzer

        analyzer = build_analyzer(settings)
        if args.whole_image:
            analyzer = WholeImageAnalyzer(analyzer.classifier)
        progress = Progress(sys.stderr, enabled=not args.quiet and sys.stderr.isatty())
        started = time.perf_counter()
        processed = run(inputs, analyzer, writer, args.json, progress)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - started
    print(
        f"processed {processed} frames in {seconds:.1f} s ({processed / max(seconds, 1e-9):.1f} fps)", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
