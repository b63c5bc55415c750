"""Publishing a converted model as a Greengrass model component version (the pipeline's publish step).

Component versions and their artifacts are immutable: a package already published (recognised by the
digest in its description) is reused, an artifact already in S3 is never overwritten, and a new package gets
the next patch version.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from odshared.core import storage
from odshared.core.errors import OdError
from odshared.core.log import log_event
from odshared.greengrass.recipes import component_names, recipe_file_name, render_recipe
from odshared.model.package import CHECKSUMS, MODEL_ZIP, model_zip, read_package

logger = logging.getLogger(__name__)


class PublishError(OdError):
    """The model component cannot be published (an artifact would be overwritten, or the service refused)."""


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def publish_model_component(
    package_uri: str,
    artifacts_bucket: str,
    name_prefix: str,
    classes: Sequence[str],
    template: str,
    greengrass: Any,
    account: str,
    region: str,
    partition: str = "aws",
    prefix: str = "components",
) -> dict[str, Any]:
    _, name = component_names(name_prefix)
    files = read_package(package_uri)
    digest = hashlib.sha256(files[CHECKSUMS]).hexdigest()[:16]
    component_arn = f"arn:{partition}:greengrass:{region}:{account}:components:{name}"
    versions = _existing_versions(greengrass, component_arn)
    for version in sorted(versions, key=_version_tuple, reverse=True):
        body = greengrass.get_component(arn=f"{component_arn}:versions:{version}", recipeOutputFormat="YAML")["recipe"]
        text = body.decode() if isinstance(body, bytes) else str(body)
        if digest in text:
            log_event(logger, "publish.reused", component=name, version=version, digest=digest)
            return {
                "componentName": name,
                "componentVersion": version,
                "arn": f"{component_arn}:versions:{version}",
                "reused": True,
            }
    latest = max(versions, key=_version_tuple) if versions else None
    version = (
        "1.0.0" if latest is None else ".".join(map(str, (*_version_tuple(latest)[:2], _version_tuple(latest)[2] + 1)))
    )
    artifact_prefix = f"s3://{artifacts_bucket}/{prefix}"
    artifact = f"{artifact_prefix}/{name}/{version}/{MODEL_ZIP}"
    archive = model_zip(files)
    if storage.exists(artifact):
        if storage.read_bytes(artifact) != archive:
            raise PublishError(f"{artifact} exists with other content; component artifacts are never overwritten")
    else:
        storage.write_bytes(artifact, archive, "application/zip")
    recipe = render_recipe(
        template,
        {
            "NAME_PREFIX": name_prefix,
            "MODEL_VERSION": version,
            "ARTIFACT_URI": artifact_prefix,
            "CLASSES": ", ".join(classes),
            "DIGEST": digest,
        },
    )
    created = greengrass.create_component_version(inlineRecipe=recipe.encode())
    log_event(
        logger,
        "publish.created",
        component=name,
        version=version,
        arn=created["arn"],
        recipe=recipe_file_name(name, version),
    )
    return {
        "componentName": name,
        "componentVersion": version,
        "arn": created["arn"],
        "reused": False,
        "artifact": artifact,
    }


def _existing_versions(greengrass: Any, component_arn: str) -> list[str]:
    versions: list[str] = []
    token = None
    while True:
        kwargs = {"arn": component_arn, **({"nextToken": token} if token else {})}
        try:
            page = greengrass.list_component_versions(**kwargs)
        except greengrass.exceptions.ResourceNotFoundException:
            return []
        versions += [item["componentVersion"] for item in page.get("componentVersions", [])]
        token = page.get("nextToken")
        if not token:
            return versions
