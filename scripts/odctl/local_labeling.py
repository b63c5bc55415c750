"""A stand-in for a Ground Truth bounding-box job: labels an input manifest from the known boxes of
generated videos and writes the output manifest in Ground Truth's exact format, metadata included."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from odshared.core import storage
from odshared.core.errors import InvalidLine, OdError
from odshared.core.jsonl import check_invalid, iter_records, write_lines
from odshared.core.log import log_event
from odshared.data.groundtruth import HUMAN_CONFIDENCE, Box, LabeledImage, to_output_line
from odshared.data.input_manifest import video_stem

from .synth_video import read_boxes

logger = logging.getLogger(__name__)


def label_from_known_boxes(
    manifest: str,
    boxes_dir: str,
    out: str,
    classes: list[str],
    label_attribute: str = "bb",
    job_name: str = "local-labeling-job",
) -> int:
    """Write ``out`` with one labeled line per input line; frames map to ``<video>.boxes.jsonl``."""
    cache: dict[str, dict[int, dict]] = {}
    records, invalid = [], []
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    for number, raw, obj in iter_records(manifest):
        if isinstance(obj, InvalidLine):
            invalid.append(obj)
            continue
        ref = obj.get("source-ref", "")
        name = storage.basename(ref)
        stem = video_stem(name)
        try:
            frame = int(Path(name).stem.rsplit("_", 1)[1])
        except (IndexError, ValueError):
            invalid.append(InvalidLine(manifest, number, f"{name!r} is not named <video>_<frame>.jpg", raw))
            continue
        if stem not in cache:
            path = Path(boxes_dir) / f"{stem}.boxes.jsonl"
            if not path.exists():
                invalid.append(InvalidLine(manifest, number, f"no known boxes for video {stem!r} ({path})", raw))
                continue
            cache[stem] = read_boxes(path)
        record = cache[stem].get(frame)
        if record is None:
            invalid.append(InvalidLine(manifest, number, f"frame {frame} is not in {stem}.boxes.jsonl", raw))
            continue
        boxes = []
        for box in record["boxes"]:
            if box["class"] not in classes:
                raise OdError(f"{stem}.boxes.jsonl frame {frame}: class {box['class']!r} not in {classes}")
            boxes.append(
                Box(
                    classes.index(box["class"]),
                    box["left"],
                    box["top"],
                    box["width"],
                    box["height"],
                    confidence=HUMAN_CONFIDENCE,
                    class_name=box["class"],
                )
            )
        extra = {k: v for k, v in obj.items() if k != "source-ref"}
        image = LabeledImage(
            ref,
            record["width"],
            record["height"],
            3,
            tuple(boxes),
            extra=extra,
            human_annotated="yes",
            creation_date=created,
        )
        records.append(to_output_line(image, label_attribute, f"labeling-job/{job_name}"))
    check_invalid(invalid, skip_invalid=False)
    count = write_lines(out, records)
    log_event(logger, "local_labeling.done", manifest=manifest, out=out, lines=count)
    return count
