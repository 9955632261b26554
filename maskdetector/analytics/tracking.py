"""Box tracking across frames, so statistics count people rather than frames and alerts can wait N frames.

Faces of consecutive frames are matched greedily by box overlap (IoU, best pairs first). A track that finds
no face for `max_missed` frames ends. A track becomes one sighting once it has been seen in `min_hits` frames,
so a one-frame false detection never counts, labelled with its most frequent label up to then.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from maskdetector.types import Face
from maskdetector.vision.boxes import greedy_match

IOU_THRESHOLD = 0.3  # loose: faces move between frames, and different people rarely overlap this much
MIN_HITS = 3
MAX_MISSED = 10  # frames: bridges a face the detector misses now and then


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


@dataclass(frozen=True)
class TrackUpdate:
    seen: list[Track]  # tracks matched or started in this frame
    new_sightings: list[Track]  # tracks that have just reached min_hits: count each of them once


class BoxTracker:
    """Tracks of one source; feed it every analysed frame's faces in order. Not thread-safe."""

    def __init__(self, iou_threshold: float = IOU_THRESHOLD, min_hits: int = MIN_HITS, max_missed: int = MAX_MISSED):
        self._iou_threshold = iou_threshold
        self._min_hits = min_hits
        self._max_missed = max_missed
        self._tracks: list[Track] = []
        self._next_id = 1

    def update(self, faces: Sequence[Face]) -> TrackUpdate:
        matches = greedy_match(
            [track.face.box for track in self._tracks], [face.box for face in faces], self._iou_threshold
        )
        matched_tracks = {t for t, _ in matches}
        matched_faces = {f for _, f in matches}
        seen: list[Track] = []
        for t, f in matches:
            self._tracks[t].see(faces[f])
            seen.append(self._tracks[t])
        for t, track in enumerate(self._tracks):
            if t not in matched_tracks:
                track.missed += 1
        self._tracks = [track for track in self._tracks if track.missed <= self._max_missed]
        for f, face in enumerate(faces):
            if f not in matched_faces:
                track = Track(self._next_id, face)
                track.see(face)
                self._next_id += 1
                self._tracks.append(track)
                seen.append(track)
        new_sightings = [track for track in seen if not track.counted and track.hits >= self._min_hits]
        for track in new_sightings:
            track.counted = True
        return TrackUpdate(seen, new_sightings)

    def reset(self) -> None:
        """Forget every track (after a gap in the frames, old boxes say nothing about new faces)."""
        self._tracks = []
