"""Evidence per crossing: a few JPEG frames around each crossing, so a disputed count can be looked at.

A count is a number nobody can check; a business that reconciles stock against it needs to see the crossing. So the
loop keeps a short ring of recent frames, shrunk to ``width`` pixels (``ring`` frames: a few MB, never the camera's
full frames), and for each crossing the counter reports, an evidence item is made: frames from before the crossing
where the track's centre is still on the side it came from, the crossing frame, and frames after it, each with the
track's box (thick), the other tracked boxes (thin) and the line drawn, plus ``evidence.json`` (the event, the line
and every box in the saved images' pixels), in a folder named by the crossing's ``event_id``.

Nothing here may delay the loop or the crossing's message: the counter has sent the crossing (its outbox holds it)
before the loop hands it here, the loop's own share is one resize per frame, and drawing, blurring, JPEG encoding,
writing and uploading run on two background threads. The writer takes items through a bounded queue: a full queue
drops the item (counted, said in health and in a WARNING line) rather than hold the loop. The folder keeps a byte
budget: past it the oldest items go (counted). Uploads to ``s3://<bucket>/evidence/<thing>/<event_id>/`` use the
device's own credentials (Greengrass's token exchange service, as the captures do), and an item uploaded is marked
so a restart does not send it again; a failing S3 only delays uploads: the uploader retries after a backoff that
doubles up to ``MAX_BACKOFF_S``, and what waits is bounded by the folder's own budget (an item removed from the
folder is no longer waited for).

Privacy (evidence shows whoever walks past the camera): ``blur`` (everything outside the tracked boxes blurred: the
objects counted stay sharp, people and the room do not), ``crop`` (only the track's region, the same for every frame
of the item) or ``none``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .counting import Line
from .drawing import BoxStyle, draw_box
from .postprocess import Detection
from .telemetry import log_event

logger = logging.getLogger(__name__)

PREFIX = "evidence"  # the bucket's prefix: the device policy allows evidence/<its thing name>/* only
PRIVACY = ("blur", "crop", "none")
METADATA = "evidence.json"
UPLOADED = ".uploaded"  # the marker of an item whose files are all in S3
PARTIAL = ".partial-"  # an item being written: renamed to its event_id once whole, removed at start if left
MAX_BACKOFF_S = 300.0
TRACK_STYLE = BoxStyle(thickness=2, scale=0.45, smooth=False)  # the crossing track's box and label
OTHER_STYLE = BoxStyle(thickness=1)  # the other tracked boxes: thin, unlabelled
NEAR = 0.15  # a track this close to a line (a share of the frame; the counter's band is 0.04) has every frame kept
Box = tuple[int, int, int, int]
Uploader = Callable[[str, str], None]  # (local path, key): raises when the object did not land


@dataclass(frozen=True)
class EvidenceSettings:
    """What the recipe's Evidence* keys set (odedge.config); ``stride``: frames between two kept frames, so a few
    frames span the move across the line rather than three near-identical ones."""

    folder: str
    max_bytes: int
    frames: int = 4
    ring: int = 24
    width: int = 480
    privacy: str = "blur"
    queue: int = 8
    bucket: str = ""
    thing: str = "local"
    stride: int = 2
    quality: int = 80
    retry_s: float = 5.0  # the first wait after a failed upload, doubling to MAX_BACKOFF_S


@dataclass(frozen=True)
class Shot:
    """One frame in the ring: the shrunk image, its scale against the source, and the tracked boxes (source px)."""

    index: int
    time: float
    image: np.ndarray
    scale: float
    boxes: tuple[Detection, ...]

    def track(self, track_id: int) -> Detection | None:
        return next((d for d in self.boxes if d.track_id == track_id), None)


@dataclass
class Item:
    """A crossing waiting for its frames after: ``origin`` is the side of the line the track came from."""

    event: dict[str, Any]
    line: Line
    origin: int
    before: list[Shot]
    after: list[Shot] = field(default_factory=list)
    deadline: int = 0  # the last frame index waited for: a track that ended gives what it has
    size: tuple[int, int] = (0, 0)  # the source frame's (width, height)


def background() -> None:
    """Lower the calling thread's scheduling priority (Linux: a thread is a task of its own): the writer's JPEG
    encoding and the uploader yield the cores to the loop whenever both want them. Best effort elsewhere."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def centre(box: Sequence[int], width: float, height: float) -> tuple[float, float]:
    """A box's centre as fractions of the frame (the counter's coordinates)."""
    return ((box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height)


def shrink(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """The ring's copy: at most ``width`` pixels wide (one linear resize: the loop's whole cost per frame)."""
    import cv2

    if image.shape[1] <= width:
        return image, 1.0
    scale = width / image.shape[1]
    height = max(1, round(image.shape[0] * scale))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR), scale


class EvidenceRecorder:
    """The loop's side: ``observe`` once per processed frame (cheap), ``summary`` for health, ``close`` at stop."""

    def __init__(
        self,
        settings: EvidenceSettings,
        lines: Sequence[Line],
        uploader: Uploader | None = None,
    ) -> None:
        self.settings = settings
        self.lines = {line.name: line for line in lines}
        self.ring: deque[Shot] = deque(maxlen=settings.ring)
        self.waiting: list[Item] = []
        self.closed = False
        self.seen = 0  # frames observed: one in stride is kept
        self.before = max(1, settings.frames // 2)
        self.after = max(1, settings.frames - self.before)  # the crossing frame is the first of these
        self.store = EvidenceStore(settings)
        put = uploader if uploader is not None else (s3_uploader(settings.bucket) if settings.bucket else None)
        self.upload = EvidenceUploader(self.store, settings, put) if put is not None else None
        self.store.on_written = self.upload.add if self.upload is not None else None
        self.writer = EvidenceWriter(self.store, settings)
        if self.upload is not None:
            self.upload.start()

    def observe(self, image: np.ndarray, index: int, now: float, tracked: Sequence[Detection], events: Any) -> None:
        """Add this frame to the ring, give it to the crossings waiting for frames after, and start an item for
        each of this frame's crossings (``events``: the counter's, already in the outbox). A frame is shrunk and kept
        when a track is near a line (the frames an item is made of) or, else, one in ``stride`` (the items take
        frames ``stride`` apart): the resize is the loop's whole cost here."""
        self.seen += 1
        size = (image.shape[1], image.shape[0])
        boxes = tuple(d for d in tracked if d.track_id is not None)
        if not events and self.seen % self.settings.stride and not self._near(boxes, size):
            return
        small, scale = shrink(image, self.settings.width)
        shot = Shot(index, now, small, scale, boxes)
        for item in list(self.waiting):
            self._follow(item, shot)
        for event in events:
            self._start(event, shot, size)
        self.ring.append(shot)

    def _near(self, boxes: Sequence[Detection], size: tuple[int, int]) -> bool:
        """Whether a track's centre is within ``NEAR`` of a line (fractions of the frame): about to cross or just
        crossed, where the frames before and after a crossing come from."""
        for det in boxes:
            point = centre(det.box, *size)
            if any(line.side(point, NEAR) == 0 and line.spans(point) for line in self.lines.values()):
                return True
        return False

    def _start(self, event: dict[str, Any], shot: Shot, size: tuple[int, int]) -> None:
        line, det = self.lines.get(event["line"]), shot.track(event["track_id"])
        if line is None or det is None:
            return
        origin = -line.side(centre(det.box, *size), 0.0)  # the crossing frame is past the band on the new side
        before: list[Shot] = []
        for old in reversed(self.ring):  # the newest frames where the track was still on its side, stride apart
            if len(before) >= self.before:
                break
            seen = old.track(event["track_id"])
            far_enough = not before or before[-1].index - old.index >= self.settings.stride
            if seen is not None and far_enough and line.side(centre(seen.box, *size), 0.0) == origin:
                before.append(old)
        deadline = shot.index + self.settings.stride * self.after * 2
        item = Item(dict(event), line, origin, before[::-1], [shot], deadline, size)  # a copy: the counter's is its own
        if len(self.waiting) >= self.settings.queue:  # more crossings waiting than the writer could take
            self.store.dropped(event["event_id"], "waiting")
            return
        self.waiting.append(item)
        self._follow(item, None)

    def _follow(self, item: Item, shot: Shot | None) -> None:
        """Take ``shot`` as a frame after the crossing when it is ``stride`` on; the item goes to the writer once
        it has its frames or the deadline passed (a track that left the view)."""
        last = item.after[-1]
        if shot is not None and shot.index - last.index >= self.settings.stride and shot.track(item.event["track_id"]):
            item.after.append(shot)
        due = shot is not None and shot.index >= item.deadline
        if len(item.after) >= self.after or due:
            self.waiting.remove(item)
            self.writer.submit(item)

    def summary(self) -> dict[str, Any]:
        return {
            **self.store.summary(),
            "waiting": len(self.waiting),
            **(self.upload.summary() if self.upload is not None else {}),
        }

    def close(self, timeout: float = 2.0) -> None:
        """Stop: the crossings still waiting for frames after are written with what they have; the writer gets
        ``timeout`` to finish; the uploader stops at its next step (what it did not send goes at the next start).
        A second call does nothing."""
        if self.closed:
            return
        self.closed = True
        for item in list(self.waiting):
            self.waiting.remove(item)
            self.writer.submit(item)
        self.writer.close(timeout)
        if self.upload is not None:
            self.upload.close()


class EvidenceStore:
    """The folder: items by age, their bytes against the budget, and the health figures."""

    def __init__(self, settings: EvidenceSettings) -> None:
        self.settings = settings
        self.root = Path(settings.folder)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.items: OrderedDict[str, int] = OrderedDict()  # event_id -> bytes, oldest first
        self.figures = {"written": 0, "removed": 0, "dropped": 0, "write_errors": 0}
        self.on_written: Callable[[str], None] | None = None
        self._scan()

    def _scan(self) -> None:
        """The items a previous run left, oldest first; a partial one (a cut mid-write) is removed."""
        found = []
        for path in self.root.iterdir():
            if path.name.startswith(PARTIAL):
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_dir():  # its age: when its metadata was written (the upload marker touches the folder)
                files = [p for p in path.iterdir() if p.is_file()]
                written = (path / METADATA).stat().st_mtime if (path / METADATA).exists() else path.stat().st_mtime
                found.append((written, path.name, sum(p.stat().st_size for p in files)))
        for _, name, size in sorted(found):
            self.items[name] = size
        self.trim()

    def pending_uploads(self) -> list[str]:
        with self.lock:
            names = list(self.items)
        return [n for n in names if not (self.root / n / UPLOADED).exists()]

    def add(self, event_id: str, size: int) -> None:
        with self.lock:
            self.items[event_id] = size
            self.figures["written"] += 1
        self.trim()
        if self.on_written is not None and event_id in self.items:
            self.on_written(event_id)

    def trim(self, coming: int = 0) -> None:
        """The oldest items go until the folder is within its budget with room for ``coming`` bytes more (an item
        over the budget alone goes too)."""
        while True:
            with self.lock:
                total = sum(self.items.values()) + coming
                if total <= self.settings.max_bytes or not self.items:
                    return
                name, size = self.items.popitem(last=False)
                self.figures["removed"] += 1
            shutil.rmtree(self.root / name, ignore_errors=True)
            log_event(logger, "evidence.removed", event_id=name, bytes=size, budget=self.settings.max_bytes)

    def dropped(self, event_id: str, why: str) -> None:
        with self.lock:
            self.figures["dropped"] += 1
        log_event(logger, "evidence.dropped", level=logging.WARNING, event_id=event_id, why=why)

    def failed(self) -> None:
        with self.lock:
            self.figures["write_errors"] += 1

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "items": len(self.items),
                "bytes": sum(self.items.values()),
                "budget_bytes": self.settings.max_bytes,
                **self.figures,
            }


class EvidenceWriter:
    """The background thread that draws, encodes and writes items, through a bounded queue."""

    def __init__(self, store: EvidenceStore, settings: EvidenceSettings) -> None:
        self.store, self.settings = store, settings
        self.queue: queue.Queue[Item | None] = queue.Queue(maxsize=settings.queue)
        self.thread = threading.Thread(target=self._run, name="evidence-writer", daemon=True)
        self.thread.start()

    def submit(self, item: Item) -> None:
        """Never waits: a full queue drops the item (the loop's frame rate is worth more than one picture)."""
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.store.dropped(item.event["event_id"], "queue full")

    def _run(self) -> None:
        background()
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self.write(item)
            except Exception as exc:  # a full disk or a bad frame loses this picture, never the thread
                self.store.failed()
                log_event(
                    logger,
                    "evidence.write_failed",
                    level=logging.ERROR,
                    event_id=item.event["event_id"],
                    error=str(exc),
                )

    def write(self, item: Item) -> None:
        """The item's JPEGs and metadata under a partial name, then renamed: a folder named by an event_id is
        whole."""
        import cv2

        event_id = str(item.event["event_id"])
        partial = self.store.root / f"{PARTIAL}{event_id}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        frames, crop = render(item, self.settings)
        params = [int(cv2.IMWRITE_JPEG_QUALITY), self.settings.quality]
        for record, image in frames:
            ok, data = cv2.imencode(".jpg", image, params)
            if not ok:
                raise ValueError(f"JPEG encoding failed for frame {record['frame']}")
            (partial / record["file"]).write_bytes(data.tobytes())
        meta = metadata(item, [record for record, _ in frames], crop, self.settings)
        (partial / METADATA).write_text(json.dumps(meta, separators=(",", ":")))
        size = sum(p.stat().st_size for p in partial.iterdir())
        self.store.trim(size)  # room first: the finished items never add up to more than the budget
        final = self.store.root / event_id
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        log_event(logger, "evidence.written", event_id=event_id, frames=len(frames), bytes=size)
        self.store.add(event_id, size)

    def close(self, timeout: float) -> None:
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)


