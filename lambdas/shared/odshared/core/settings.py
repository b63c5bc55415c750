"""cdk.json's settings blocks (``edge-od:promotion``, ``edge-od:spooler``, ``edge-od:logs``,
``edge-od:fleetAlarms``) parsed once, into frozen
dataclasses: the CDK app checks each block at synth with these declarations and the Lambdas build their settings
from the same parse, so a setting has one home (its key, type, check and description live on one dataclass field)
and a new one is a change to this module alone.

Plain dataclasses, not pydantic: each Lambda bundle carries only its own requirements file, and a validation
library in every bundle for a few small blocks would be weight and cold-start time the stdlib avoids.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar, cast

from odshared.core.errors import OdError


class SettingsError(OdError):
    """A cdk.json block a Lambda was given is not one synthesis would have accepted."""


class Block:
    """A top-level cdk.json block's model; ``BLOCK`` is its context key, which messages about it name."""

    BLOCK: ClassVar[str]


Model = TypeVar("Model", bound=Block)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda value: _number(value) and value >= low


def _integer_in(low: int, high: float = float("inf")) -> Callable[[Any], bool]:
    return lambda value: _integer(value) and low <= value <= high


def _fraction(value: Any) -> bool:
    return _number(value) and 0 <= value <= 1


def _one_of(*choices: object) -> Callable[[Any], bool]:
    return lambda value: value in choices


def is_semver(value: Any) -> bool:
    """major.minor.patch: the versions cdk.json names (the component's, the nucleus's and its plugins')."""
    return isinstance(value, str) and re.fullmatch(r"\d+\.\d+\.\d+", value) is not None


def _setting(key: str, convert: Callable[[Any], Any], ok: Callable[[Any], bool], what: str, **default: Any) -> Any:
    """A dataclass field that also carries its cdk.json key, its check and what a valid value is."""
    return field(metadata={"key": key, "convert": convert, "ok": ok, "what": what}, **default)


def _block(key: str, nested: type) -> Any:
    return field(metadata={"key": key, "nested": nested})


@dataclass(frozen=True, kw_only=True)
class CanarySettings:
    """``canary``: how far each canary device's health may fall from its own before the promotion."""

    min_fps_ratio: float = _setting("minFpsRatio", float, _fraction, "a number in [0, 1]")
    max_publish_errors: float = _setting("maxPublishErrors", float, _at_least(0), "a number >= 0")
    min_source_connected: float = _setting("minSourceConnected", float, _fraction, "a number in [0, 1]")
    min_detections_ratio: float = _setting("minDetectionsRatio", float, _fraction, "a number in [0, 1]")
    max_detections_ratio: float = _setting("maxDetectionsRatio", float, _at_least(1), "a number >= 1")


@dataclass(frozen=True, kw_only=True)
class PromotionConfig(Block):
    """The whole ``edge-od:promotion`` block: the gate, the scoring and the canary."""

    BLOCK: ClassVar[str] = "edge-od:promotion"
    approval_mode: str = _setting("approvalMode", str, _one_of("auto", "manual"), "auto|manual")
    map_floor: float = _setting("mapFloor", float, _fraction, "a number in [0, 1]")
    max_map_drop: float = _setting("maxMapDrop", float, _fraction, "a number in [0, 1]")
    int8_max_map_drop: float = _setting("int8MaxMapDrop", float, _fraction, "a number in [0, 1]")
    evaluation_images: int = _setting("evaluationImages", int, _integer_in(1, 2000), "1-2000")
    canary_thing_group: str = _setting(
        "canaryThingGroup",
        str,
        lambda v: isinstance(v, str) and re.fullmatch(r"[a-zA-Z0-9:_-]{0,128}", v) is not None,
        "a thing group name or ''",
    )
    soak_minutes: float = _setting("soakMinutes", float, lambda v: _number(v) and 0 < v <= 24 * 60, "(0, 1440]")
    canary: CanarySettings = _block("canary", CanarySettings)


