"""Local equivalents of the two SageMaker jobs the workflow starts. Each reads what the real job reads (the request,
the manifests and label categories in S3) and writes what it writes (Ground Truth's output manifest; SageMaker's
``<job>/output/model.tar.gz``), so the steps after it run on real outputs.

- Labeling replays the human labels of the original project's Ground Truth jobs (shared/fixtures/seed), keyed by
  source-ref: a worker given the job's label categories picks the one named after the line's ``color``.
- Training writes the ResNet-50 SSD training graph SageMaker's algorithm saves (the seed's real deploy graph with its
  training heads), seeded weights, and the request's hyperparameters; it fails, as the algorithm does, on channels it
  cannot read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from odshared.core import storage
from odshared.core.errors import StorageError
from tests.conftest import SEED


class JobFailed(Exception):
    """The job ends in status Failed with this reason."""


def _read(uri: str) -> str:
    try:
        return storage.read_text(uri)
    except StorageError as exc:  # the job ends Failed, as SageMaker's does on an unreadable input
        raise JobFailed(f"ClientError: cannot read {uri}: {exc}") from exc


def _lines(text: str) -> Iterator[dict]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise JobFailed(f"ClientError: manifest line {number} is not JSON") from exc


@cache
def recorded_labels() -> dict[str, dict]:
    """frame file name -> the seed job's output line (the frames now live in the rehearsal's bucket)."""
    out = {}
    for path in sorted(SEED.glob("*.output.manifest")):
        for line in _lines(path.read_text()):
            out[line["source-ref"].rsplit("/", 1)[-1]] = line
    return out


def run_labeling_job(request: dict[str, Any]) -> str:
    """Label the input manifest; returns OutputDatasetS3Uri."""
    attribute, job = request["LabelAttributeName"], request["LabelingJobName"]
    categories = [c["label"] for c in json.loads(_read(request["LabelCategoryConfigS3Uri"]))["labels"]]
    _read(request["HumanTaskConfig"]["UiConfig"]["UiTemplateS3Uri"])  # the worker UI must exist
    labeled = []
    for line in _lines(_read(request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"])):
        recorded = recorded_labels().get(line["source-ref"].rsplit("/", 1)[-1])
        if recorded is None:
            continue  # no worker labeled it: Ground Truth leaves such objects out of the output
        chosen = next((c for c in categories if c.startswith(line.get("color", "\0"))), categories[0])
        boxes = recorded["bb"]
        metadata = dict(recorded["bb-metadata"], **{"class-map": {"0": chosen}, "job-name": f"labeling-job/{job}"})
        labeled.append(json.dumps({**line, attribute: boxes, f"{attribute}-metadata": metadata}))
    output = f"{request['OutputConfig']['S3OutputPath'].rstrip('/')}/{job}/manifests/output/output.manifest"
    storage.write_text(output, "\n".join(labeled) + "\n")
    return output


@cache
def _resnet50_graph(num_classes: int) -> tuple[str, bytes]:
    import tempfile

    from tests.reference_models import build_resnet50_from_seed

    reference = build_resnet50_from_seed(SEED, Path(tempfile.mkdtemp()) / "model.tar.gz", num_classes)
    return reference.train_json, reference.params_bytes


def run_training_job(request: dict[str, Any], truncate: bool = False) -> str:
    """Check the channels as the algorithm does; write model.tar.gz; returns S3ModelArtifacts."""
    from odshared.model.convert import make_tarball

    hyper = request["HyperParameters"]
    if hyper.get("base_network") != "resnet-50":
        raise JobFailed(f"the stand-in trains resnet-50 only, asked {hyper.get('base_network')}")
    for channel in request["InputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        lines = list(_lines(_read(source["S3Uri"])))
        for number, line in enumerate(lines, 1):
            missing = [a for a in source["AttributeNames"] if a not in line]
            if missing:
                raise JobFailed(f"ClientError: {channel['ChannelName']} line {number} lacks {missing}")
        if channel["ChannelName"] == "train" and len(lines) != int(hyper["num_training_samples"]):
            raise JobFailed(f"ClientError: num_training_samples={hyper['num_training_samples']}, {len(lines)} lines")
    symbol, params = _resnet50_graph(int(hyper["num_classes"]))
    members = {"model_algo_1-symbol.json": symbol.encode(), "model_algo_1-0000.params": params}
    if truncate:  # a job that wrote an unusable artifact (the conversion step must fail, and say so)
        members.pop("model_algo_1-0000.params")
    tarball = make_tarball({**members, "hyperparams.json": json.dumps(hyper).encode()})
    job = request["TrainingJobName"]
    output = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job}/output/model.tar.gz"
    storage.write_bytes(output, tarball)
    return output