def _shots(item: Item) -> list[tuple[str, Shot]]:
    return [("before", s) for s in item.before] + [
        ("crossing" if i == 0 else "after", s) for i, s in enumerate(item.after)
    ]


def _crop_box(item: Item) -> Box | None:
    """``crop``: the track's boxes over the item's frames, with half a box's margin, in the shrunk frames' px."""
    boxes = [s.track(item.event["track_id"]) for _, s in _shots(item)]
    scaled = [tuple(v * s.scale for v in d.box) for d, (_, s) in zip(boxes, _shots(item), strict=True) if d]
    if not scaled:
        return None
    x1, y1 = min(b[0] for b in scaled), min(b[1] for b in scaled)
    x2, y2 = max(b[2] for b in scaled), max(b[3] for b in scaled)
    mx = sum(b[2] - b[0] for b in scaled) / len(scaled) / 2 + 8
    my = sum(b[3] - b[1] for b in scaled) / len(scaled) / 2 + 8
    height, width = item.after[0].image.shape[:2]
    return (max(0, int(x1 - mx)), max(0, int(y1 - my)), min(width, int(x2 + mx)), min(height, int(y2 + my)))


def _line_px(line: Line, width: int, height: int, offset: tuple[int, int]) -> list[list[int]]:
    return [[round(x * width) - offset[0], round(y * height) - offset[1]] for x, y in (line.start, line.end)]


