"""detect.py's inputs and outputs: images, folders, video files and cameras in; annotated copies out.

Unlike the live stream (capture.VideoSource), video files are read as fast as they decode, every frame in
order, because the point is to process a recording, not to watch it.
"""

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from maskdetector.constants import IMAGE_EXTENSIONS
from maskdetector.errors import UserError
from maskdetector.sources.capture import FALLBACK_FILE_FPS, describe_source
from maskdetector.types import Face
from maskdetector.vision.preprocessing import read_image

log = logging.getLogger(__name__)

VIDEO_SUFFIX = ".mp4"
VIDEO_FOURCC = "mp4v"
# Frames decoded ahead of the analysis, and analyzed frames waiting to be written: enough to even out
# uneven frame times, bounded so a long video never piles up in memory.
PIPELINE_DEPTH = 4

T = TypeVar("T")
_END = object()


@dataclass(frozen=True)
class Frame:
    source: str  # the file the frame came from, or "camera N"
    image: np.ndarray
    index: int | None = None  # position in a video or camera feed; None for a still image
    fps: float = 0.0  # the video's frame rate, so an annotated copy plays at the same speed


class Input(Protocol):
    name: str

    def count(self) -> int | None:
        """Frames this input will give, None when unknown (cameras)."""

    def frames(self) -> Iterator[Frame]: ...


class ImageInput:
    """One image named on the command line: unreadable is an error, not a skip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def count(self) -> int:
        return 1

    def frames(self) -> Iterator[Frame]:
        image = read_image(self.path)
        if image is None:
            raise UserError(f"{self.path} is not a readable image")
        yield Frame(self.name, image)


class FolderInput:
    """The images directly inside a folder, by name; unreadable ones are skipped with a warning."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        self.paths = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.paths:
            log.warning("%s holds no images (%s)", path, " ".join(IMAGE_EXTENSIONS))

    def count(self) -> int:
        return len(self.paths)

    def frames(self) -> Iterator[Frame]:
        for path in self.paths:
            image = read_image(path)
            if image is None:
                log.warning("skipping %s: not a readable image", path)
                continue
            yield Frame(str(path), image)


