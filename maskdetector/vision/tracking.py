"""Box tracking across frames, so statistics count people rather than frames, alerts can wait N frames and
labels hold steady.

Faces of consecutive frames are matched greedily by box overlap (IoU, best pairs first). A track that finds
no face for `max_missed` frames ends. A track becomes one sighting once it has been seen in `min_hits` frames,
so a one-frame false detection never counts, labelled with its most frequent label up to then.
`LabelSmoother` labels each face of a video by its track's class probabilities averaged over its last
`window` analyzed frames (LABEL_WINDOW: one wrong frame, or two, among five cannot flip a box or start an alert;
a real change shows after three frames, a tenth of a second at 30 fps).
"""

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from maskdetector.types import Face
from maskdetector.vision.boxes import greedy_match

IOU_THRESHOLD = 0.3  # loose: faces move between frames, and different people rarely overlap this much
MIN_HITS = 3
MAX_MISSED = 10  # frames: bridges a face the detector misses now and then
# Stricter than for counting: a track's probabilities must not pass to another face that happens to overlap its
# place (a scene cut, two people crossing); one face between two analyzed frames overlaps itself far more.
SMOOTHING_IOU = 0.5
LABEL_WINDOW = 5  # analyzed frames whose class probabilities make a tracked face's label (1: each frame alone)


@dataclass(eq=False)
class Track:
    id: int
    face: Face  # the latest face matched
    labels: Counter[str] = field(default_factory=Counter)
    hits: int = 0
    missed: int = 0
    # Frames seen in a row with face.label; a frame with another label starts again at 1, a missed frame does not.
    streak: int = 0
    counted: bool = False
    recent: deque[tuple[float, ...]] = field(default_factory=lambda: deque(maxlen=LABEL_WINDOW))  # probabilities

    @property
    def label(self) -> str:
        """The most frequent label over the frames seen (the first one seen wins a tie)."""
        return self.labels.most_common(1)[0][0]

    def see(self, face: Face) -> None:
        self.streak = self.streak + 1 if self.hits and face.label == self.face.label else 1
        self.face = face
        self.labels[face.label] += 1
        self.hits += 1
        self.missed = 0
        if face.probabilities:
            self.recent.append(face.probabilities)


@dataclass(frozen=True)
class TrackUpdate:
    seen: list[Track]  # tracks matched or started in this frame
    tracks: list[Track]  # the track of each face, in the order of the faces
    new_sightings: list[Track]  # tracks that have just reached min_hits: count each of them once


class BoxTracker:
    """Tracks of one source; feed it every analyzed frame's faces in order. Not thread-safe."""

    def __init__(
        self,
        iou_threshold: float = IOU_THRESHOLD,
        min_hits: int = MIN_HITS,
        max_missed: int = MAX_MISSED,
        window: int = LABEL_WINDOW,
    ) -> None:
        self._iou_threshold = iou_threshold
        self._min_hits = min_hits
        self._max_missed = max_missed
        self._window = window
        self._tracks: list[Track] = []
        self._next_id = 1

    def update(self, faces: Sequence[Face]) -> TrackUpdate:
        matches = greedy_match(
            [track.face.box for track in self._tracks], [face.box for face in faces], self._iou_threshold
        )
        matched_tracks = {t for t, _ in matches}
        matched_faces = {f for _, f in matches}
        seen: list[Track] = []
        of_face: dict[int, Track] = {}
        for t, f in matches:
            self._tracks[t].see(faces[f])
            seen.append(self._tracks[t])
            of_face[f] = self._tracks[t]
        for t, track in enumerate(self._tracks):
            if t not in matched_tracks:
                track.missed += 1
        self._tracks = [track for track in self._tracks if track.missed <= self._max_missed]
        for f, face in enumerate(faces):
            if f not in matched_faces:
                track = Track(self._next_id, face, recent=deque(maxlen=self._window))
                track.see(face)
                of_face[f] = track
                self._next_id += 1
                self._tracks.append(track)
                seen.append(track)
        new_sightings = [track for track in seen if not track.counted and track.hits >= self._min_hits]
        for track in new_sightings:
            track.counted = True
        return TrackUpdate(seen, [of_face[f] for f in range(len(faces))], new_sightings)

    def reset(self) -> None:
        """Forget every track (after a gap in the frames, old boxes say nothing about new faces)."""
        self._tracks = []


class LabelSmoother:
    """Steady labels for one video's faces (see the module notes); keeps tracks: one per stream, not thread-safe."""

    def __init__(self, class_names: Sequence[str], window: int = LABEL_WINDOW) -> None:
        self.class_names = list(class_names)
        self._tracker = BoxTracker(SMOOTHING_IOU, min_hits=1, window=window)

    def smooth(self, faces: Sequence[Face]) -> list[Face]:
        """The faces of the next analyzed frame, each labelled by its track's recent mean probabilities (a face
        without probabilities keeps its own label)."""
        update = self._tracker.update(faces)
        return [_steady(face, track, self.class_names) for face, track in zip(faces, update.tracks, strict=True)]


def _steady(face: Face, track: Track, class_names: list[str]) -> Face:
    if not face.probabilities or len(face.probabilities) != len(class_names):
        return face
    mean = np.mean(track.recent, axis=0)
    best = int(mean.argmax())
    return Face(face.box, class_names[best], float(mean[best]), tuple(mean.tolist()))
