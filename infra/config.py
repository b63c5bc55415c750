"""The app's configuration: cdk.json context read through one accessor, validated into a frozen dataclass.

Every key lives under ``edge-od:``; a missing or invalid value stops synthesis with a message naming the key.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the Lambda runtime's tests read cdk.json through this module without the CDK installed
    import constructs

    from odshared.core.settings import FleetAlarmSettings, PromotionConfig

PREFIX = "edge-od:"
INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
NAME_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,40}$")
WORKTEAM = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9-]+:\d{12}:workteam/private-crowd/.+$")


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
    spooler: dict[str, Any]
    fleet_retention_days: int
    fleet_alarms: FleetAlarmSettings
    logs: dict[str, Any]
    promotion: dict[str, Any]

    @property
    def promotion_settings(self) -> PromotionConfig:
        """``promotion`` stays the raw block (the Lambdas get it verbatim); the stack reads it through the one
        parse the Lambdas use."""
        from odshared.core.settings import parse_promotion

        return parse_promotion(self.promotion)

    @property
    def private_workteam(self) -> str | None:
        return None if self.labeling_workforce == "public" else self.labeling_workforce


KEYS = (
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
    "spooler",
    "fleetRetentionDays",
    "fleetAlarms",
    "logs",
    "promotion",
)


def _number_in(low: float, high: float, low_open: bool = True) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        return isinstance(value, int | float) and (low < value if low_open else low <= value) and value <= high

    return ok


def _integer_at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and value >= low


def _semver(value: Any) -> bool:
    from odshared.core.settings import is_semver  # one rule for every version cdk.json names

    return is_semver(value)


def _classes(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(c, str) and c for c in value)
        and len(set(value)) == len(value)
        and len(value) <= 50
    )


# (key, check, what a valid value is), in the order problems are reported
RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    (
        "namePrefix",
        lambda v: isinstance(v, str) and bool(NAME_PREFIX.match(v)) and not v.startswith("aws.greengrass"),
        "a reverse-domain name such as com.example (not aws.greengrass)",
    ),
    ("classes", _classes, "a list of 1-50 distinct class names"),
    (
        "labelAttribute",
        lambda v: (
            isinstance(v, str)
            and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}", v) is not None
            and not v.endswith("-ref")
        ),
        "letters, digits and dashes, not ending in -ref (Ground Truth's rule for bounding boxes)",
    ),
    (
        "trainingInstanceType",
        lambda v: isinstance(v, str) and bool(INSTANCE.match(v)),
        "an ml.* instance type such as ml.p3.2xlarge (the algorithm trains on GPUs)",
    ),
    ("trainingInstanceCount", _integer_at_least(1), "an integer >= 1"),
    ("trainingVolumeGb", _integer_at_least(1), "an integer >= 1"),
    ("rolloutMaxPerMinute", _integer_at_least(1), "an integer >= 1"),
    ("fleetRetentionDays", _integer_at_least(1), "days the raw counts and health stay in the data bucket, >= 1"),
    ("trainingMaxHours", _number_in(0, 24 * 28), "hours in (0, 672]"),
    ("labelingMaxHours", _number_in(0, 24 * 28), "hours in (0, 672]"),
    ("rolloutFailureThresholdPercent", _number_in(0, 100), "in (0, 100]"),
    (
        "ingestMaxConcurrency",
        lambda v: isinstance(v, int) and 1 <= v <= 10000,
        "an integer in [1, 10000] (videos extracted at once; Lambda's account concurrency bounds it too)",
    ),
    ("ingestToleratedFailurePercent", _number_in(0, 100, low_open=False), "in [0, 100]"),
    (
        "labelingWorkforce",
        lambda v: v == "public" or (isinstance(v, str) and bool(WORKTEAM.match(v))),
        "'public' or a private workteam ARN",
    ),
    ("removalPolicy", lambda v: v in ("retain", "destroy"), "'retain' or 'destroy'"),
    ("componentVersion", _semver, "major.minor.patch"),
    ("notificationEmail", lambda v: v == "" or (isinstance(v, str) and "@" in v), "an email address or ''"),
)


def _hyperparameter_problems(hyper: Any) -> list[str]:
    if not isinstance(hyper, dict):
        return [f"{PREFIX}hyperparameters: an object of SageMaker hyperparameter names to string values"]
    from odshared.data.hyperparameters import HyperparameterError, validate

    try:
        validate(hyper, require=False)
    except HyperparameterError as exc:
        return [f"{PREFIX}hyperparameters: {exc}"]
    return []


def _block_problems(raw: dict[str, Any]) -> list[str]:
    """The blocks' declarations (promotion, spooler, logs, fleetAlarms) live in odshared, beside the Lambdas that
    read them, so synth and the Lambdas cannot disagree on a key."""
    from odshared.core.settings import BLOCKS, block_problems

    return [
        f"{model.BLOCK}: {problem}"
        for model in BLOCKS
        for problem in block_problems(model, raw[model.BLOCK.removeprefix(PREFIX)])
    ]


def unknown_key_problems(context_keys: Iterable[str]) -> list[str]:
    """A mistyped key would otherwise be ignored while its real key keeps its default: refuse it, naming the key
    it most likely meant."""
    problems = []
    for key in sorted(k for k in context_keys if k.startswith(PREFIX) and k[len(PREFIX) :] not in KEYS):
        close = difflib.get_close_matches(key[len(PREFIX) :], KEYS, n=1, cutoff=0.6)
        hint = f"did you mean {PREFIX}{close[0]}?" if close else f"the known keys are listed in {CDK_JSON.name}"
        problems.append(f"{key} is not a setting of this app: {hint}")
    return problems


def load_config(scope: constructs.Construct) -> AppConfig:
    """Read and check every key; all problems are reported together."""
    from odshared.core.settings import FleetAlarmSettings, parse

    unknown = unknown_key_problems(scope.node.get_all_context())
    if unknown:
        raise ConfigError("cdk.json context: " + "; ".join(unknown))
    raw = {key: scope.node.try_get_context(PREFIX + key) for key in KEYS}
    missing = [key for key, value in raw.items() if value is None]
    if missing:
        raise ConfigError("cdk.json context is missing " + ", ".join(PREFIX + key for key in missing))
    problems = [f"{PREFIX}{key}: {why}" for key, ok, why in RULES if not ok(raw[key])]
    problems += _block_problems(raw)
    problems += _hyperparameter_problems(raw["hyperparameters"])
    if problems:
        raise ConfigError("invalid cdk.json context: " + "; ".join(problems))
    classes, hyper, workforce, email = (
        raw["classes"],
        raw["hyperparameters"],
        raw["labelingWorkforce"],
        raw["notificationEmail"],
    )
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
        spooler=dict(raw["spooler"]),
        fleet_retention_days=raw["fleetRetentionDays"],
        fleet_alarms=parse(FleetAlarmSettings, raw["fleetAlarms"]),
        logs=dict(raw["logs"]),
        promotion=dict(raw["promotion"]),
    )
