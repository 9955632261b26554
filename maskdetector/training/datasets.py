"""Loading labelled face images: class-per-folder trees and face crops cut from PASCAL VOC scenes.

Every image is decoded once and stored at the model's input size (uint8 RGB), so training epochs
never touch the disk or the JPEG decoder again.
"""

import logging
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from maskdetector.constants import IMAGE_EXTENSIONS, INPUT_SIZE
from maskdetector.errors import UserError
from maskdetector.types import Box
from maskdetector.vision.preprocessing import crop_face, face_to_input, read_image

log = logging.getLogger(__name__)

# The classes of the annotated scene sets (scenes-dev, ilc2021), in the order a 3-class model predicts them.
SCENE_CLASSES = ("with_mask", "without_mask", "mask_weared_incorrect")


@dataclass
class LabelledFaces:
    """Face images at model input size with integer labels indexing `class_names`."""

    images: np.ndarray  # uint8 (N, H, W, 3), RGB
    labels: np.ndarray  # int64 (N,)
    class_names: list[str]
    sources: list[str] = field(default_factory=list)  # which data set each image came from
    skipped: int = 0  # unreadable files that were left out
    origins: list[str] = field(default_factory=list)  # the file each image was read or cut from
    # gray 32x32 of each whole file when `images` are faces cut out of it (copies are found on whole files)
    thumbnails: np.ndarray | None = None

    def copy_thumbnails(self) -> np.ndarray:
        """What `copy_groups` compares: the whole files' thumbnails, or those of the images themselves."""
        return self.thumbnails if self.thumbnails is not None else thumbnails(self.images)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        return {name: int((self.labels == i).sum()) for i, name in enumerate(self.class_names)}