def render(item: Item, settings: EvidenceSettings) -> tuple[list[tuple[dict[str, Any], np.ndarray]], Box | None]:
    """Each frame drawn (and blurred or cropped as asked), with its record for the metadata: boxes in the saved
    image's pixels, and the track's side of the line there (-1/+1; the item's ``origin`` before the crossing)."""
    crop = _crop_box(item) if settings.privacy == "crop" else None
    offset = (crop[0], crop[1]) if crop else (0, 0)
    out = []
    for number, (role, shot) in enumerate(_shots(item)):
        height, width = shot.image.shape[:2]
        boxes = [(d, tuple(round(v * shot.scale) for v in d.box)) for d in shot.boxes]
        image = _blur_outside(shot.image, [b for _, b in boxes]) if settings.privacy == "blur" else shot.image.copy()
        line = _line_px(item.line, width, height, (0, 0))
        _draw(image, boxes, line, item.event["track_id"])
        if crop:
            image = image[crop[1] : crop[3], crop[0] : crop[2]]
        track = next((b for d, b in boxes if d.track_id == item.event["track_id"]), None)
        record: dict[str, Any] = {
            "file": f"{number:02d}_{role}_{shot.index:06d}.jpg",
            "frame": shot.index,
            "time": round(shot.time, 3),
            "role": role,
            "boxes": [
                {"track_id": d.track_id, "label": d.label, "score": round(d.score, 3), "box": _shift(b, offset)}
                for d, b in boxes
            ],
        }
        if track is not None:
            record["track_box"] = _shift(track, offset)
            record["side"] = item.line.side(centre(track, width, height), 0.0)
        out.append((record, image))
    return out, crop


