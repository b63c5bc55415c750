"""Ground Truth output manifests -> SageMaker training manifests.

Joins several labeling jobs, drops discarded images and low-confidence boxes, resolves class names
(from worker-picked class maps or from metadata keys), splits train/validation reproducibly and
optionally adds mirrored copies of the training images. The data-preparation Lambda and
``odctl prepare-training`` both call :func:`prepare_training`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import PurePosixPath
from typing import Any

from odshared.core import storage
from odshared.core.errors import InvalidLine, LineError, OdError
from odshared.core.jsonl import check_invalid, parse_manifest, write_lines, write_rejected
from odshared.core.log import log_event
from odshared.data.groundtruth import DEFAULT_LABEL_ATTRIBUTE, LabeledImage, parse_output_line, to_output_line
from odshared.data.hyperparameters import for_training
from odshared.data.stats import dataset_stats, render_stats_png

logger = logging.getLogger(__name__)

FLIP_SUFFIX = "_flip"


class PrepareError(OdError):
    """The options or the data cannot produce a training set."""


@dataclass(frozen=True)
class ClassRule:
    """``KEY=VALUE:CLASS``: every box of an image whose metadata KEY equals VALUE is of CLASS."""

    key: str
    value: str
    class_name: str

    @classmethod
    def parse(cls, text: str) -> ClassRule:
        head, sep, name = text.partition(":")
        key, eq, value = head.partition("=")
        if not sep or not eq or not key.strip() or not name.strip():
            raise PrepareError(f"--class-from {text!r}: expected KEY=VALUE:CLASS, e.g. color=blue:blue box")
        return cls(key.strip(), value.strip(), name.strip())

    def matches(self, image: LabeledImage) -> bool:
        return str(image.extra.get(self.key)) == self.value


@dataclass(frozen=True)
class PrepareOptions:
    label_attribute: str = DEFAULT_LABEL_ATTRIBUTE
    discard: frozenset[str] = frozenset()
    min_confidence: float = 0.0
    class_rules: tuple[ClassRule, ...] = ()
    classes: tuple[str, ...] | None = None
    validation_fraction: float = 0.1
    seed: int = 42
    flip: bool = False
    keep_empty: bool = False
    skip_invalid: bool = False
    workers: int = 8
    # the run's hyperparameters: when given, completed from the data (num_training_samples, num_classes) and
    # checked before anything is written; the workflow passes the result to CreateTrainingJob
    hyperparameters: Mapping[str, str] | None = None
    flip_to: str | None = None  # where mirrored images go (default: beside the originals)
    images: str | None = None  # where the images' files are, when the source-refs point elsewhere

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise PrepareError(f"validation fraction must be in [0, 1), got {self.validation_fraction}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise PrepareError(f"min confidence must be in [0, 1], got {self.min_confidence}")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise PrepareError(f"class names must be unique, got {list(self.classes)}")


@dataclass
class PrepareResult:
    """Where the outputs went and what they hold; returned to the CLI and to the workflow."""

    train_manifest: str
    validation_manifest: str
    classes_json: str
    stats_json: str
    stats_png: str
    classes: list[str]
    counts: dict[str, int]
    rejected: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_manifest": self.train_manifest,
            "validation_manifest": self.validation_manifest,
            "classes_json": self.classes_json,
            "stats_json": self.stats_json,
            "stats_png": self.stats_png,
            "rejected": self.rejected,
            "classes": self.classes,
            "num_classes": len(self.classes),
            "num_training_samples": self.counts["train_images"],
            "counts": self.counts,
            "hyperparameters": self.hyperparameters,
        }


@dataclass(frozen=True)
class _Entry:
    source: str
    line: int
    raw: str
    image: LabeledImage


def read_output_manifests(manifests: Sequence[str], label_attribute: str) -> tuple[list[_Entry], list[InvalidLine]]:
    """Every line of the Ground Truth output manifests with where it came from, and the lines that failed."""
    entries: list[_Entry] = []
    invalid: list[InvalidLine] = []
    for uri in manifests:
        valid, rejected = parse_manifest(uri, lambda obj: parse_output_line(obj, label_attribute))
        entries.extend(_Entry(*item) for item in valid)
        invalid.extend(rejected)
    return entries, invalid


def _name_boxes(entry: _Entry, rules: Sequence[ClassRule], classes: Sequence[str] | None) -> LabeledImage:
    """Give each box its class name: a matching metadata rule wins over the job's class-map."""
    image = entry.image
    rule = next((r for r in rules if r.matches(image)), None)
    boxes = []
    for index, box in enumerate(image.boxes):
        name = rule.class_name if rule else box.class_name
        if name is None:
            raise LineError(
                f"annotation {index}: class_id {box.class_id} is not in the class-map "
                f"{image.class_map} and no --class-from rule matches this line"
            )
        if classes is not None and name not in classes:
            raise LineError(f"annotation {index}: unknown class {name!r} (expected one of {list(classes)})")
        boxes.append(replace(box, class_name=name))
    return replace(image, boxes=tuple(boxes))