def thumbnails(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 32, 32) gray versions of model-input images (N, H, W, 3) RGB."""
    small = [
        cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA) for image in images
    ]
    return np.stack(small) if small else np.zeros((0, 32, 32), np.uint8)


def _empty(class_names: list[str]) -> LabelledFaces:
    height, width = INPUT_SIZE
    return LabelledFaces(np.zeros((0, height, width, 3), np.uint8), np.zeros(0, np.int64), class_names)


def class_folders(root: Path) -> list[str]:
    """Sorted names of the class sub-folders of `root`, checking that there are at least two."""
    if not root.is_dir():
        raise UserError(f"data folder {root} does not exist")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise UserError(
            f"data folder {root} needs at least 2 class sub-folders (like with_mask/, without_mask/), "
            f"found {len(names)}"
        )
    return names


def largest_face(image: np.ndarray, find_faces: Callable[[np.ndarray], list[Box]]) -> np.ndarray:
    """The biggest face `find_faces` sees, cut out with the app's margin; the whole image if it sees none.

    The app classifies detector crops, but photo folders hold anything from a face filling the frame to a
    person across the room: cutting the face out shows training (and scoring) what the app will see.
    """
    boxes = find_faces(image)
    if not boxes:
        return image
    return crop_face(image, max(boxes, key=lambda box: box[2] * box[3]))


def load_image_folder(
    root: Path,
    class_names: Sequence[str] | None = None,
    find_faces: Callable[[np.ndarray], list[Box]] | None = None,
) -> LabelledFaces:
    """Load `root/<class>/*` images. Unreadable or non-image files are skipped and counted in a warning.

    With `class_names` (a trained model's classes), folders are mapped onto those indices and a folder
    the model does not know is an error. With `find_faces` (a face detector), each image is reduced to its
    largest face (`largest_face`).
    """
    root = Path(root)
    folders = class_folders(root)
    names = list(class_names) if class_names is not None else folders
    unknown = [f for f in folders if f not in names]
    if unknown:
        raise UserError(f"class folder(s) {', '.join(unknown)} in {root} are not classes of the model {names}")

    images, wholes, labels, origins, skipped, uncut = [], [], [], [], 0, 0
    for folder in folders:
        files = sorted(p for p in (root / folder).iterdir() if p.is_file() and not p.name.startswith("."))
        loaded = 0
        for path in files:
            image = read_image(path) if path.suffix.lower() in IMAGE_EXTENSIONS else None
            if image is None:
                skipped += 1
                continue
            wholes.append(face_to_input(image))
            face = largest_face(image, find_faces) if find_faces else image
            images.append(wholes[-1] if face is image else face_to_input(face))
            uncut += face is image
            labels.append(names.index(folder))
            origins.append(str(path))
            loaded += 1
        if loaded == 0:
            raise UserError(f"class folder {root / folder} contains no readable images")
    if skipped:
        log.warning("skipped %d unreadable or non-image file(s) in %s", skipped, root)
    if find_faces:
        log.info("%s: cut the face out of %d images, kept %d whole (no face found)", root, len(images) - uncut, uncut)
    return LabelledFaces(
        np.stack(images),
        np.array(labels, np.int64),
        names,
        [root.name] * len(labels),
        skipped,
        origins,
        thumbnails(np.stack(wholes)) if find_faces else None,
    )


@dataclass(frozen=True)
class AnnotatedFace:
    label: str
    box: Box  # x, y, w, h


@dataclass(frozen=True)
class SceneAnnotation:
    image_path: Path
    faces: tuple[AnnotatedFace, ...]


def parse_voc(xml_path: Path, images_dir: Path) -> SceneAnnotation:
    """Read one PASCAL VOC annotation file into face boxes (x, y, w, h)."""
    root = ET.parse(xml_path).getroot()
    filename = root.findtext("filename") or f"{xml_path.stem}.png"
    faces = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        x0, y0, x1, y1 = (int(round(float(bb.findtext(k, "0")))) for k in ("xmin", "ymin", "xmax", "ymax"))
        if x1 > x0 and y1 > y0:
            faces.append(AnnotatedFace(obj.findtext("name", "").strip(), (x0, y0, x1 - x0, y1 - y0)))
    return SceneAnnotation(images_dir / filename, tuple(faces))


def load_scene_annotations(root: Path) -> list[SceneAnnotation]:
    """All annotations of a scenes folder laid out as `images/` + `annotations/*.xml`."""
    root = Path(root)
    ann_dir, img_dir = root / "annotations", root / "images"
    if not ann_dir.is_dir() or not img_dir.is_dir():
        raise UserError(f"scenes folder {root} must contain images/ and annotations/")
    scenes = []
    for xml_path in sorted(ann_dir.glob("*.xml")):
        try:
            scenes.append(parse_voc(xml_path, img_dir))
        except (ET.ParseError, ValueError) as exc:
            log.warning("skipping unreadable annotation %s: %s", xml_path.name, exc)
    if not scenes:
        raise UserError(f"no readable annotations in {ann_dir}")
    return scenes


def is_holdout_scene(image_path: Path, percent: int) -> bool:
    """Stable split by file name (not by seed), so every run and every tool holds out the same images."""
    return zlib.crc32(image_path.stem.encode()) % 100 < percent


def load_scene_crops(
    root: Path, class_names: Sequence[str], *, holdout: bool, holdout_percent: int, min_side: int
) -> LabelledFaces:
    """Face crops cut from annotated scenes, from held-out images (`holdout=True`) or from the others.

    Boxes whose class the model does not have (e.g. mask_weared_incorrect for a 2-class model) and boxes
    with a side shorter than `min_side` are left out.
    """
    names = list(class_names)
    images, labels, origins, skipped = [], [], [], 0
    for scene in load_scene_annotations(root):
        if is_holdout_scene(scene.image_path, holdout_percent) != holdout:
            continue
        wanted = [f for f in scene.faces if f.label in names and min(f.box[2:]) >= min_side]
        if not wanted:
            continue
        frame = read_image(scene.image_path)
        if frame is None:
            skipped += 1
            continue
        for face in wanted:
            try:
                images.append(face_to_input(crop_face(frame, face.box)))
            except ValueError:
                continue
            labels.append(names.index(face.label))
            origins.append(str(scene.image_path))
    if skipped:
        log.warning("skipped %d unreadable scene image(s) in %s", skipped, root)
    if not images:
        return _empty(names)
    tag = f"{Path(root).name}{'-holdout' if holdout else ''}"
    return LabelledFaces(np.stack(images), np.array(labels, np.int64), names, [tag] * len(labels), skipped, origins)


def concatenate(parts: Sequence[LabelledFaces]) -> LabelledFaces:
    """Join data sets that share class names."""
    if not any(len(p) for p in parts):
        return _empty(parts[0].class_names)
    parts = [p for p in parts if len(p)]
    names = parts[0].class_names
    return LabelledFaces(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
        names,
        [s for p in parts for s in p.sources],
        sum(p.skipped for p in parts),
        [o for p in parts for o in p.origins],
        None if all(p.thumbnails is None for p in parts) else np.concatenate([p.copy_thumbnails() for p in parts]),
    )


def copy_groups(faces: LabelledFaces, *, tolerance: int = 12, min_share: float = 0.6) -> np.ndarray:
    """A group number per image: images cut from one file, and copies of one photo, share a number.

    Face data sets are full of copies: the same photo mirrored, re-encoded, or with a mask drawn onto it
    (most of the observations set's masked faces are its unmasked photos plus a drawn mask). A split
    that puts one copy in training and another in the test split lets a model answer from memory: the
    test then scores recall of the copy's label, which for a drawn-on mask is the wrong one. Two images
    count as copies when at least `min_share` of their pixels (gray, 32x32) differ by at most
    `tolerance` levels, as they are or mirrored; a drawn mask covers well under half a face photo.
    """
    n = len(faces)
    small = faces.copy_thumbnails().astype(np.int16)
    flat, mirrored = small.reshape(n, -1), small[:, :, ::-1].reshape(n, -1)
    rows, cols = [], []
    chunk = max(1, 2**25 // max(1, n * flat.shape[1]))  # bounds the temporary difference array (~64 MB)
    for start in range(0, n, chunk):
        block = flat[start : start + chunk, None]
        same = (np.abs(block - flat[None]) <= tolerance).mean(-1) >= min_share
        same |= (np.abs(block - mirrored[None]) <= tolerance).mean(-1) >= min_share
        r, c = np.nonzero(same)
        rows.append(r + start)
        cols.append(c)
    # images are linked to their copies and to a node per origin file, then grouped by connected component
    _, origin_ids = np.unique(faces.origins if faces.origins else np.arange(n).astype(str), return_inverse=True)
    rows += [np.arange(n)]
    cols += [n + origin_ids]
    size = n + int(origin_ids.max(initial=-1)) + 1
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    return component[:n]