class VideoInput:
    """Every frame of a video file, unpaced, or of a camera until it stops or Ctrl+C."""

    def __init__(self, spec: str | int) -> None:
        self.spec = spec
        self.name = describe_source(spec) if isinstance(spec, int) else spec

    def count(self) -> int | None:
        if isinstance(self.spec, int):
            return None
        cap = cv2.VideoCapture(self.spec)
        try:
            return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        finally:
            cap.release()

    def frames(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(self.spec)
        try:
            if not cap.isOpened():
                raise UserError(f"cannot open {self.name} as a video")
            fps = cap.get(cv2.CAP_PROP_FPS)
            fps = fps if 0 < fps <= 240 else FALLBACK_FILE_FPS
            index = 0
            while True:
                ok, image = cap.read()
                if not ok or image is None:
                    break
                yield Frame(self.name, image, index, fps)
                index += 1
            if index == 0:
                raise UserError(f"{self.name} gave no frames")
        finally:
            cap.release()


def plan_inputs(texts: Sequence[str]) -> list[Input]:
    """Command-line inputs -> Inputs; UserError for a path that does not exist. Nothing is decoded yet."""
    inputs: list[Input] = []
    for text in texts:
        path = Path(text)
        if text.isdigit() and not path.exists():
            inputs.append(VideoInput(int(text)))
        elif path.is_dir():
            inputs.append(FolderInput(path))
        elif path.is_file():
            inputs.append(ImageInput(path) if path.suffix.lower() in IMAGE_EXTENSIONS else VideoInput(text))
        else:
            raise UserError(f"input {text!r} not found: expected an image, a folder, a video file or a camera index")
    return inputs


class AnnotatedWriter:
    """Writes annotated frames for -o OUT: still images keep their file names inside the folder OUT, each video
    becomes OUT/<name>.mp4, or OUT itself when it ends in .mp4 and there is exactly one video input.
    """

    def __init__(self, out: Path, inputs: Sequence[Input]) -> None:
        self.single_video = out.suffix.lower() == VIDEO_SUFFIX
        if self.single_video and (len(inputs) != 1 or not isinstance(inputs[0], VideoInput)):
            raise UserError(f"-o {out} names one video file: give exactly one video or camera input, or a folder")
        self.out = out
        self._video: cv2.VideoWriter | None = None
        self._video_source: str | None = None

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        if frame.index is None:
            target = self.out / Path(frame.source).name
            self._check_not_input(target, frame.source)
            target.parent.mkdir(parents=True, exist_ok=True)
            ok, data = cv2.imencode(target.suffix, annotated)
            if not ok:
                raise UserError(f"cannot write {target}")
            data.tofile(str(target))  # not cv2.imwrite: that fails on non-ASCII paths
            return
        if frame.source != self._video_source:
            self._open_video(frame, annotated.shape[1], annotated.shape[0])
        self._video.write(annotated)

    def _open_video(self, frame: Frame, width: int, height: int) -> None:
        self.close()
        if self.single_video:
            target = self.out
        else:
            source = Path(frame.source)
            stem = source.stem if source.is_file() else frame.source.replace(" ", "")  # "camera 0" -> camera0
            target = self.out / f"{stem}{VIDEO_SUFFIX}"
        self._check_not_input(target, frame.source)
        target.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), frame.fps, (width, height))
        if not writer.isOpened():
            raise UserError(f"cannot write the video {target}")
        self._video, self._video_source = writer, frame.source

    @staticmethod
    def _check_not_input(target: Path, source: str) -> None:
        if Path(source).exists() and target.resolve() == Path(source).resolve():
            raise UserError(f"-o would overwrite the input {source}: choose another output")

    def close(self) -> None:
        """Finish the open video file, if any; its frames are only readable after this."""
        if self._video is not None:
            self._video.release()
            self._video, self._video_source = None, None


class Progress:
    """tqdm's one-line progress bar per input, on `stream`; nothing at all when not `enabled` (not a terminal)."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self._bar: tqdm | None = None

    def start(self, name: str, total: int | None) -> None:
        self._bar = tqdm(total=total, desc=name, unit=" frames", file=self.stream, disable=not self.enabled)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def prefetched(items: Iterator[T], depth: int = PIPELINE_DEPTH) -> Iterator[T]:
    """The items of `items` in order, produced up to `depth` ahead on a thread of their own: decoding the next
    frames overlaps the analysis of this one. The producer's exceptions are raised here, in their place."""
    with ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
        try:
            ahead = deque(pool.submit(next, items, _END) for _ in range(depth))
            while (item := ahead.popleft().result()) is not _END:
                ahead.append(pool.submit(next, items, _END))
                yield item
        finally:
            pool.shutdown(cancel_futures=True)
            if hasattr(items, "close"):  # a generator (a video file or camera) releases its capture now
                items.close()


def analyze_in_order(
    frames: Iterator[Frame],
    analyze: Callable[[np.ndarray], list[Face]],
    emit: Callable[[Frame, list[Face]], None],
    depth: int = PIPELINE_DEPTH,
) -> None:
    """Analyze every frame, in order, and hand each with its faces to `emit` (draw, encode, write, print).

    Three stages overlap on their own threads: decoding the next frames, this analysis, and emitting the frames
    before it (one emitting thread, so outputs keep the frames' order); the queues between them hold at most
    `depth` frames.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="emit") as pool:
        pending: deque[Future] = deque()
        try:
            for frame in prefetched(frames, depth):
                pending.append(pool.submit(emit, frame, analyze(frame.image)))
                if len(pending) > depth:
                    pending.popleft().result()
        finally:
            while pending:  # the frames analyzed so far are still written, also after Ctrl+C
                pending.popleft().result()