def check_rules_match(images: Sequence[LabeledImage], options: PrepareOptions) -> None:
    """A rule or filter that matches nothing is a typo (an error) or, where the data may legitimately lack it, a
    warning with the count: never silently nothing."""
    keys = {key for image in images for key in image.extra}
    for rule in options.class_rules:
        if rule.key not in keys:
            raise PrepareError(
                f"--class-from {rule.key}={rule.value}:{rule.class_name}: no line has the key {rule.key!r} "
                f"(keys present: {sorted(keys) or 'none'})"
            )
        if not any(rule.matches(image) for image in images):
            log_event(logger, "prepare.rule_matched_nothing", level=logging.WARNING, rule=rule.key + "=" + rule.value)
    unmatched = [
        d for d in sorted(options.discard) if not any(_is_discarded(i.source_ref, frozenset({d})) for i in images)
    ]
    if unmatched:
        log_event(logger, "prepare.discard_unmatched", level=logging.WARNING, count=len(unmatched), first=unmatched[:3])


def _is_discarded(ref: str, discard: frozenset[str]) -> bool:
    name = PurePosixPath(ref).name
    return ref in discard or name in discard or PurePosixPath(name).stem in discard


def _validation_score(ref: str, seed: int) -> float:
    """A stable pseudo-random number per image: adding images never moves the others between splits. It hashes the
    image's folder and name only: the same frames under another root (a work folder elsewhere, a copied bucket)
    split the same way, so the same data trains the same model (a hash of the whole path made every new work folder
    another split, and another model)."""
    place = "/".join(ref.replace("\\", "/").rstrip("/").split("/")[-2:])
    digest = hashlib.sha256(f"{seed}:{place}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split(images: Sequence[LabeledImage], fraction: float, seed: int) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """Reproducible train/validation split by image (never an image in both)."""
    if fraction <= 0 or len(images) < 2:
        return list(images), []
    scores = [_validation_score(image.source_ref, seed) for image in images]
    val = {i for i, score in enumerate(scores) if score < fraction}
    if not val:
        val = {min(range(len(images)), key=scores.__getitem__)}
    if len(val) == len(images):
        val.discard(max(val, key=scores.__getitem__))
    train = [image for i, image in enumerate(images) if i not in val]
    return train, [image for i, image in enumerate(images) if i in val]


def flipped_ref(ref: str, flip_to: str | None = None) -> str:
    """Beside the original, or under ``flip_to`` when the originals' place cannot be written (another's bucket)."""
    path = PurePosixPath(storage.basename(ref))
    return storage.join(flip_to or storage.parent(ref), f"{path.stem}{FLIP_SUFFIX}{path.suffix}")


def flip_image(image: LabeledImage, flip_to: str | None = None, images: str | None = None) -> LabeledImage:
    """Write the mirrored image (once) and return its labels; ``images`` is where the originals' files are when
    the source-refs point elsewhere."""
    target = flipped_ref(image.source_ref, flip_to)
    if not storage.exists(target):
        from PIL import Image, ImageOps

        with Image.open(io.BytesIO(storage.read_bytes(storage.relocated(image.source_ref, images)))) as original:
            if original.size != (image.width, image.height):
                raise PrepareError(
                    f"{image.source_ref}: image is {original.size[0]}x{original.size[1]} but its labels "
                    f"say {image.width}x{image.height}"
                )
            buffer = io.BytesIO()
            ImageOps.mirror(original.convert("RGB")).save(buffer, format="JPEG", quality=95)
        storage.write_bytes(target, buffer.getvalue(), "image/jpeg")
    boxes = tuple(box.mirrored(image.width) for box in image.boxes)
    return replace(image, source_ref=target, boxes=boxes)


def check_images_exist(images: Sequence[LabeledImage], folder: str | None) -> None:
    """Local frames the labels point at must be there (training would fail on them later, far from the cause);
    frames in S3 are left to the training job (a HEAD per frame in the Lambda), and said so."""
    local = [storage.relocated(image.source_ref, folder) for image in images]
    local = [ref for ref in local if not storage.is_s3(ref)]
    missing = [ref for ref in local if not storage.exists(ref)]
    if missing:
        raise PrepareError(
            f"{missing[0]}: no such image ({len(missing)} of {len(local)} labeled images missing): the labels point "
            "where the frames are not; pass --images DIR, the folder that holds them"
        )
    if len(local) < len(images):
        log_event(logger, "prepare.s3_images_not_checked", images=len(images) - len(local))


def prepare_training(manifests: Sequence[str], out: str, options: PrepareOptions | None = None) -> PrepareResult:
    """Turn Ground Truth output manifests into train/validation manifests, classes.json and stats."""
    options = options or PrepareOptions()
    if not manifests:
        raise PrepareError("no output manifest given")
    storage.check_bucket(out)
    entries, invalid = read_output_manifests(manifests, options.label_attribute)

    named: list[LabeledImage] = []
    for entry in entries:
        try:
            named.append(_name_boxes(entry, options.class_rules, options.classes))
        except LineError as exc:
            invalid.append(InvalidLine(entry.source, entry.line, str(exc), entry.raw))
    order = {uri: i for i, uri in enumerate(manifests)}
    invalid.sort(key=lambda item: (order.get(item.source, 0), item.line))
    check_invalid(invalid, options.skip_invalid)
    check_rules_match([entry.image for entry in entries], options)

    counts = {"input_lines": len(entries) + len(invalid), "invalid_lines": len(invalid)}
    by_ref: dict[str, LabeledImage] = {}
    discarded = 0
    for image in named:
        if _is_discarded(image.source_ref, options.discard):
            discarded += 1
            continue
        by_ref[image.source_ref] = image  # a later job's labels for the same image win (e.g. an adjustment job)
    counts["discarded_images"] = discarded
    counts["duplicate_images"] = len(named) - discarded - len(by_ref)

    classes = list(options.classes) if options.classes is not None else _class_order(by_ref.values(), options)
    present = {box.class_name for image in by_ref.values() for box in image.boxes}
    if absent := [name for name in classes if name not in present]:  # legitimate (a job without that class)
        log_event(logger, "prepare.classes_without_boxes", level=logging.WARNING, classes=absent)
    class_ids = {name: i for i, name in enumerate(classes)}
    kept: list[LabeledImage] = []
    low_confidence = empty = 0
    for image in by_ref.values():
        boxes = []
        for box in image.boxes:
            if box.confidence is not None and box.confidence < options.min_confidence:
                low_confidence += 1
                continue
            boxes.append(replace(box, class_id=class_ids[str(box.class_name)]))
        if not boxes and not options.keep_empty:
            empty += 1
            continue
        kept.append(replace(image, boxes=tuple(boxes)))
    counts["low_confidence_boxes"] = low_confidence
    counts["empty_images_dropped"] = empty
    if not kept:
        raise PrepareError("no labeled image is left after filtering; nothing to train on")

    check_images_exist(kept, options.images)
    train, validation = split(kept, options.validation_fraction, options.seed)
    if options.flip:
        flip = partial(flip_image, flip_to=options.flip_to, images=options.images)
        flipped = list(storage.parallel_map(flip, train, options.workers))
        counts["flipped_images"] = len(flipped)
        train = train + flipped
    counts["train_images"] = len(train)
    counts["validation_images"] = len(validation)
    hyper = None
    if options.hyperparameters is not None:
        max_objects = max(len(image.boxes) for image in train + validation)
        hyper = for_training(options.hyperparameters, len(train), len(classes), max(1, max_objects))

    result = _write_outputs(out, train, validation, classes, counts, options, invalid)
    result.hyperparameters = hyper
    log_event(logger, "prepare_training.done", out=out, classes=classes, **counts)
    return result


def _class_order(images: Any, options: PrepareOptions) -> list[str]:
    """Rule classes in the order given, then any other class name in sorted order."""
    order: list[str] = []
    for rule in options.class_rules:
        if rule.class_name not in order:
            order.append(rule.class_name)
    others = sorted({box.class_name for image in images for box in image.boxes} - set(order))
    return order + others


def _write_outputs(
    out: str,
    train: list[LabeledImage],
    validation: list[LabeledImage],
    classes: list[str],
    counts: dict[str, int],
    options: PrepareOptions,
    invalid: list[InvalidLine],
) -> PrepareResult:
    attr = options.label_attribute
    paths = {
        name: storage.join(out, name)
        for name in (
            "train.manifest",
            "validation.manifest",
            "classes.json",
            "stats.json",
            "stats.png",
            "rejected.jsonl",
        )
    }
    write_lines(paths["train.manifest"], (to_output_line(image, attr) for image in train))
    write_lines(paths["validation.manifest"], (to_output_line(image, attr) for image in validation))
    storage.write_text(
        paths["classes.json"],
        json.dumps({"classes": classes, "label_attribute": attr}, indent=2) + "\n",
        "application/json",
    )
    stats = dataset_stats({"train": train, "validation": validation}, classes)
    stats["counts"] = counts
    storage.write_text(paths["stats.json"], json.dumps(stats, indent=2) + "\n", "application/json")
    storage.write_bytes(paths["stats.png"], render_stats_png(stats), "image/png")
    rejected = None
    if invalid:
        write_rejected(paths["rejected.jsonl"], invalid)
        rejected = paths["rejected.jsonl"]
    return PrepareResult(
        train_manifest=paths["train.manifest"],
        validation_manifest=paths["validation.manifest"],
        classes_json=paths["classes.json"],
        stats_json=paths["stats.json"],
        stats_png=paths["stats.png"],
        classes=classes,
        counts=counts,
        rejected=rejected,
        stats=stats,
    )