def _shift(box: tuple[int, ...], offset: tuple[int, int]) -> list[int]:
    return [box[0] - offset[0], box[1] - offset[1], box[2] - offset[0], box[3] - offset[1]]


def _blur_outside(image: np.ndarray, boxes: Sequence[tuple[int, ...]]) -> np.ndarray:
    """Everything outside the boxes blurred past recognition (a face, a badge); the boxes kept as they were."""
    import cv2

    height, width = image.shape[:2]  # blurred at a quarter of the size: the same look at a fifth of the cost
    small = cv2.resize(image, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(1.0, width / 240))
    out = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    for x1, y1, x2, y2 in boxes:
        out[max(0, y1) : y2, max(0, x1) : x2] = image[max(0, y1) : y2, max(0, x1) : x2]
    return out


def _draw(image: np.ndarray, boxes: Sequence[tuple[Detection, tuple[int, ...]]], line: Any, track_id: int) -> None:
    import cv2

    cv2.line(image, tuple(line[0]), tuple(line[1]), (0, 0, 255), 2, cv2.LINE_AA)
    for det, box in boxes:
        if det.track_id == track_id:  # the track that crossed: thick, named
            draw_box(image, box, (0, 255, 255), f"{det.label} #{det.track_id}", TRACK_STYLE)
        else:
            draw_box(image, box, (200, 200, 200), style=OTHER_STYLE)


