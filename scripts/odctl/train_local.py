"""``odctl train-local``: SageMaker's built-in SSD reproduced on the CPU, same inputs, same outputs.

This side reads the augmented manifests and completes the hyperparameters with SageMaker's rules, so bad input
stops before any work; the MXNet training loop itself (``odmxnet.trainer``) runs in the MXNet environment and
writes a ``model.tar.gz`` laid out as SageMaker writes it, logging ``validation:mAP`` per epoch in the
algorithm's format.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from odshared.core import storage
from odshared.core.log import log_event
from odshared.data.hyperparameters import HyperparameterError, for_training

from . import mxnet_env
from .training_data import read_training_images

logger = logging.getLogger(__name__)
# The line SageMaker's built-in algorithm prints per epoch; metric definition regex: see METRIC_REGEX.
METRIC_LINE = "#quality_metric: host=algo-1, epoch={epoch}, validation mAP <score>=({value})"
METRIC_REGEX = r"#quality_metric: host=\S+, epoch=\S+, validation mAP <score>=\((\S+)\)"
INTERNAL_KEYS = {"_kvstore": "device", "_num_kv_servers": "auto", "_tuning_objective_metric": "", "kv_store": "device"}


@dataclass
class TrainRequest:
    """What the MXNet environment's trainer is given: checked data and complete hyperparameters."""

    train_manifest: str
    validation_manifest: str
    out: str
    hyperparameters: dict[str, str]
    max_objects: int
    images: str | None = None
    label_attribute: str = "bb"
    classes: list[str] | None = None
    seed: int = 0
    max_batches: int | None = None
    time_budget_s: float | None = None


@dataclass
class TrainResult:
    model: str
    epochs_run: int
    best_epoch: int
    best_map: float
    history: list[dict[str, float]]
    seconds: float
    hyperparameters: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def prepare_hyperparameters(
    overrides: dict[str, Any], base_network: str | None, num_train: int, num_classes: int, max_objects: int
) -> dict[str, str]:
    """SageMaker's checks on the data-decided values, plus train-local's own base networks."""
    values = {**overrides, **({"base_network": base_network} if base_network else {})}
    return for_training(values, num_train, num_classes, max_objects, local=True)


def _check_inputs(train_manifest: str, train_items: list, validation_manifest: str, val_items: list) -> None:
    """Without validation boxes training still runs, then reports mAP 0.0 and advice to train longer; without
    training boxes it learns nothing: wrong answers given after minutes of work. Refused before any is done, each
    with the fix in prepare-training's own option names."""
    if not train_items:
        raise HyperparameterError(
            f"{train_manifest} has no images, so there is nothing to train on: give the train.manifest "
            "prepare-training wrote (odctl prepare-training OUTPUT.manifest --out prepared/), or label more frames"
        )
    if not any(item.boxes for item in train_items):
        raise HyperparameterError(
            f"{train_manifest}: none of its {len(train_items)} images has a box, so there is nothing to learn: "
            "train on labeled frames with objects (prepare-training drops images without boxes unless --keep-empty)"
        )
    if not val_items:
        raise HyperparameterError(
            f"{validation_manifest} has no images (no validation images), so no mAP can be measured: "
            "prepare-training's split left none for validation; run it again with a larger --validation-fraction "
            "(default 0.1), or label more frames"
        )
    if not any(item.boxes for item in val_items):
        raise HyperparameterError(
            f"{validation_manifest}: none of its {len(val_items)} images has a box, so mAP would read 0.0: "
            "validate on labeled frames with objects (prepare-training drops images without boxes unless --keep-empty)"
        )


def train_local(
    train_manifest: str,
    validation_manifest: str,
    out: str,
    hyperparameters: dict[str, Any] | None = None,
    base_network: str | None = None,
    images: str | None = None,
    label_attribute: str = "bb",
    classes: list[str] | None = None,
    seed: int = 0,
    max_batches: int | None = None,
    time_budget_s: float | None = None,
) -> TrainResult:
    """Train and write ``out`` (model.tar.gz, local or s3://).

    ``max_batches`` caps batches per epoch (tests); ``time_budget_s`` stops after the epoch that exhausts it
    (the demo's budget), keeping the best epoch so far.
    """
    storage.check_bucket(out)
    train_items = read_training_images(train_manifest, label_attribute)
    val_items = read_training_images(validation_manifest, label_attribute)
    _check_inputs(train_manifest, train_items, validation_manifest, val_items)
    all_items = train_items + val_items
    num_classes = 1 + max((int(b.class_id) for item in all_items for b in item.boxes), default=0)
    max_objects = max(1, max((len(item.boxes) for item in all_items), default=1))
    hyper = prepare_hyperparameters(
        dict(hyperparameters or {}), base_network, len(train_items), num_classes, max_objects
    )
    if hyper.get("use_pretrained_model") == "1":
        log_event(
            logger,
            "train.no_pretrained_weights",
            level=logging.WARNING,
            detail="pretrained ImageNet weights cannot be downloaded here; training from scratch",
        )
    request = TrainRequest(
        train_manifest,
        validation_manifest,
        out,
        hyper,
        max_objects,
        images,
        label_attribute,
        classes,
        seed,
        max_batches,
        time_budget_s,
    )
    result = TrainResult(**mxnet_env.call("train", asdict(request)))
    _warn_if_weak(result, bool(val_items))
    return result


def _warn_if_weak(result: TrainResult, validated: bool) -> None:
    """A model under the device's floor counts false tracks (odedge.quality): said here, before it is converted."""
    from odedge.config import EdgeConfig

    floor = EdgeConfig.weak_model_map
    if validated and result.best_map < floor:
        log_event(
            logger,
            "train.weak_model",
            level=logging.WARNING,
            best_map=round(result.best_map, 4),
            floor=floor,
            detail=f"best validation mAP {result.best_map:.3f} after {result.epochs_run} epochs is under {floor}: "
            "the device will name it too weak to count; train more epochs (--epochs) or label more frames",
        )


# Settings sized for a CPU (docs/own-data-cpu.md gives the reasons and the figures measured with them): the demo
# trains with these, and `train-local --preset cpu` starts from them. SageMaker's defaults (vgg-16, 512 pixels,
# 30 epochs) are sized for a GPU instance.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "base_network": "tiny",
        "image_shape": 300,
        "mini_batch_size": 16,
        "epochs": 14,
        "optimizer": "adam",
        "learning_rate": 0.002,
        "lr_scheduler_step": "10",
        "lr_scheduler_factor": 0.1,
    }
}


def load_hyperparameters(uri: str | None, preset: str | None = None) -> dict[str, Any]:
    """``preset``'s values, then the file's over them (a file names only what it changes)."""
    base = dict(PRESETS[preset]) if preset else {}
    if not uri:
        return base
    try:
        values = json.loads(storage.read_text(uri))
    except json.JSONDecodeError as exc:
        raise HyperparameterError(f"{uri}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(values, dict):
        raise HyperparameterError(f"{uri}: must hold a JSON object of name -> value")
    return base | values


def default_output(path: str) -> str:
    return path if path.endswith(".tar.gz") else str(Path(path) / "model.tar.gz")
