"""The workflow's execution input: checked once, up front, and normalised for the states that follow.

Input (all optional unless said): ``runName``; either ``labelingManifest`` (run a Ground Truth job on it) or
``manifests`` (Ground Truth output manifests, labeling skipped) — one of them is required; ``classes``;
``preparation`` (prepare-training options); ``hyperparameters`` (overrides); ``deploy`` (true, or a thing
group name). Defaults come from the stack (cdk.json), passed to the Lambda as PIPELINE_DEFAULTS.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from odshared.core.errors import OdError
from odshared.data.hyperparameters import HyperparameterError, validate

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PRICE = {"AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}}  # 0.036 USD per box task


class PipelineInputError(OdError):
    """The execution input cannot start a run; nothing was created."""


def _name(base: str, suffix: str) -> str:
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{base}-{suffix}").strip("-")[:63].strip("-")
    if not JOB_NAME.match(name):
        raise PipelineInputError(f"cannot make a SageMaker job name from {base!r}")
    return name


def normalise(event: Mapping[str, Any], defaults: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    problems: list[str] = []
    run = str(
        event.get("runName") or time.strftime("od-%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    )
    if not JOB_NAME.match(run):
        problems.append(f"runName {run!r}: 1-63 letters, digits and dashes (SageMaker's job-name rule)")
    labeling_manifest = event.get("labelingManifest")
    manifests = event.get("manifests") or []
    if isinstance(manifests, str):
        manifests = [manifests]
    if bool(labeling_manifest) == bool(manifests):
        problems.append("give either labelingManifest (to label first) or manifests (labeled already), not both")
    if labeling_manifest and str(defaults.get("labelingAvailable", "true")) != "true":
        problems.append(
            f"labelingManifest: SageMaker Ground Truth does not run in {defaults.get('region', 'this region')}; "
            "label with Label Studio and pass the output manifests as manifests"
        )
    for uri in ([labeling_manifest] if labeling_manifest else []) + list(manifests):
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            problems.append(f"{uri!r}: manifests must be s3:// URIs")
    classes = event.get("classes") or defaults.get("classes") or []
    if not isinstance(classes, list) or not classes or len(set(classes)) != len(classes):
        problems.append("classes: a list of distinct class names")
    hyper = {**defaults.get("hyperparameters", {}), **(event.get("hyperparameters") or {})}
    hyper["num_classes"] = str(len(classes)) if isinstance(classes, list) else "0"
    try:
        hyper = validate(hyper, require=False)
    except HyperparameterError as exc:
        problems.append(str(exc))
    deploy = event.get("deploy", False)
    thing_group = deploy if isinstance(deploy, str) else (defaults.get("thingGroup") if deploy else "")
    if deploy and not thing_group:
        problems.append("deploy: true needs a thing group (pass its name, or set edge-od:thingGroup)")
    evaluation_images = event.get("evaluationImages") or defaults.get("evaluationImages") or 200
    if (
        not isinstance(evaluation_images, int)
        or isinstance(evaluation_images, bool)
        or not 1 <= evaluation_images <= 2000
    ):
        problems.append(f"evaluationImages {evaluation_images!r}: the validation frames to score on, 1-2000")
    if problems:
        raise PipelineInputError("invalid execution input: " + "; ".join(problems))
    data_bucket = defaults["dataBucket"]
    return {
        "runName": run,
        "labelingRequested": bool(labeling_manifest),
        "labelingJobName": _name(run, "labels"),
        "labelingManifest": labeling_manifest or "",
        "labelCategoryConfig": f"s3://{data_bucket}/pipeline/{run}/label-categories.json",
        "uiTemplate": f"s3://{data_bucket}/pipeline/{run}/bounding-box.liquid.html",
        "workteamArn": defaults.get("workteamArn", ""),
        "price": PRICE,
        "manifests": list(manifests),
        "classes": classes,
        "preparation": event.get("preparation") or {},
        "preparedPrefix": f"s3://{data_bucket}/prepared/{run}",
        "hyperparameters": hyper,
        "trainingJobName": _name(run, "train"),
        "deployRequested": bool(deploy),
        "thingGroup": thing_group or "",
        "evaluationImages": evaluation_images,
    }


LABEL_TEMPLATE = """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-bounding-box name="boundingBox" src="{{ task.input.taskObject | grant_read_access }}"
    header="Draw a tight box around every object" labels="{{ task.input.labels | to_json | escape }}">
    <full-instructions header="Bounding box instructions">
      <p>Draw one box per object, touching its edges. Skip objects that are mostly hidden.</p>
    </full-instructions>
    <short-instructions><p>One tight box per object.</p></short-instructions>
  </crowd-bounding-box>
</crowd-form>
"""


def label_category_config(classes: list[str]) -> dict[str, Any]:
    return {"document-version": "2018-11-28", "labels": [{"label": name} for name in classes]}
