"""Greengrass v2 recipes: the templates in edge_component/recipes filled in for one release.

Templates use ``${NAME}`` placeholders for what a release decides (name prefix, versions, artifact
location); Greengrass's own ``{...}`` recipe variables are left for the device to resolve.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from odshared.core.errors import OdError

PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RecipeError(OdError):
    """A recipe cannot be rendered from the values given."""


def check_version(version: str, what: str = "version") -> str:
    if not SEMVER.match(version):
        raise RecipeError(f"{what} {version!r} is not major.minor.patch (Greengrass component versions are semver)")
    return version


def check_prefix(prefix: str) -> str:
    if not NAME.match(prefix) or prefix.startswith("aws.greengrass"):
        raise RecipeError(
            f"name prefix {prefix!r}: use a reverse-domain name such as com.example "
            "(not aws.greengrass, which would shadow public components)"
        )
    return prefix


def render_recipe(template: str, values: Mapping[str, str]) -> str:
    """Fill every ``${NAME}``; a placeholder without a value is an error, not an empty string."""
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise RecipeError(f"recipe placeholders without a value: {missing}")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


# the two components of a release: the inference code and the model it loads
INFERENCE_COMPONENT = "{prefix}.ObjectDetection"
MODEL_COMPONENT = "{prefix}.ObjectDetection.Model"


def component_names(prefix: str) -> tuple[str, str]:
    """(inference component, model component) for a name prefix such as com.example."""
    return INFERENCE_COMPONENT.format(prefix=prefix), MODEL_COMPONENT.format(prefix=prefix)


def recipe_file_name(component: str, version: str) -> str:
    return f"{component}-{version}.yaml"
