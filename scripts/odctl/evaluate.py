"""``odctl evaluate``: mAP of a model (SageMaker/local model.tar.gz or a converted package) on a labeled manifest.

Inference runs through the device's own code (odedge: preprocessing, ONNX Runtime, postprocessing), so the
figure is what the fleet will see.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from odedge.model import ModelPackage
from odedge.preprocess import preprocess
from odshared.core import storage
from odshared.core.errors import OdError
from odshared.core.log import log_event
from odshared.model.convert import convert
from odshared.model.evaluation import normalized_boxes
from odshared.model.package import download_package
from odshared.model.scoring import LabeledFrame, score_frames

from .pr_curves import render_pr_png
from .progress import bar
from .training_data import read_training_images

logger = logging.getLogger(__name__)


def open_package(model: str, workdir: str, classes: list[str] | None = None) -> ModelPackage:
    """A converted package from a folder, or converted on the fly from a model.tar.gz."""
    if model.endswith(".tar.gz"):
        convert(model, workdir, classes)
        return ModelPackage.load(workdir)
    if storage.is_s3(model):
        return ModelPackage.load(download_package(model, Path(workdir)))
    return ModelPackage.load(model)


class EvaluateError(OdError):
    """The manifest and the model cannot be compared as given."""


def class_ids_by_name(
    labeled: list, model_classes: list[str], manifest: str, mapping: dict[str, str] | None = None
) -> dict[str, int]:
    """Ground-truth class name -> the model's class id. Matching by name: a manifest whose ids differ from the
    model's (another job's class-map, a relabelled set) must not be scored against the wrong class."""
    mapping = mapping or {}
    unknown = sorted(set(mapping) - {b.class_name for item in labeled for b in item.boxes})
    if unknown:
        raise EvaluateError(f"--class-map: {unknown} never occur in {manifest}")
    ids = {name: i for i, name in enumerate(model_classes)}
    names = set()
    for item in labeled:
        for box in item.boxes:
            if box.class_name is None:
                raise EvaluateError(f"{manifest}: {item.source_ref} has boxes without a class-map entry")
            names.add(box.class_name)
    missing = sorted(n for n in names if mapping.get(n, n) not in ids)
    if missing:
        raise EvaluateError(
            f"{manifest} has classes {missing} that the model does not know (model: {model_classes}); "
            "pass --class-map 'MANIFEST NAME=MODEL NAME' for each, or --classes for a model.tar.gz"
        )
    return {name: ids[mapping.get(name, name)] for name in names}


def evaluate(
    model: str,
    manifest: str,
    out: str | None = None,
    iou: float = 0.5,
    label_attribute: str = "bb",
    images: str | None = None,
    backend: str = "onnx",
    classes: list[str] | None = None,
    class_map: dict[str, str] | None = None,
) -> dict[str, Any]:
    """mAP of each precision the package holds (FP32, and INT8 where converted with --int8), on the same frames.
    The report's top level is FP32's; ``precisions`` holds each, ``int8_mAP_change`` the difference."""
    import cv2

    labeled = read_training_images(manifest, label_attribute)
    if not labeled:
        raise EvaluateError(f"{manifest}: no labeled image to evaluate on")
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        package = open_package(model, tmp, classes)
        to_model = class_ids_by_name(labeled, list(package.classes), manifest, class_map)

        def frames() -> Iterator[LabeledFrame]:
            for item in labeled:
                uri = storage.relocated(item.source_ref, images)
                frame = cv2.imdecode(np.frombuffer(storage.read_bytes(uri), np.uint8), cv2.IMREAD_COLOR)
                if frame is None:
                    raise EvaluateError(f"{uri}: not a decodable image (listed in {manifest})")
                labels = tuple(str(b.class_name) for b in item.boxes)
                yield LabeledFrame(preprocess(frame, package.input_size)[0], normalized_boxes(item), labels)

        with bar(len(labeled), "evaluate", "image") as pb:
            reports = score_frames(package, frames(), to_model, iou, progress=pb.update, backend=backend)
    report = dict(reports["fp32"])
    report.update({"model": model, "manifest": manifest, "images": len(labeled), "backend": backend})
    report["precisions"] = {p: {"mAP": r["mAP"], "per_class": r["per_class"]} for p, r in reports.items()}
    if "int8" in reports:
        report["int8_mAP_change"] = reports["int8"]["mAP"] - reports["fp32"]["mAP"]
    if out:
        storage.write_text(
            storage.join(out, "evaluation.json"), json.dumps(report, indent=2) + "\n", "application/json"
        )
        storage.write_bytes(storage.join(out, "precision_recall.png"), render_pr_png(report), "image/png")
    log_event(
        logger,
        "evaluate.done",
        model=model,
        manifest=manifest,
        mAP={p: round(r["mAP"], 4) for p, r in reports.items()},
        per_class={k: v["ap"] for k, v in report["per_class"].items()},
    )
    return report
