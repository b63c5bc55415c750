"""Looking at data before paying for it: contact sheets of manifests and Ground Truth labels drawn on images."""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from odshared.core import storage
from odshared.core.errors import InputDataError, InvalidLine
from odshared.core.jsonl import check_invalid, iter_records, parse_manifest, write_rejected
from odshared.core.log import log_event
from odshared.data.contact_sheet import decode, encode_png, evenly, grid
from odshared.data.groundtruth import LabeledImage, parse_output_line

from .progress import bar
from .synth_video import class_colour

logger = logging.getLogger(__name__)


class ImageLoader:
    """Loads the images a manifest names (from ``--images`` when given). An image that cannot be read or decoded is
    skipped, not fatal (a preview shows what it can), but never silently: the first few are named in a warning each
    and the rest counted, and a command whose every image failed says so in one line."""

    LOGGED = 5

    def __init__(self, manifest: str, images: str | None = None) -> None:
        self.manifest, self.images = manifest, images
        self.failed, self.unreadable, self.first_error = 0, 0, ""

    def __call__(self, ref: str) -> np.ndarray | None:
        uri = storage.relocated(ref, self.images)
        try:
            data = storage.read_bytes(uri)
        except Exception as exc:  # a missing image should not stop a preview of the others
            self.unreadable += 1
            self._skip(uri, str(exc))
            return None
        try:
            image = decode(data)
        except Exception:  # OpenCV raises on an empty buffer rather than returning None
            image = None
        if image is None:
            self._skip(uri, f"not a decodable image ({len(data)} bytes)")
        return image

    def _skip(self, uri: str, reason: str) -> None:
        self.failed += 1
        self.first_error = self.first_error or f"{uri}: {reason}"
        if self.failed <= self.LOGGED:
            log_event(logger, "preview.image_unreadable", level=logging.WARNING, uri=uri, error=reason)

    def check_any(self, loaded: int) -> None:
        """Warn with the count of skipped images not named; none shown at all is an error."""
        if self.failed > self.LOGGED:
            more = self.failed - self.LOGGED
            log_event(
                logger, "preview.images_unreadable", level=logging.WARNING, count=self.failed, more=f"and {more} more"
            )
        if loaded == 0 and self.failed:
            if self.unreadable:
                verb, fix = "read", "pass --images DIR|s3://… where the image files are"
            else:
                verb, fix = "decoded", "they are not image files (JPEG, PNG): fix the files or the manifest's lines"
            raise InputDataError(
                f"{self.manifest}: none of its {self.failed} images could be {verb} (first: {self.first_error}); {fix}"
            )


def preview_manifest(
    manifest: str, out: str, count: int = 48, columns: int = 8, images: str | None = None
) -> dict[str, Any]:
    """A contact sheet of up to ``count`` images spread evenly over the manifest."""
    refs: list[str] = []
    invalid: list[InvalidLine] = []
    for number, raw, obj in iter_records(manifest):
        if isinstance(obj, InvalidLine):
            invalid.append(obj)
        elif isinstance(obj.get("source-ref"), str):
            refs.append(obj["source-ref"])
        else:
            invalid.append(InvalidLine(manifest, number, "missing 'source-ref'", raw))
    check_invalid(invalid, skip_invalid=True)  # a preview shows what it can; the bad lines are logged
    for item in invalid:
        log_event(logger, "preview.invalid_line", level=logging.WARNING, where=item.describe())
    chosen = evenly(refs, count)
    load = ImageLoader(manifest, images)
    shown, captions = [], []
    with bar(len(chosen), "preview", "image") as pb:
        for ref in chosen:
            image = load(ref)
            if image is not None:
                shown.append(image)
                captions.append(PurePosixPath(storage.basename(ref)).stem)
            pb.update()
    load.check_any(len(shown))
    if not refs:
        raise InputDataError(f"{manifest}: no image to preview")
    storage.write_bytes(out, encode_png(grid(shown, captions, columns)), "image/png")
    summary: dict[str, Any] = {"out": out, "lines": len(refs), "shown": len(shown), "invalid_lines": len(invalid)}
    log_event(logger, "preview_manifest.done", **summary)
    return summary


def draw_labels(image: np.ndarray, labeled: LabeledImage) -> np.ndarray:
    """Boxes with class name and worker confidence, scaled to the image actually loaded."""
    import cv2

    canvas = image.copy()
    sx, sy = canvas.shape[1] / labeled.width, canvas.shape[0] / labeled.height
    thickness = max(2, canvas.shape[0] // 250)
    for box in labeled.boxes:
        name = box.class_name or f"class {box.class_id}"
        colour = class_colour(name)
        x0, y0 = int(box.left * sx), int(box.top * sy)
        x1, y1 = int((box.left + box.width) * sx), int((box.top + box.height) * sy)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (0, 0, 0), thickness + 2)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness)
        text = name if box.confidence is None else f"{name} {box.confidence:.2f}"
        scale = max(0.5, canvas.shape[0] / 900)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(canvas, (x0, max(0, y0 - th - 8)), (x0 + tw + 6, y0), colour, -1)
        cv2.putText(canvas, text, (x0 + 3, y0 - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def show_labels(
    manifest: str,
    out: str,
    label_attribute: str = "bb",
    limit: int | None = None,
    skip_invalid: bool = False,
    grid_count: int = 48,
    images: str | None = None,
) -> dict[str, Any]:
    """Write ``<stem>.labels.jpg`` per image and ``grid.png`` overview under ``out``."""
    import cv2

    valid, invalid = parse_manifest(manifest, lambda obj: parse_output_line(obj, label_attribute))
    check_invalid(invalid, skip_invalid)
    items = [image for _, _, _, image in valid][: limit or None]
    thumbs, captions, written = [], [], 0
    for_grid = {id(x) for x in evenly(items, grid_count)}
    load = ImageLoader(manifest, images)
    with bar(len(items), "show-labels", "image") as pb:
        for labeled in items:
            image = load(labeled.source_ref)
            pb.update()
            if image is None:
                continue
            drawn = draw_labels(image, labeled)
            stem = PurePosixPath(storage.basename(labeled.source_ref)).stem
            ok, data = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, 90])
            storage.write_bytes(storage.join(out, f"{stem}.labels.jpg"), data.tobytes(), "image/jpeg")
            written += 1
            if id(labeled) in for_grid:
                thumbs.append(drawn)
                captions.append(f"{stem} ({len(labeled.boxes)})")
    load.check_any(written)
    if not items:
        raise InputDataError(f"{manifest}: no labeled image to draw")
    storage.write_bytes(storage.join(out, "grid.png"), encode_png(grid(thumbs, captions)), "image/png")
    if invalid:
        write_rejected(storage.join(out, "rejected.jsonl"), invalid)
    summary: dict[str, Any] = {"out": out, "images": len(items), "written": written, "invalid_lines": len(invalid)}
    log_event(logger, "show_labels.done", **summary)
    return summary
