"""INT8 calibration frames: chosen evenly from a manifest or a folder, decoded and preprocessed by the device's own
code (odedge.preprocess), kept as uint8 so 64 frames of 512x512 are 50 MB before compression.

Its own step (and Lambda) because OpenCV and ONNX Runtime together do not fit one Lambda bundle (250 MB).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from odshared.core import storage
from odshared.core.errors import StorageError
from odshared.core.jsonl import check_invalid, iter_records, parse_manifest
from odshared.core.log import log_event
from odshared.data.contact_sheet import decode, evenly
from odshared.data.groundtruth import parse_output_line
from odshared.data.hyperparameters import validate
from odshared.data.input_manifest import IMAGE_SUFFIXES
from odshared.model.evaluation import normalized_boxes
from odshared.model.quantize import Calibration, CalibrationError
from odshared.model.scoring import EVALUATION_FILE, EvaluationSet

logger = logging.getLogger(__name__)

DEFAULT_CALIBRATION_IMAGES = 64
# below this many frames the activation ranges come from too few scenes: the conversion goes on and warns
MIN_CALIBRATION_IMAGES = 16
MANIFEST_SUFFIXES = (".manifest", ".jsonl")
CALIBRATION_FILE = "calibration.npz"


def _manifest_refs(uri: str) -> list[str]:
    refs = []
    for number, _raw, record in iter_records(uri):
        if not isinstance(record, dict):
            raise CalibrationError(f"{uri}:{number}: {record.reason}")
        ref = record.get("source-ref")
        if not isinstance(ref, str) or not ref:
            raise CalibrationError(f"{uri}:{number}: no source-ref (a calibration manifest lists images)")
        refs.append(ref)
    return refs


def list_images(source: str) -> list[str]:
    """The images a manifest (path or s3://) lists, or those under a folder or prefix."""
    try:
        if source.lower().endswith(MANIFEST_SUFFIXES):
            return _manifest_refs(source)
        return list(storage.list_files(source, IMAGE_SUFFIXES))
    except StorageError as exc:
        raise CalibrationError(f"calibration data {source}: {exc}") from exc


def build_calibration(sources: list[str], size: int, count: int = DEFAULT_CALIBRATION_IMAGES) -> Calibration:
    """``count`` frames spread evenly over the sources, filled in order (the validation manifest, then the training
    one where validation has too few), each as the device feeds it to a ``size`` x ``size`` network."""
    if count < 1:
        raise CalibrationError(f"calibration images: must be at least 1 (got {count})")
    chosen: list[str] = []
    used: list[str] = []
    available = 0
    for source in sources:
        refs = list_images(source)
        available += len(refs)
        if refs and len(chosen) < count:
            chosen += evenly(refs, count - len(chosen))
            used.append(source)
    if not chosen:
        raise CalibrationError(f"calibration data {', '.join(sources)}: no image in it ({', '.join(IMAGE_SUFFIXES)})")
    described = " + ".join(used)
    if len(chosen) < MIN_CALIBRATION_IMAGES:
        log_event(
            logger,
            "calibration.few_images",
            level=logging.WARNING,
            source=described,
            images=len(chosen),
            advised=MIN_CALIBRATION_IMAGES,
            hint="INT8 ranges from so few frames may cost accuracy: give more frames of the scenes the device sees",
        )
    frames = np.stack([_frame(ref, described, size) for ref in chosen])
    log_event(logger, "calibration.built", source=described, images=len(chosen), available=available, size=size)
    return Calibration(frames, described, tuple(chosen), available)


def _frame(ref: str, source: str, size: int) -> np.ndarray:
    from odedge.preprocess import preprocess

    try:
        image = decode(storage.read_bytes(ref))
    except StorageError as exc:
        raise CalibrationError(f"calibration image {ref}: {exc}") from exc
    if image is None:
        raise CalibrationError(f"calibration image {ref}: not a decodable image (listed in {source})")
    # the device's blob holds the resized 8-bit values as float32: kept as uint8, nothing is lost
    return preprocess(image, size)[0][0].astype(np.uint8)


def build_evaluation_set(manifest: str, label_attribute: str, size: int, limit: int) -> EvaluationSet:
    """At most ``limit`` labeled frames of the validation manifest, spread evenly, preprocessed as the device does,
    with their boxes: what the scoring step runs each precision of the converted model on."""
    valid, invalid = parse_manifest(manifest, lambda obj: parse_output_line(obj, label_attribute))
    check_invalid(invalid, skip_invalid=False)
    chosen = evenly([item for _, _, _, item in valid], limit)
    if not chosen:
        raise CalibrationError(f"{manifest}: no labeled frame to score the model on")
    for item in chosen:
        if any(box.class_name is None for box in item.boxes):
            raise CalibrationError(f"{manifest}: {item.source_ref} has boxes without a class-map entry")
    frames = np.stack([_frame(item.source_ref, manifest, size) for item in chosen])
    boxes = tuple(normalized_boxes(item) for item in chosen)
    labels = tuple(tuple(str(box.class_name) for box in item.boxes) for item in chosen)
    evaluation = EvaluationSet(frames, boxes, labels, manifest)
    log_event(logger, "evaluation_set.built", available=len(valid), **evaluation.describe())
    return evaluation


def write_calibration(uri: str, calibration: Calibration) -> dict[str, object]:
    storage.write_bytes(uri, calibration.to_bytes(), "application/octet-stream")
    return {"calibration": uri, **calibration.describe(), "image_size": int(calibration.frames.shape[-1])}


def prepare_calibration(
    manifests: list[str],
    hyperparameters: Mapping[str, str],
    count: int = DEFAULT_CALIBRATION_IMAGES,
    label_attribute: str | None = None,
    evaluation_images: int = 0,
) -> dict[str, object]:
    """The workflow's step: the run's frames (validation first) at the size training uses, written beside the first
    manifest, before the training job starts (a bad frame fails the run before it pays for training); with
    ``evaluation_images``, also the validation frames the converted model is scored on."""
    size = int(validate(hyperparameters, require=False)["image_shape"])
    calibration = build_calibration(manifests, size, count)
    folder = storage.parent(manifests[0])
    result = write_calibration(storage.join(folder, CALIBRATION_FILE), calibration)
    if evaluation_images and label_attribute:
        evaluation = build_evaluation_set(manifests[0], label_attribute, size, evaluation_images)
        uri = storage.join(folder, EVALUATION_FILE)
        storage.write_bytes(uri, evaluation.to_bytes(), "application/octet-stream")
        result["evaluation"] = {"uri": uri, **evaluation.describe()}
    return result
