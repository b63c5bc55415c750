"""Greengrass recipes checked against the Greengrass Development Kit's recipe JSON schema (shared/fixtures), the
way the GDK checks them: every key lower-cased first (recipe keys are case-insensitive)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import yaml

from tests.conftest import REPO

SCHEMA = REPO.parent / "shared" / "fixtures" / "greengrass" / "recipe-schema.json"


@cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def recipe_errors(recipe: str | dict) -> list[str]:
    """Schema violations of a recipe (YAML or JSON text, or parsed), as 'path: message' lines."""
    parsed = yaml.safe_load(recipe) if isinstance(recipe, str) else recipe
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in _validator().iter_errors(_lower_keys(parsed))
    ]
