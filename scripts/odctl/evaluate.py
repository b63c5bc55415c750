"""``odctl evaluate``: mAP of a model (SageMaker/local model.tar.gz or a converted package) on a labeled manifest.

Inference runs through the device's own code (odedge: preprocessing, ONNX Runtime, postprocessing), so the
figure is what the fleet will see. A converted package keeps the figure (model.json ``held_out``): the device's
weak-model check reads it before the training's own validation score. A package whose class names are in another
order than its training's (a SageMaker artifact records none, so ``convert --classes`` cannot check them) is named,
with the order that fits.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np

from odedge.model import ModelPackage
from odedge.preprocess import preprocess
from odshared.core import storage
from odshared.core.errors import OdError
from odshared.core.log import log_event
from odshared.data.groundtruth import LabeledImage
from odshared.model.convert import convert
from odshared.model.evaluation import ImageResult, class_curve, mean_average_precision, normalized_boxes
from odshared.model.package import MODEL_JSON, download_package, record_held_out
from odshared.model.scoring import LabeledFrame, detect_frames

from .pr_curves import render_pr_png
from .progress import bar
from .training_data import read_training_images

logger = logging.getLogger(__name__)
# the class-order check tries every order of the predicted ids: 720 sums over an n x n table of APs at 6 classes
MAX_PERMUTED_CLASSES = 6
# classes look reordered when some class's AP is under LOW_AP and another order scores at least REORDER_GAIN more
# and above REORDER_FLOOR: a weak but rightly labelled model gains little from any order
LOW_AP, REORDER_GAIN, REORDER_FLOOR = 0.5, 0.2, 0.5
RECORDED_IOU = 0.5  # the device's weak-model floor is an mAP@0.5: a figure at another IoU is not recorded


def open_package(model: str, workdir: str, classes: list[str] | None = None) -> tuple[ModelPackage, list[str]]:
    """A converted package from a folder, or converted on the fly from a model.tar.gz, with what the conversion
    could not check (a SageMaker artifact's class order), for the evaluation's own result."""
    if model.endswith(".tar.gz"):
        converted = convert(model, workdir, classes)
        return ModelPackage.load(workdir), list(converted["warnings"])
    if storage.is_s3(model):
        return ModelPackage.load(download_package(model, Path(workdir))), []
    return ModelPackage.load(model), []


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


def _frames(labeled: list[LabeledImage], input_size: int, images: str | None, manifest: str) -> Iterator[LabeledFrame]:
    import cv2

    for item in labeled:
        uri = storage.relocated(item.source_ref, images)
        frame = cv2.imdecode(np.frombuffer(storage.read_bytes(uri), np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise EvaluateError(f"{uri}: not a decodable image (listed in {manifest})")
        labels = tuple(str(b.class_name) for b in item.boxes)
        yield LabeledFrame(preprocess(frame, input_size)[0], normalized_boxes(item), labels)


def _paired_ap(results: Sequence[ImageResult], truth_id: int, predicted_id: int, iou: float) -> float:
    """AP of the truth's class ``truth_id`` scored against the detections the model labels ``predicted_id``."""
    paired = [
        ImageResult(
            r.gt_boxes, r.gt_classes, r.det_boxes, np.where(r.det_classes == predicted_id, truth_id, -1), r.det_scores
        )
        for r in results
    ]
    return class_curve(paired, truth_id, iou).ap or 0.0


def best_class_order(results: Sequence[ImageResult], classes: Sequence[str], iou: float) -> tuple[list[str], float]:
    """The order of ``classes`` that scores best on these detections, and its mAP: every way of matching the truth's
    classes to the predicted ids, from one table of APs (each truth class against each predicted id). The identity
    comes first, so a tie keeps the package's order."""
    n = len(classes)
    truth = sorted({int(c) for r in results for c in r.gt_classes})
    table = {(t, d): _paired_ap(results, t, d, iou) for t in truth for d in range(n)}
    best = max(permutations(range(n)), key=lambda order: sum(table[t, order[t]] for t in truth))
    order = [""] * n
    for t, d in enumerate(best):
        order[d] = classes[t]  # the model's id d detects what the package calls classes[t]
    return order, float(np.mean([table[t, best[t]] for t in truth])) if truth else 0.0


def reordered_warnings(
    results: Sequence[ImageResult], classes: Sequence[str], report: Mapping[str, Any], manifest: str
) -> list[str]:
    """The symptom of ``convert --classes`` given in another order than training used: some class scores low while
    another order of the same detections scores clearly higher. The evaluation is right about this package; what is
    wrong is its labels, so the warning says how to convert it again."""
    aps = [v["ap"] for v in report["per_class"].values() if v["ap"] is not None]
    if not 2 <= len(classes) <= MAX_PERMUTED_CLASSES or not aps or min(aps) >= LOW_AP:
        return []
    order, score = best_class_order(results, classes, report["iou"])
    if order == list(classes) or score < report["mAP"] + REORDER_GAIN or score <= REORDER_FLOOR:
        return []
    unscored = [name for name, v in report["per_class"].items() if v["ground_truth"] == 0]
    guess = f" ({', '.join(unscored)} have no box in {manifest}: their place is a guess)" if unscored else ""
    text = (
        f"the package's classes look reordered: with order [{', '.join(order)}] mAP is {score:.3f} (as packaged "
        f"{report['mAP']:.3f}): convert again with --classes '{','.join(order)}'{guess}"
    )
    log_event(
        logger,
        "evaluate.classes_reordered",
        level=logging.WARNING,
        packaged=list(classes),
        fitting=order,
        mAP=round(report["mAP"], 4),
        fitting_mAP=round(score, 4),
        detail=text,
    )
    return [text]


def _record(
    model: str, package: ModelPackage, reports: Mapping[str, Any], images: int, manifest: str
) -> dict[str, Any] | None:
    """The held-out figure into the package's model.json, at the precision its devices run (INT8 where the package
    has it and the gate did not withhold it); a model.tar.gz converted on the fly has no package to keep it, and a
    figure at another IoU is not the device floor's."""
    why = "a model.tar.gz, converted for this run only" if model.endswith(".tar.gz") else ""
    why = why or (
        "" if reports["fp32"]["iou"] == RECORDED_IOU else f"measured at IoU {reports['fp32']['iou']}, not 0.5"
    )
    if why:
        log_event(logger, "evaluate.not_recorded", model=model, why=why)
        return None
    precision = "int8" if "int8" in reports and not package.int8_withheld else "fp32"
    figure: dict[str, Any] = {
        "map": round(float(reports[precision]["mAP"]), 4),
        "precision": precision,
        "images": images,
        "source": manifest,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    target = model if storage.is_s3(model) else str(package.root)
    record_held_out(target, figure)
    log_event(logger, "evaluate.recorded", package=target, **figure)
    return {**figure, "recorded_in": storage.join(target, MODEL_JSON)}


def _weak_warnings(held_out: Mapping[str, Any] | None, reordered: bool) -> list[str]:
    """Said here as the device will say it (odedge.quality reads the held-out figure first); where the classes look
    reordered the fix is converting again, not more training."""
    from odedge.config import EdgeConfig

    floor = EdgeConfig.weak_model_map
    if held_out is None or held_out["map"] >= floor:
        return []
    fix = "convert again in the order above first" if reordered else "train longer or label more frames"
    text = (
        f"held-out mAP {held_out['map']:.3f} ({held_out['precision']}) is under the device's floor {floor}: devices "
        f"running this package will name it too weak to count; {fix}"
    )
    log_event(logger, "evaluate.weak_model", level=logging.WARNING, mAP=held_out["map"], floor=floor, detail=text)
    return [text]


def _report_folder(folder: str) -> Path:
    if storage.is_s3(folder):
        raise EvaluateError(
            f"--report {folder}: must be a local folder (the page is opened in a browser); use --out for S3"
        )
    return Path(folder)


def write_html_report(folder: str, report: Mapping[str, Any]) -> str:
    """The page ``odctl demo`` writes (odctl.report), for one evaluation: headline figures, AP per class at each
    precision, the precision/recall curves and the warnings. The one place evaluate builds the report's figures, so
    a change to the report's interface is made here alone."""
    from .report import ClassAP, Headline, Picture, ReportFigures, write_report

    root = _report_folder(folder)
    root.mkdir(parents=True, exist_ok=True)
    (root / "precision_recall.png").write_bytes(render_pr_png(dict(report)))
    int8 = report["precisions"].get("int8")
    iou = report["iou"]
    headlines = [Headline(f"mAP@{iou:g}, FP32", report["precisions"]["fp32"]["mAP"])]
    if int8 is not None:
        headlines += [Headline(f"mAP@{iou:g}, INT8", int8["mAP"])]
        headlines += [Headline("INT8 against FP32", round(100 * report["int8_mAP_change"], 2), "mAP points")]
    headlines += [Headline("Images", report["images"], "images"), Headline("Runtime", report["backend"])]
    headlines += [Headline("Warning", text) for text in report["warnings"]]
    per_class = [
        ClassAP(name, v["ap"], v["ground_truth"], int8["per_class"][name]["ap"] if int8 else None)
        for name, v in report["per_class"].items()
    ]
    figures = ReportFigures(
        title=f"Evaluation of {report['model']}",
        summary=f"{report['model']} on {report['manifest']}: {report['metric']} at IoU {iou:g}.",
        headlines=headlines,
        per_class=per_class,
        per_class_on=str(report["manifest"]),
        pictures=[Picture("precision_recall.png", f"precision/recall on {report['manifest']}")],
        raw={k: v for k, v in report.items() if k != "curves"},
    )
    return str(write_report(root, figures))


def _write_outputs(report: dict[str, Any], out: str | None, report_dir: str | None) -> None:
    if out:
        storage.write_text(
            storage.join(out, "evaluation.json"), json.dumps(report, indent=2) + "\n", "application/json"
        )
        storage.write_bytes(storage.join(out, "precision_recall.png"), render_pr_png(report), "image/png")
    if report_dir:
        report["report"] = write_html_report(report_dir, report)


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
    report_dir: str | None = None,
    record: bool = False,
) -> dict[str, Any]:
    """mAP of each precision the package holds (FP32, and INT8 where converted with --int8), on the same frames.
    The report's top level is FP32's; ``precisions`` holds each, ``int8_mAP_change`` the difference; ``held_out``
    the figure recorded in the package (``record``: the command's default; off for library callers, whose packages
    may be shared), ``warnings`` what the figures point at."""
    labeled = read_training_images(manifest, label_attribute)
    if not labeled:
        raise EvaluateError(f"{manifest}: no labeled image to evaluate on")
    if report_dir:
        _report_folder(report_dir)  # refused before the work, not after it
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        package, conversion_warnings = open_package(model, tmp, classes)
        to_model = class_ids_by_name(labeled, list(package.classes), manifest, class_map)
        with bar(len(labeled), "evaluate", "image") as pb:
            frames = _frames(labeled, package.input_size, images, manifest)
            results = detect_frames(package, frames, to_model, backend, progress=pb.update)
    reports = {p: mean_average_precision(r, list(package.classes), iou) for p, r in results.items()}
    report = dict(reports["fp32"])
    report.update({"model": model, "manifest": manifest, "images": len(labeled), "backend": backend})
    report["precisions"] = {p: {"mAP": r["mAP"], "per_class": r["per_class"]} for p, r in reports.items()}
    if "int8" in reports:
        report["int8_mAP_change"] = reports["int8"]["mAP"] - reports["fp32"]["mAP"]
    reordered = reordered_warnings(results["fp32"], package.classes, report, manifest)
    report["held_out"] = _record(model, package, reports, len(labeled), manifest) if record else None
    report["warnings"] = [*conversion_warnings, *reordered, *_weak_warnings(report["held_out"], bool(reordered))]
    _write_outputs(report, out, report_dir)
    log_event(
        logger,
        "evaluate.done",
        model=model,
        manifest=manifest,
        mAP={p: round(r["mAP"], 4) for p, r in reports.items()},
        per_class={k: v["ap"] for k, v in report["per_class"].items()},
    )
    return report
