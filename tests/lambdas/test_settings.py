"""cdk.json's settings blocks (``edge-od:promotion``, ``edge-od:spooler``, ``edge-od:logs``) have one home,
odshared.core.settings: synth checks them there and the Lambdas build their settings from the same parse, so a
mistyped key fails at synth rather than in a Lambda."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from infra.config import cdk_json_context
from odshared.core.settings import (
    BLOCKS,
    CanarySettings,
    LogSettings,
    PromotionConfig,
    SettingsError,
    SpoolerSettings,
    block_problems,
    parse,
    parse_promotion,
)
from odshared.model.promotion import PromotionSettings
from odshared.model.registry import GateSettings

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "lambdas" / "shared" / "odshared" / "core" / "settings.py"
# words of the blocks that name other things too: not evidence of a second parser
HOMONYMS = {
    "evaluationImages": "the execution input's field, which this setting only defaults",
    "canary": "the promotion state's result path of the canary deploy",
    "storageType": "the nucleus's own spooler setting, which the deployment writes",
    "maxSizeInBytes": "the nucleus's own spooler setting, which the deployment writes",
    "level": "a log record's field",
    "devices": "the canary verdict's list of the group's devices",
}


def _block(model: type = PromotionConfig) -> dict:
    return dict(cdk_json_context()[model.BLOCK])


def test_unknown_key_names_the_closest_known_one():
    block = _block()
    block["soakMinute"] = block.pop("soakMinutes")
    block["canary"] = {**block["canary"], "minFps": 0.8}
    problems = block_problems(PromotionConfig, block)
    assert "unknown key 'soakMinute' (did you mean 'soakMinutes'?)" in problems
    assert "unknown key 'canary.minFps' (did you mean 'canary.minFpsRatio'?)" in problems
    assert "soakMinutes is missing: (0, 1440]" in problems  # every problem at once, as synth reports them
    with pytest.raises(SettingsError, match="edge-od:promotion: unknown key 'soakMinute'"):
        parse_promotion(block)


def test_the_lambdas_settings_come_from_one_parse():
    promotion = parse_promotion(_block())
    assert GateSettings.from_settings(promotion) == GateSettings("auto", 0.5, 0.02)
    assert PromotionSettings.from_settings(promotion, "cameras", "b").soak_seconds == 30 * 60
    canary = promotion.canary  # what check_canary takes: one type, no copy of the five numbers
    assert isinstance(canary, CanarySettings) and (canary.min_fps_ratio, canary.max_detections_ratio) == (0.8, 2.0)


def test_the_spooler_and_log_blocks_are_checked_key_by_key():
    spooler = _block(SpoolerSettings)
    spooler["storageType"] = "Flash"
    spooler["nucleusVersion"] = "2.15"
    spooler["maxSizeInByte"] = spooler.pop("maxSizeInBytes")
    assert block_problems(SpoolerSettings, spooler) == [
        "unknown key 'maxSizeInByte' (did you mean 'maxSizeInBytes'?)",
        "storageType: Disk|Memory",
        "maxSizeInBytes is missing: an integer >= 262144",
        "nucleusVersion: major.minor.patch",
    ]
    logs = {**_block(LogSettings), "intervalSeconds": 30, "diskLimitMb": True}
    with pytest.raises(SettingsError, match=r"^edge-od:logs: intervalSeconds: an integer >= 60; diskLimitMb: an"):
        parse(LogSettings, logs)
    (not_an_object,) = block_problems(LogSettings, "INFO")
    assert not_an_object.startswith("an object of level, intervalSeconds, ")
    assert parse(SpoolerSettings, _block(SpoolerSettings)).max_size_bytes == 16777216


def _keys(cls: type) -> set[str]:
    found = set()
    for spec in fields(cls):
        found.add(spec.metadata["key"])
        if "nested" in spec.metadata:
            found |= _keys(spec.metadata["nested"])
    return found


def test_a_setting_is_named_in_one_module():
    """A new setting is a field of its block's model and nothing else: no other shipped module spells a key of a
    block as a string (docstrings and messages aside), so none parses the raw JSON on its own."""
    keys = set().union(*(_keys(model) for model in BLOCKS)) - set(HOMONYMS)
    roots = [REPO / "infra", REPO / "lambdas", REPO / "scripts" / "odctl", REPO / "app.py"]
    elsewhere = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*.py"):
            if path == HOME:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in keys:
                    elsewhere.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not elsewhere, "read it through odshared.core.settings instead:\n" + "\n".join(elsewhere)
