"""The app's configuration: cdk.json context read through one accessor, validated into a frozen dataclass.

Every key lives under ``edge-od:``; a missing or invalid value stops synthesis with a message naming the key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import constructs

PREFIX = "edge-od:"
INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
NAME_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,40}$")
WORKTEAM = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9-]+:\d{12}:workteam/private-crowd/.+$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


class ConfigError(ValueError):
    """A cdk.json context value is missing or invalid."""


CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The context block of cdk.json: the CDK CLI passes it to the app; ``python app.py`` reads it here."""
    return dict(json.loads(path.read_text()).get("context", {}))


@dataclass(frozen=True)
class AppConfig:
    name_prefix: str
    stack_name: str
    classes: tuple[str, ...]
    label_attribute: str
    training_instance_type: str
    training_instance_count: int
    training_volume_gb: int
    training_max_hours: float
    hyperparameters: dict[str, str]
    labeling_workforce: str
    labeling_max_hours: float
    thing_group: str
    device_role_name: str
    notification_email: str
    removal_policy: str
    component_version: str
    rollout_max_per_minute: int
    rollout_failure_threshold_percent: float
    ingest_max_concurrency: int
    ingest_tolerated_failure_percent: float

    @property
    def private_workteam(self) -> str | None:
        return None if self.labeling_workforce == "public" else self.labeling_workforce


def load_config(scope: constructs.Construct) -> AppConfig:
    """Read and check every key; all problems are reported together."""
    problems: list[str] = []

    def check(ok: bool, key: str, why: str) -> None:
        if not ok:
            problems.append(f"{PREFIX}{key}: {why}")

    raw = {
        key: scope.node.try_get_context(PREFIX + key)
        for key in (
            "namePrefix",
            "stackName",
            "classes",
            "labelAttribute",
            "trainingInstanceType",
            "trainingInstanceCount",
            "trainingVolumeGb",
            "trainingMaxHours",
            "hyperparameters",
            "labelingWorkforce",
            "labelingMaxHours",
            "thingGroup",
            "deviceRoleName",
            "notificationEmail",
            "removalPolicy",
            "componentVersion",
            "rolloutMaxPerMinute",
            "rolloutFailureThresholdPercent",
            "ingestMaxConcurrency",
            "ingestToleratedFailurePercent",
        )
    }
    missing = [key for key, value in raw.items() if value is None]
    if missing:
        raise ConfigError("cdk.json context is missing " + ", ".join(PREFIX + key for key in missing))
    check(
        isinstance(raw["namePrefix"], str)
        and bool(NAME_PREFIX.match(raw["namePrefix"]))
        and not str(raw["namePrefix"]).startswith("aws.greengrass"),
        "namePrefix",
        "a reverse-domain name such as com.example (not aws.greengrass)",
    )
    classes = raw["classes"]
    check(
        isinstance(classes, list)
        and classes
        and all(isinstance(c, str) and c for c in classes)
        and len(set(classes)) == len(classes)
        and len(classes) <= 50,
        "classes",
        "a list of 1-50 distinct class names",
    )
    check(
        isinstance(raw["labelAttribute"], str)
        and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}", raw["labelAttribute"]) is not None
        and not raw["labelAttribute"].endswith("-ref"),
        "labelAttribute",
        "letters, digits and dashes, not ending in -ref (Ground Truth's rule for bounding boxes)",
    )
    check(
        isinstance(raw["trainingInstanceType"], str) and bool(INSTANCE.match(raw["trainingInstanceType"])),
        "trainingInstanceType",
        "an ml.* instance type such as ml.p3.2xlarge (the algorithm trains on GPUs)",
    )
    for key, low in (("trainingInstanceCount", 1), ("trainingVolumeGb", 1), ("rolloutMaxPerMinute", 1)):
        check(isinstance(raw[key], int) and raw[key] >= low, key, f"an integer >= {low}")
    for key in ("trainingMaxHours", "labelingMaxHours"):
        check(isinstance(raw[key], int | float) and 0 < raw[key] <= 24 * 28, key, "hours in (0, 672]")
    check(
        isinstance(raw["rolloutFailureThresholdPercent"], int | float)
        and 0 < raw["rolloutFailureThresholdPercent"] <= 100,
        "rolloutFailureThresholdPercent",
        "in (0, 100]",
    )
    check(
        isinstance(raw["ingestMaxConcurrency"], int) and 1 <= raw["ingestMaxConcurrency"] <= 10000,
        "ingestMaxConcurrency",
        "an integer in [1, 10000] (videos extracted at once; Lambda's account concurrency bounds it too)",
    )
    check(
        isinstance(raw["ingestToleratedFailurePercent"], int | float)
        and 0 <= raw["ingestToleratedFailurePercent"] <= 100,
        "ingestToleratedFailurePercent",
        "in [0, 100]",
    )
    workforce = raw["labelingWorkforce"]
    check(
        workforce == "public" or (isinstance(workforce, str) and bool(WORKTEAM.match(workforce))),
        "labelingWorkforce",
        "'public' or a private workteam ARN",
    )
    check(raw["removalPolicy"] in ("retain", "destroy"), "removalPolicy", "'retain' or 'destroy'")
    check(
        isinstance(raw["componentVersion"], str) and bool(SEMVER.match(raw["componentVersion"])),
        "componentVersion",
        "major.minor.patch",
    )
    email = raw["notificationEmail"]
    check(email == "" or (isinstance(email, str) and "@" in email), "notificationEmail", "an email address or ''")
    hyper = raw["hyperparameters"]
    if not isinstance(hyper, dict):
        problems.append(f"{PREFIX}hyperparameters: an object of SageMaker hyperparameter names to string values")
        hyper = {}
    else:
        from odshared.data.hyperparameters import HyperparameterError, validate

        try:
            validate(hyper, require=False)
        except HyperparameterError as exc:
            problems.append(f"{PREFIX}hyperparameters: {exc}")
    if problems:
        raise ConfigError("invalid cdk.json context: " + "; ".join(problems))
    return AppConfig(
        name_prefix=raw["namePrefix"],
        stack_name=raw["stackName"],
        classes=tuple(classes),
        label_attribute=raw["labelAttribute"],
        training_instance_type=raw["trainingInstanceType"],
        training_instance_count=raw["trainingInstanceCount"],
        training_volume_gb=raw["trainingVolumeGb"],
        training_max_hours=float(raw["trainingMaxHours"]),
        hyperparameters={k: str(v) for k, v in hyper.items()},
        labeling_workforce=workforce,
        labeling_max_hours=float(raw["labelingMaxHours"]),
        thing_group=raw["thingGroup"],
        device_role_name=raw["deviceRoleName"],
        notification_email=email,
        removal_policy=raw["removalPolicy"],
        component_version=raw["componentVersion"],
        rollout_max_per_minute=raw["rolloutMaxPerMinute"],
        rollout_failure_threshold_percent=float(raw["rolloutFailureThresholdPercent"]),
        ingest_max_concurrency=raw["ingestMaxConcurrency"],
        ingest_tolerated_failure_percent=float(raw["ingestToleratedFailurePercent"]),
    )