@dataclass(frozen=True, kw_only=True)
class SpoolerSettings(Block):
    """``edge-od:spooler``: the nucleus's MQTT spooler the deployments set."""

    BLOCK: ClassVar[str] = "edge-od:spooler"
    storage_type: str = _setting("storageType", str, _one_of("Disk", "Memory"), "Disk|Memory")
    max_size_bytes: int = _setting("maxSizeInBytes", int, _integer_in(262144), "an integer >= 262144")
    # only where the group's deployment names no nucleus
    nucleus_version: str = _setting("nucleusVersion", str, is_semver, "major.minor.patch")
    disk_spooler_version: str = _setting("diskSpoolerVersion", str, is_semver, "major.minor.patch")


@dataclass(frozen=True, kw_only=True)
class LogSettings(Block):
    """``edge-od:logs``: the LogManager's upload of the inference component's log."""

    BLOCK: ClassVar[str] = "edge-od:logs"
    level: str = _setting("level", str, _one_of("DEBUG", "INFO", "WARN", "ERROR"), "DEBUG|INFO|WARN|ERROR")
    interval_seconds: int = _setting("intervalSeconds", int, _integer_in(60), "an integer >= 60")
    disk_limit_mb: int = _setting("diskLimitMb", int, _integer_in(1), "an integer >= 1")
    log_manager_version: str = _setting("logManagerVersion", str, is_semver, "major.minor.patch")


def _thing_names(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(name, str) and re.fullmatch(r"[a-zA-Z0-9:_-]{1,128}", name) for name in value
    )


@dataclass(frozen=True, kw_only=True)
class FleetAlarmSettings(Block):
    """``edge-od:fleetAlarms``: when the fleet's alarms fire (read at synth only: the alarms are the stack's)."""

    BLOCK: ClassVar[str] = "edge-od:fleetAlarms"
    silence_minutes: int = _setting("silenceMinutes", int, _integer_in(1, 1440), "an integer in [1, 1440]")
    fps_floor: float = _setting("fpsFloor", float, lambda v: _number(v) and v > 0, "a number > 0")
    devices: tuple[str, ...] = _setting("devices", tuple, _thing_names, "a list of thing names (a-z A-Z 0-9 : _ -)")


# the blocks' models: what synth checks (infra.config) and what the Lambdas parse
BLOCKS: tuple[type[Block], ...] = (PromotionConfig, SpoolerSettings, LogSettings, FleetAlarmSettings)


def _problems(cls: type, raw: Any, where: str) -> list[str]:
    known = {f.metadata["key"]: f for f in fields(cls)}
    if not isinstance(raw, Mapping):
        label = f"{where.rstrip('.')}: " if where else ""
        return [f"{label}an object of {', '.join(known)}"]
    problems = []
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{where}{close[0]}'?" if close else f"the keys are {', '.join(known)}"
            problems.append(f"unknown key '{where}{key}' ({hint})")
    for key, spec in known.items():
        nested = spec.metadata.get("nested")
        if key not in raw:
            if spec.default is MISSING and spec.default_factory is MISSING:
                problems.append(f"{where}{key} is missing: {'an object' if nested else spec.metadata['what']}")
        elif nested:
            problems += _problems(nested, raw[key], f"{where}{key}.")
        elif not spec.metadata["ok"](raw[key]):
            problems.append(f"{where}{key}: {spec.metadata['what']}")
    return problems


def _build(cls: Any, raw: Mapping[str, Any]) -> Any:
    values = {}
    for spec in fields(cls):
        key = spec.metadata["key"]
        if key in raw:
            nested = spec.metadata.get("nested")
            values[spec.name] = _build(nested, raw[key]) if nested else spec.metadata["convert"](raw[key])
    return cls(**values)


def block_problems(model: type, raw: Any) -> list[str]:
    """Every problem of a block at once, so one synth names them all (the style of infra.config)."""
    return _problems(model, raw, "")


def parse(model: type[Model], raw: Any) -> Model:
    """The one parse of a block, from cdk.json at synth or from the Lambda variable that holds it verbatim."""
    problems = block_problems(model, raw)
    if problems:
        raise SettingsError(f"{model.BLOCK}: " + "; ".join(problems))
    return cast(Model, _build(model, raw))


def parse_promotion(raw: Any) -> PromotionConfig:
    """The promotion Lambdas' parse of the block their ``PROMOTION`` variable holds."""
    return parse(PromotionConfig, raw)
