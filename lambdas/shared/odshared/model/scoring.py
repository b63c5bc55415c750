"""A converted package scored on labeled frames: each precision it holds (FP32, INT8) through the device's own
runtimes, mAP as ``odctl evaluate`` reports it. The workflow scores on the run's validation frames, which the
calibration step preprocessed (the scoring Lambda carries ONNX Runtime, not OpenCV: both pass Lambda's 250 MB)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from odshared.core.errors import OdError
from odshared.core.log import log_event
from odshared.model.evaluation import ImageResult, mean_average_precision

logger = logging.getLogger(__name__)
EVALUATION_FILE = "evaluation.npz"
SCORES_FILE = "scores.json"  # beside the package: the registry's model-quality statistics


class ScoreError(OdError):
    """The evaluation frames and the model cannot be compared."""


@dataclass(frozen=True)
class LabeledFrame:
    """One image as the network takes it, with its ground truth (boxes as fractions of the image)."""

    blob: np.ndarray  # (1, 3, S, S) float32, the device's preprocessing
    boxes: np.ndarray  # (K, 4) xmin, ymin, xmax, ymax
    labels: tuple[str, ...]  # class name of each box


@dataclass(frozen=True)
class EvaluationSet:
    """Frames preprocessed for one input size, kept as uint8 (the device's blob holds 8-bit values as float32)."""

    frames: np.ndarray  # (N, 3, S, S) uint8
    boxes: tuple[np.ndarray, ...]
    labels: tuple[tuple[str, ...], ...]
    source: str

    def __iter__(self) -> Any:
        for frame, boxes, labels in zip(self.frames, self.boxes, self.labels, strict=True):
            yield LabeledFrame(frame[None].astype(np.float32), boxes, labels)

    def __len__(self) -> int:
        return len(self.frames)

    def to_bytes(self) -> bytes:
        counts = np.array([len(b) for b in self.boxes], np.int64)
        names = sorted({name for labels in self.labels for name in labels})
        label_ids = np.array([names.index(n) for labels in self.labels for n in labels], np.int64)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            frames=self.frames,
            boxes=np.concatenate([*self.boxes, np.zeros((0, 4), np.float32)]).astype(np.float32),
            counts=counts,
            label_ids=label_ids,
            names=np.array(names, dtype=str),
            source=np.array(self.source),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EvaluationSet:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            frames, flat, counts = npz["frames"], npz["boxes"], npz["counts"]
            names, label_ids, source = [str(n) for n in npz["names"]], npz["label_ids"], str(npz["source"])
        edges = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        boxes = tuple(flat[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True))
        labels = tuple(tuple(names[i] for i in label_ids[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True))
        return cls(frames, boxes, labels, source)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "images": len(self), "boxes": int(sum(len(b) for b in self.boxes))}


def class_ids(frames: Iterable[LabeledFrame], model_classes: Sequence[str], source: str) -> dict[str, int]:
    """Ground truth is matched to the model's classes by name; a class the model does not know is refused."""
    known = {name: i for i, name in enumerate(model_classes)}
    names = {name for frame in frames for name in frame.labels}
    unknown = sorted(names - set(known))
    if unknown:
        raise ScoreError(f"{source} has classes {unknown} that the model does not know (model: {list(model_classes)})")
    return {name: known[name] for name in names}


def detect_frames(
    package: Any,
    frames: Iterable[LabeledFrame],
    to_model: Mapping[str, int],
    backend: str = "onnx",
    progress: Callable[[], Any] | None = None,
) -> dict[str, list[ImageResult]]:
    """The detections on every frame of each precision the package (an ``odedge.model.ModelPackage``) holds, through
    the device's runtimes: what ``score_frames`` scores, and what ``odctl evaluate`` keeps to score again under other
    class orders without running the model twice."""
    from odedge.runtimes import PRECISIONS, create_runtime

    runtimes = {p: create_runtime(backend, package, precision=p, withheld_ok=True) for p in PRECISIONS}
    runtimes = {p: r for p, r in runtimes.items() if r.choice.precision == p}  # no INT8 model: FP32 alone
    results: dict[str, list[ImageResult]] = {precision: [] for precision in runtimes}
    for frame in frames:
        truth = np.array([to_model[name] for name in frame.labels], int)
        for precision, runtime in runtimes.items():
            rows = runtime.predict(frame.blob)
            rows = rows[rows[:, 0] >= 0]
            results[precision].append(ImageResult(frame.boxes, truth, rows[:, 2:6], rows[:, 0].astype(int), rows[:, 1]))
        if progress is not None:
            progress()
    return results


def score_frames(
    package: Any,
    frames: Iterable[LabeledFrame],
    to_model: Mapping[str, int],
    iou: float = 0.5,
    progress: Any = None,
    backend: str = "onnx",
) -> dict[str, dict[str, Any]]:
    """mAP report of each precision the package holds (an ``odedge.model.ModelPackage``), on the same frames."""
    results = detect_frames(package, frames, to_model, backend, progress)
    return {p: mean_average_precision(r, list(package.classes), iou) for p, r in results.items()}


def final_metric(described: Mapping[str, Any], name: str = "validation:mAP") -> float | None:
    """A metric of a finished training job (DescribeTrainingJob's FinalMetricDataList), None where not reported."""
    for metric in described.get("FinalMetricDataList") or []:
        if metric.get("MetricName") == name:
            return float(metric["Value"])
    return None


@dataclass(frozen=True)
class Scores:
    """What the gate and the registry read: ``mAP`` is that of the precision the devices will run."""

    training_map: float | None
    fp32_map: float
    int8_map: float | None
    precision: str
    int8_withheld: str
    images: int

    @property
    def map(self) -> float:
        return self.int8_map if self.precision == "int8" and self.int8_map is not None else self.fp32_map

    def to_dict(self) -> dict[str, Any]:
        change = None if self.int8_map is None else round(self.int8_map - self.fp32_map, 6)
        return {
            "mAP": round(self.map, 6),
            "trainingMap": None if self.training_map is None else round(self.training_map, 6),
            "fp32Map": round(self.fp32_map, 6),
            "int8Map": None if self.int8_map is None else round(self.int8_map, 6),
            "int8MapChange": change,
            "precision": self.precision,
            "int8Withheld": self.int8_withheld,
            "images": self.images,
        }


def decide_precision(fp32: float, int8: float | None, max_drop: float) -> tuple[str, str]:
    """INT8 ships as the default only while it loses at most ``max_drop`` mAP against FP32; else why not."""
    if int8 is None:
        return "fp32", ""
    if fp32 - int8 > max_drop:
        return "fp32", f"INT8 mAP {int8:.3f} is {fp32 - int8:.3f} below FP32 {fp32:.3f} (more than {max_drop:g})"
    return "int8", ""


def score_package(package: Any, evaluation: EvaluationSet, training_map: float | None, int8_max_drop: float) -> Scores:
    if not len(evaluation):
        raise ScoreError(f"{evaluation.source}: no labeled frame to score the model on")
    reports = score_frames(package, evaluation, class_ids(evaluation, package.classes, evaluation.source))
    fp32 = float(reports["fp32"]["mAP"])
    int8 = float(reports["int8"]["mAP"]) if "int8" in reports else None
    precision, withheld = decide_precision(fp32, int8, int8_max_drop)
    scores = Scores(training_map, fp32, int8, precision, withheld, len(evaluation))
    log_event(logger, "score.done", source=evaluation.source, **scores.to_dict())
    return scores


def score_converted_model(
    package_uri: str, evaluation_uri: str, training_job: str, int8_max_drop: float, sagemaker: Any
) -> dict[str, Any]:
    """The workflow's scoring step: the training job's own validation:mAP, and the package's FP32 and INT8 mAP on
    the run's validation frames; an INT8 model that loses too much is withheld in the package before it ships."""
    import tempfile
    from pathlib import Path

    from odedge.model import ModelPackage
    from odshared.core import storage
    from odshared.model.package import download_package, update_manifest

    described = sagemaker.describe_training_job(TrainingJobName=training_job)
    evaluation = EvaluationSet.from_bytes(storage.read_bytes(evaluation_uri))
    with tempfile.TemporaryDirectory(prefix="score-") as tmp:
        package = ModelPackage.load(download_package(package_uri, Path(tmp)))
        scores = score_package(package, evaluation, final_metric(described), int8_max_drop)
    # the score of the precision devices run, on the run's validation frames: under its floor the device names
    # the model too weak to count (odedge.quality); an INT8 model withheld in the same rewrite of model.json
    changes: dict[str, Any] = {"validation": {"mAP": round(scores.map, 4), "source": "scoring"}}
    if scores.int8_withheld:
        changes["int8"] = {"withheld": scores.int8_withheld}
    update_manifest(package_uri, changes)
    if scores.int8_withheld:
        log_event(logger, "score.int8_withheld", level=logging.WARNING, package=package_uri, why=scores.int8_withheld)
    result = {**scores.to_dict(), "package": package_uri, "trainingJobName": training_job, "evaluation": evaluation_uri}
    result["scoresUri"] = storage.join(package_uri, SCORES_FILE)
    storage.write_text(result["scoresUri"], json.dumps(result, indent=2) + "\n", "application/json")
    return result