def metadata(item: Item, records: list[dict[str, Any]], crop: Box | None, settings: EvidenceSettings) -> dict[str, Any]:
    """``evidence.json``: the event as the counts message says it, the line in the saved images' pixels, and each
    frame's boxes; enough to check the object was seen on both sides of the line without opening the JPEGs."""
    event = item.event
    first = item.after[0].image.shape
    offset = (crop[0], crop[1]) if crop else (0, 0)
    keys = ("event_id", "seq", "line", "class", "direction", "track_id", "time", "camera")
    return {
        "thing": settings.thing,
        **{k: event[k] for k in keys if k in event},
        "line_points": _line_px(item.line, first[1], first[0], offset),
        "origin_side": item.origin,
        "size": [first[1], first[0]],
        "source_size": list(item.size),
        "privacy": settings.privacy,
        **({"crop": list(crop)} if crop else {}),
        "frames": records,
    }


def s3_uploader(bucket: str) -> Uploader:
    """S3 with the device's credentials (the token exchange service under Greengrass) and short timeouts, so an
    unreachable S3 costs the uploader seconds, never the loop anything."""
    import boto3  # here, at start: importing it on the uploader's thread held the loop's GIL for a second
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2})
    client = boto3.client("s3", config=config)

    def put(path: str, key: str) -> None:
        client.upload_file(path, bucket, key)

    return put


class EvidenceUploader:
    """Best effort: each item's files to ``evidence/<thing>/<event_id>/``, oldest first, the metadata last; after a
    failure the next try waits (5 s, doubling to ``MAX_BACKOFF_S``)."""

    def __init__(self, store: EvidenceStore, settings: EvidenceSettings, put: Uploader) -> None:
        self.store, self.settings, self.put = store, settings, put
        self.queue: deque[str] = deque(store.pending_uploads())
        self.wake, self.stop = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.figures = {"uploaded": 0, "upload_errors": 0}
        self.backoff = 0.0
        self.thread = threading.Thread(target=self._run, name="evidence-uploader", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def add(self, event_id: str) -> None:
        with self.lock:
            self.queue.append(event_id)
        self.wake.set()

    def _next(self) -> str | None:
        """The oldest item still in the folder (one the budget removed is no longer waited for)."""
        with self.lock:
            while self.queue:
                name = self.queue[0]
                if (self.store.root / name).is_dir():
                    return name
                self.queue.popleft()
        return None

    def _run(self) -> None:
        background()
        while not self.stop.is_set():
            name = self._next()
            if name is None:
                self.wake.wait(5.0)
                self.wake.clear()
                continue
            sent = self._send(name)
            if sent is not False:  # sent, or removed by the budget meanwhile (None): the next one
                with self.lock:
                    if self.queue and self.queue[0] == name:
                        self.queue.popleft()
                    self.figures["uploaded"] += int(sent is True)
                self.backoff = 0.0
            else:
                self.backoff = min(MAX_BACKOFF_S, max(self.settings.retry_s, self.backoff * 2))
                self.stop.wait(self.backoff)

    def _send(self, name: str) -> bool | None:
        folder = self.store.root / name
        try:
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != UPLOADED)
            for path in sorted(files, key=lambda p: p.name == METADATA):  # the metadata last: it says "whole"
                self.put(str(path), f"{PREFIX}/{self.settings.thing}/{name}/{path.name}")
            (folder / UPLOADED).touch()
        except FileNotFoundError:  # removed by the budget meanwhile: nothing left to send
            return None
        except Exception as exc:
            with self.lock:
                self.figures["upload_errors"] += 1
            retry = min(MAX_BACKOFF_S, max(self.settings.retry_s, self.backoff * 2))
            log_event(
                logger, "evidence.upload_failed", level=logging.WARNING, event_id=name, error=str(exc), retry_s=retry
            )
            return False
        log_event(logger, "evidence.uploaded", event_id=name, files=len(files))
        return True

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {**self.figures, "upload_pending": len(self.queue)}

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        self.thread.join(0.5)
