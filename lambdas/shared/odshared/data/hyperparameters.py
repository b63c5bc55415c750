"""SageMaker Object Detection hyperparameters: names, defaults and validity rules (REFERENCE.md A3).

Used by the local trainer and by the workflow's input validation, so a bad value is rejected before any
work (or any paid training job) starts. Values travel as strings, as in the SageMaker API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from odshared.core.errors import OdError

BASE_NETWORKS = ("vgg-16", "resnet-50")
LOCAL_BASE_NETWORKS = ("tiny",)  # train-local only: a small backbone that trains on a laptop CPU
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adadelta")


class HyperparameterError(OdError):
    """One or more hyperparameters are unknown or out of range."""


def _int(min_value: int) -> Callable[[str], Any]:
    def check(value: str) -> int:
        number = int(value)
        if number < min_value:
            raise ValueError(f"must be an integer >= {min_value}")
        return number

    return check


def _float(low: float, high: float, low_open: bool, high_open: bool) -> Callable[[str], Any]:
    def check(value: str) -> float:
        number = float(value)
        ok_low = number > low if low_open else number >= low
        ok_high = number < high if high_open else number <= high
        if not (ok_low and ok_high):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise ValueError(f"must be a number in {interval}")
        return number

    return check


def _choice(*options: str) -> Callable[[str], Any]:
    def check(value: str) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return check


def _bool(value: str) -> bool:
    if value not in ("True", "False", "true", "false"):
        raise ValueError("must be True or False")
    return value.lower() == "true"


def _steps(value: str) -> list[int]:
    if not value.strip():
        return []
    steps = [int(part) for part in value.split(",")]
    if any(step <= 0 for step in steps) or steps != sorted(steps):
        raise ValueError("must be increasing positive epochs separated by commas, e.g. 10,20")
    return steps


def _regex(value: str) -> str:
    re.compile(value)
    return value


RULES: dict[str, tuple[Callable[[str], Any], str | None]] = {
    "num_classes": (_int(1), None),
    "num_training_samples": (_int(1), None),
    "base_network": (_choice(*BASE_NETWORKS), "vgg-16"),
    "use_pretrained_model": (_choice("0", "1"), "1"),
    "early_stopping": (_bool, "False"),
    "early_stopping_min_epochs": (_int(1), "10"),
    "early_stopping_patience": (_int(1), "5"),
    "early_stopping_tolerance": (_float(0, 1, False, False), "0.0"),
    "image_shape": (_int(300), "300"),
    "epochs": (_int(1), "30"),
    "freeze_layer_pattern": (_regex, ""),
    "kv_store": (_choice("dist_sync", "dist_async", "device", "local"), None),
    "label_width": (_int(7), "350"),
    "learning_rate": (_float(0, 1, True, False), "0.001"),
    "lr_scheduler_factor": (_float(0, 1, True, True), "0.1"),
    "lr_scheduler_step": (_steps, ""),
    "mini_batch_size": (_int(1), "32"),
    "momentum": (_float(0, 1, True, False), "0.9"),
    "nms_threshold": (_float(0, 1, True, False), "0.45"),
    "nms_topk": (_int(1), "400"),
    "optimizer": (_choice(*OPTIMIZERS), "sgd"),
    "overlap_threshold": (_float(0, 1, True, False), "0.5"),
    "weight_decay": (_float(0, 1, False, True), "0.0005"),
}
REQUIRED = ("num_classes", "num_training_samples")


def validate(hyperparameters: Mapping[str, Any], local: bool = False, require: bool = True) -> dict[str, str]:
    """Check names and values; return every hyperparameter as a string with SageMaker's defaults filled in.

    ``local`` also accepts the train-local-only base network ``tiny``; ``require=False`` skips the required
    keys (for overrides merged in later). Names starting with ``_`` are SageMaker's internal keys, kept as-is.
    """
    problems = []
    values = {str(k): (str(v) if not isinstance(v, bool) else str(v)) for k, v in hyperparameters.items()}
    for name in values:
        if name not in RULES and not name.startswith("_"):
            problems.append(f"{name}: unknown hyperparameter")
    for name, (check, _) in RULES.items():
        if name not in values:
            continue
        if name == "base_network" and local and values[name] in LOCAL_BASE_NETWORKS:
            continue
        try:
            check(values[name])
        except (ValueError, re.error) as exc:
            problems.append(f"{name}={values[name]!r}: {exc}")
    if require:
        problems.extend(f"{name}: required" for name in REQUIRED if name not in values)
    if problems:
        raise HyperparameterError("invalid hyperparameters: " + "; ".join(problems))
    full = {name: default for name, (_, default) in RULES.items() if default is not None}
    full.update(values)
    return full


def parsed(hyperparameters: Mapping[str, str]) -> dict[str, Any]:
    """Typed values of validated hyperparameters."""
    out: dict[str, Any] = {}
    for name, value in hyperparameters.items():
        rule = RULES.get(name)
        if rule is None or (name == "base_network"):
            out[name] = value
        else:
            out[name] = rule[0](value)
    return out


def for_training(
    overrides: Mapping[str, Any], num_train: int, num_classes: int, max_objects: int, local: bool = False
) -> dict[str, str]:
    """Fill what the data decides (num_training_samples, num_classes) and check the rest as SageMaker does.

    Called by data preparation (its result feeds CreateTrainingJob's HyperParameters) and by train-local.
    """
    values = {k: str(v) for k, v in overrides.items()}
    values.setdefault("num_training_samples", str(num_train))
    values.setdefault("num_classes", str(num_classes))
    hyper = validate(values, local=local)
    if int(hyper["num_training_samples"]) != num_train:
        raise HyperparameterError(
            f"num_training_samples={hyper['num_training_samples']} but the training manifest has {num_train} lines"
        )
    if int(hyper["num_classes"]) < num_classes:
        raise HyperparameterError(
            f"num_classes={hyper['num_classes']} but the labels use class ids up to {num_classes - 1}"
        )
    if 2 + 5 * max_objects > int(hyper["label_width"]):
        raise HyperparameterError(
            f"label_width={hyper['label_width']} is too small for {max_objects} objects per "
            f"image (needs at least {2 + 5 * max_objects})"
        )
    return hyper
