"""``odctl package-component``: the two Greengrass components laid out for `greengrass-cli deployment create`.

Writes ``recipes/<Name>-<version>.yaml`` and ``artifacts/<Name>/<version>/<file>.zip`` for the inference
component (the odedge code) and the model component (a converted package), plus the zips that the CDK app
and the pipeline upload to S3.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from odedge.model import ModelPackage
from odshared.core.archives import edge_code_digest, edge_code_zip
from odshared.core.log import log_event
from odshared.greengrass.recipes import check_prefix, check_version, component_names, recipe_file_name, render_recipe
from odshared.model.package import MODEL_ZIP, model_zip, read_package

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
EDGE = REPO / "edge_component"
RECIPES = EDGE / "recipes"
DEFAULT_ARTIFACT_URI = "s3://local-artifacts/components"


def code_zip(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(edge_code_zip(EDGE))
    return path


def write_model_zip(package: ModelPackage, path: Path) -> Path:
    """The model component's artifact for a local package (the same bytes the publish step uploads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model_zip(read_package(str(package.root))))
    return path


def package_components(
    model_dir: str,
    out: str,
    name_prefix: str = "com.example",
    version: str = "1.0.0",
    model_version: str = "1.0.0",
    artifact_uri: str = DEFAULT_ARTIFACT_URI,
    upload_bucket: str = "",
) -> dict[str, Any]:
    check_prefix(name_prefix)
    check_version(version, "--version")
    check_version(model_version, "--model-version")
    package = ModelPackage.load(model_dir)
    root = Path(out)
    code_name, model_name = component_names(name_prefix)
    values = {
        "NAME_PREFIX": name_prefix,
        "VERSION": version,
        "MODEL_VERSION": model_version,
        "ARTIFACT_URI": artifact_uri.rstrip("/"),
        "CODE_DIGEST": edge_code_digest(EDGE),
        "UPLOAD_BUCKET": upload_bucket,
        "CLASSES": ", ".join(package.classes),
        "DIGEST": package.version,  # identifies the package in the component description
    }
    code_artifact = code_zip(root / "artifacts" / code_name / version / "odedge.zip")
    model_artifact = write_model_zip(package, root / "artifacts" / model_name / model_version / MODEL_ZIP)
    recipes = {}
    for template, name, ver in (("inference.yaml", code_name, version), ("model.yaml", model_name, model_version)):
        text = render_recipe((RECIPES / template).read_text(), values)
        path = root / "recipes" / recipe_file_name(name, ver)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        recipes[name] = str(path)
    result = {
        "recipes": recipes,
        "artifacts": {code_name: str(code_artifact), model_name: str(model_artifact)},
        "components": {code_name: version, model_name: model_version},
        "deploy_command": (
            # absolute, as the README writes it: the command works from any folder
            f"sudo /greengrass/v2/bin/greengrass-cli deployment create --recipeDir {root.resolve() / 'recipes'} "
            f'--artifactDir {root.resolve() / "artifacts"} --merge "{code_name}={version}" '
            f'--merge "{model_name}={model_version}"'
        ),
    }
    (root / "components.json").write_text(json.dumps(result, indent=2) + "\n")
    log_event(logger, "package_component.done", out=str(root), components=result["components"])
    return result
