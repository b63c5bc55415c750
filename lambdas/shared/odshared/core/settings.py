"""cdk.json ``edge-od:promotion`` parsed once, into frozen dataclasses: the CDK app checks the block at synth with
these declarations and the promotion Lambdas build their settings from the same parse, so a setting has one home
(its key, type, check and description live on one dataclass field) and a new one is a change to this module alone.

Plain dataclasses, not pydantic: each Lambda bundle carries only its own requirements file, and a validation
library in every promotion bundle for one small block would be weight and cold-start time the stdlib avoids.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, cast

from odshared.core.errors import OdError

PROMOTION = "edge-od:promotion"


class SettingsError(OdError):
    """The ``edge-od:promotion`` block a Lambda was given is not one synthesis would have accepted."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda value: _number(value) and value >= low


def _fraction(value: Any) -> bool:
    return _number(value) and 0 <= value <= 1


def _setting(key: str, convert: Callable[[Any], Any], ok: Callable[[Any], bool], what: str, **default: Any) -> Any:
    """A dataclass field that also carries its cdk.json key, its check and what a valid value is."""
    return field(metadata={"key": key, "convert": convert, "ok": ok, "what": what}, **default)


def _block(key: str, nested: type) -> Any:
    return field(metadata={"key": key, "nested": nested})


@dataclass(frozen=True)
class CanarySettings:
    """``canary``: how far each canary device's health may fall from its own before the promotion."""

    min_fps_ratio: float = _setting("minFpsRatio", float, _fraction, "a number in [0, 1]")
    max_publish_errors: float = _setting("maxPublishErrors", float, _at_least(0), "a number >= 0")
    min_source_connected: float = _setting("minSourceConnected", float, _fraction, "a number in [0, 1]")
    min_detections_ratio: float = _setting("minDetectionsRatio", float, _fraction, "a number in [0, 1]")
    max_detections_ratio: float = _setting("maxDetectionsRatio", float, _at_least(1), "a number >= 1")


@dataclass(frozen=True)
class PromotionConfig:
    """The whole ``edge-od:promotion`` block: the gate, the scoring and the canary."""

    approval_mode: str = _setting("approvalMode", str, lambda v: v in ("auto", "manual"), "auto|manual")
    map_floor: float = _setting("mapFloor", float, _fraction, "a number in [0, 1]")
    max_map_drop: float = _setting("maxMapDrop", float, _fraction, "a number in [0, 1]")
    int8_max_map_drop: float = _setting("int8MaxMapDrop", float, _fraction, "a number in [0, 1]")
    evaluation_images: int = _setting(
        "evaluationImages", int, lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2000, "1-2000"
    )
    canary_thing_group: str = _setting(
        "canaryThingGroup",
        str,
        lambda v: isinstance(v, str) and re.fullmatch(r"[a-zA-Z0-9:_-]{0,128}", v) is not None,
        "a thing group name or ''",
    )
    soak_minutes: float = _setting("soakMinutes", float, lambda v: _number(v) and 0 < v <= 24 * 60, "(0, 1440]")
    canary: CanarySettings = _block("canary", CanarySettings)


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


def promotion_problems(raw: Any) -> list[str]:
    """Every problem of the block at once, so one synth names them all (the style of infra.config)."""
    return _problems(PromotionConfig, raw, "")


def parse_promotion(raw: Any) -> PromotionConfig:
    """The Lambdas' one parse of the block their ``PROMOTION`` variable holds."""
    problems = promotion_problems(raw)
    if problems:
        raise SettingsError(f"{PROMOTION}: " + "; ".join(problems))
    return cast(PromotionConfig, _build(PromotionConfig, raw))
