"""Tracking: each detection gets a stable ``track_id`` across frames (ByteTrack's two-stage association).

Per frame: every track moves by its velocity; detections at or above ``high`` are matched to all tracks (lost ones
included) by IoU, then detections between ``low`` and ``high`` to the well-established tracks still unmatched
(``established`` frames matched by strong boxes, lost ones included), so a box whose score dips behind the pole
keeps its track, while a weak model's false track, seen strongly for a frame or two, is not carried along by the
low boxes around it (it would drift across a line and count). A track continued by weak boxes alone for ``max_weak``
frames in a row takes no more of them until a strong box matches it again: a duplicate box that outlived its object
(a second, oversized box of the same object, kept by NMS at low overlap) otherwise lives on the weak boxes left where
the object was and is counted again when it drifts. Matching is a linear assignment (lapx's
Jonker-Volgenant) on 1 - IoU, same class only. A strong detection still unmatched is then given to a lost confirmed
track whose predicted centre is within ``reach`` box diagonals of it (noisy boxes make a lost track's prediction
overlap its object too little for IoU; without this it came back as a new track: an identity switch, and a second
count at a line). Otherwise it starts a track, confirmed after ``min_hits`` frames; a track unmatched for
``max_lost`` frames ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .postprocess import Detection


@dataclass
class Track:
    track_id: int
    class_id: int
    box: np.ndarray  # x1, y1, x2, y2 in pixels (float)
    velocity: np.ndarray  # per frame, smoothed
    hits: int = 1
    strong_hits: int = 1  # frames matched by a box at or above ``high``: how established the track is
    misses: int = 0
    weak_run: int = 0  # frames in a row matched only by boxes under ``high``
    confirmed: bool = False

    def predict(self) -> np.ndarray:
        ahead: np.ndarray = self.box + self.velocity * (self.misses + 1)
        return ahead

    def update(self, box: np.ndarray, min_hits: int, strong: bool) -> None:
        step = (box - self.box) / (self.misses + 1)
        self.velocity = 0.6 * self.velocity + 0.4 * step
        self.box, self.misses, self.hits = box, 0, self.hits + 1
        self.strong_hits += int(strong)
        self.weak_run = 0 if strong else self.weak_run + 1
        self.confirmed = self.confirmed or self.hits >= min_hits


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N,4) with every box of ``b`` (M,4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    result: np.ndarray = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    return result


def _recover(tracks: Sequence[Track], dets: Sequence[Detection], reach: float) -> list[tuple[int, int]]:
    """Lost tracks and new strong detections by centre distance (in predicted box diagonals, within ``reach``),
    same class: a box that came back near where its track was heading is that object, even where noisy boxes
    made the prediction overlap it too little for IoU."""
    if not tracks or not dets:
        return []
    import lap

    predicted = np.array([t.predict() for t in tracks])
    boxes = np.array([d.box for d in dets], dtype=float)
    centres = (predicted[:, None, :2] + predicted[:, None, 2:]) / 2 - (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
    diagonal = np.hypot(predicted[:, 2] - predicted[:, 0], predicted[:, 3] - predicted[:, 1])
    cost = np.hypot(centres[..., 0], centres[..., 1]) / np.maximum(diagonal[:, None], 1e-9)
    same = np.array([[t.class_id == d.class_id for d in dets] for t in tracks])
    cost[~same] = reach + 1.0
    _, rows, _ = lap.lapjv(cost, extend_cost=True, cost_limit=reach)
    return [(i, int(j)) for i, j in enumerate(rows) if j >= 0 and cost[i, j] <= reach]


def _assign(tracks: Sequence[Track], dets: Sequence[Detection], min_iou: float) -> list[tuple[int, int]]:
    """(track index, detection index) pairs of the best assignment with IoU >= ``min_iou``, same class only."""
    if not tracks or not dets:
        return []
    import lap

    predicted = np.array([t.predict() for t in tracks])
    boxes = np.array([d.box for d in dets], dtype=float)
    cost = 1.0 - iou_matrix(predicted, boxes)
    same = np.array([[t.class_id == d.class_id for d in dets] for t in tracks])
    cost[~same] = 1.0
    _, rows, _ = lap.lapjv(cost, extend_cost=True, cost_limit=1.0 - min_iou)
    return [(i, int(j)) for i, j in enumerate(rows) if j >= 0 and cost[i, j] <= 1.0 - min_iou]


class Tracker:
    def __init__(
        self,
        high: float = 0.5,
        low: float = 0.1,
        min_iou: float = 0.3,
        max_lost: int = 30,
        min_hits: int = 2,
        reach: float = 0.75,
        first_iou: float = 0.2,
        established: int = 5,
        max_weak: int = 10,
    ) -> None:
        """``first_iou``: the strong boxes' overlap with a track's prediction (ByteTrack's first association, 0.2);
        ``min_iou``: the weak boxes' (stricter: a weak box is more likely a false one)."""
        self.high, self.low, self.min_iou, self.max_lost, self.min_hits = high, low, min_iou, max_lost, min_hits
        self.reach, self.first_iou, self.established, self.max_weak = reach, first_iou, established, max_weak
        self.tracks: list[Track] = []
        self.next_id = 1
        self.ended: list[int] = []  # the tracks the last update ended (the counter forgets them)
        self.confirmed_now = 0  # the tracks the last update confirmed (odedge.quality watches their rate)

    def update(self, dets: Sequence[Detection]) -> list[Detection]:
        """This frame's detections (scores >= ``low``); returns those matched to confirmed tracks or starting
        one, with ``track_id`` set on the confirmed ones."""
        self.confirmed_now = 0
        strong = [d for d in dets if d.score >= self.high]
        weak = [d for d in dets if self.low <= d.score < self.high]
        out: list[Detection] = []
        first = _assign(self.tracks, strong, self.first_iou)
        for i, j in first:
            out.append(self._follow(self.tracks[i], strong[j], True))
        matched, used = {i for i, _ in first}, {j for _, j in first}
        waiting = [i for i, t in enumerate(self.tracks) if i not in matched and self._takes_weak(t)]
        for k, j in _assign([self.tracks[i] for i in waiting], weak, self.min_iou):
            out.append(self._follow(self.tracks[waiting[k]], weak[j], False))
            matched.add(waiting[k])
        lost = [i for i, t in enumerate(self.tracks) if i not in matched and t.confirmed and t.misses > 0]
        unused = [j for j in range(len(strong)) if j not in used]
        for k, m in _recover([self.tracks[i] for i in lost], [strong[j] for j in unused], self.reach):
            out.append(self._follow(self.tracks[lost[k]], strong[unused[m]], True))
            matched.add(lost[k])
            used.add(unused[m])
        for index, track in enumerate(self.tracks):
            if index not in matched:
                track.misses += 1
        # a confirmed track lives through max_lost frames unseen; a tentative one ends at its first miss
        alive = {id(t) for t in self.tracks if t.misses <= self.max_lost and (t.confirmed or t.misses == 0)}
        self.ended = [t.track_id for t in self.tracks if id(t) not in alive]
        self.tracks = [t for t in self.tracks if id(t) in alive]
        for j, det in enumerate(strong):
            if j not in used:
                self.tracks.append(Track(self.next_id, det.class_id, np.array(det.box, float), np.zeros(4)))
                self.next_id += 1
                out.append(det)
        return out

    def _takes_weak(self, track: Track) -> bool:
        return track.strong_hits >= self.established and track.weak_run < self.max_weak

    def _follow(self, track: Track, det: Detection, strong: bool) -> Detection:
        was = track.confirmed
        track.update(np.array(det.box, float), self.min_hits, strong)
        self.confirmed_now += int(track.confirmed and not was)
        return replace(det, track_id=track.track_id) if track.confirmed else det
