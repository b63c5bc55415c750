"""cdk.json ``edge-od:promotion`` has one home, odshared.core.settings: synth checks it there and the promotion
Lambdas build their settings from the same parse, so a mistyped key fails at synth rather than in a Lambda."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from infra.config import cdk_json_context
from odshared.core.settings import PromotionConfig, SettingsError, parse_promotion, promotion_problems
from odshared.fleet.canary import CanaryBounds
from odshared.model.promotion import PromotionSettings
from odshared.model.registry import GateSettings

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "lambdas" / "shared" / "odshared" / "core" / "settings.py"
# words of the block that name other things too: not evidence of a second parser
HOMONYMS = {
    "evaluationImages": "the execution input's field, which this setting only defaults",
    "canary": "the promotion state's result path of the canary deploy",
}


def _block() -> dict:
    return dict(cdk_json_context()["edge-od:promotion"])


def test_unknown_key_names_the_closest_known_one():
    block = _block()
    block["soakMinute"] = block.pop("soakMinutes")
    block["canary"] = {**block["canary"], "minFps": 0.8}
    problems = promotion_problems(block)
    assert "unknown key 'soakMinute' (did you mean 'soakMinutes'?)" in problems
    assert "unknown key 'canary.minFps' (did you mean 'canary.minFpsRatio'?)" in problems
    assert "soakMinutes is missing: (0, 1440]" in problems  # every problem at once, as synth reports them
    with pytest.raises(SettingsError, match="edge-od:promotion: unknown key 'soakMinute'"):
        parse_promotion(block)


def test_the_lambdas_settings_come_from_one_parse():
    promotion = parse_promotion(_block())
    assert GateSettings.from_settings(promotion) == GateSettings("auto", 0.5, 0.02)
    assert PromotionSettings.from_settings(promotion, "cameras", "b").soak_seconds == 30 * 60
    assert CanaryBounds.from_settings(promotion.canary) == CanaryBounds(0.8, 0, 0.95, 0.5, 2.0)


def _keys(cls: type) -> set[str]:
    found = set()
    for spec in fields(cls):
        found.add(spec.metadata["key"])
        if "nested" in spec.metadata:
            found |= _keys(spec.metadata["nested"])
    return found


def test_a_promotion_setting_is_named_in_one_module():
    """A new setting is a field of PromotionConfig and nothing else: no other shipped module spells a key of the
    block as a string (docstrings and messages aside), so none parses the raw JSON on its own."""
    keys = _keys(PromotionConfig) - set(HOMONYMS)
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
