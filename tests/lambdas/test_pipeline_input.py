"""The workflow's execution input: defaults, names SageMaker accepts, and every problem reported at once."""

from __future__ import annotations

import pytest

from odshared.data.pipeline import PipelineInputError, label_category_config, normalise

DEFAULTS = {
    "classes": ["blue box", "yellow box"],
    "hyperparameters": {"base_network": "resnet-50", "epochs": "50"},
    "thingGroup": "cameras",
    "dataBucket": "data-bucket",
    "workteamArn": "arn:aws:sagemaker:x",
}


def test_labeling_skipped_with_defaults():
    config = normalise({"runName": "run-1", "manifests": ["s3://b/a.manifest"]}, DEFAULTS)
    assert not config["labelingRequested"] and config["manifests"] == ["s3://b/a.manifest"]
    assert config["trainingJobName"] == "run-1-train" and config["labelingJobName"] == "run-1-labels"
    assert config["hyperparameters"]["num_classes"] == "2" and config["hyperparameters"]["epochs"] == "50"
    assert config["preparedPrefix"] == "s3://data-bucket/prepared/run-1"
    assert not config["deployRequested"]


def test_labeling_requested_and_deploy_to_default_group():
    config = normalise(
        {"labelingManifest": "s3://b/in.manifest", "deploy": True, "classes": ["a"], "hyperparameters": {"epochs": 5}},
        DEFAULTS,
        now=0,
    )
    assert config["labelingRequested"] and config["runName"] == "od-19700101-000000"
    assert config["thingGroup"] == "cameras" and config["hyperparameters"]["num_classes"] == "1"
    assert config["labelCategoryConfig"].startswith("s3://data-bucket/pipeline/")


def test_problems_are_reported_together():
    with pytest.raises(PipelineInputError) as info:
        normalise(
            {
                "runName": "bad_name",
                "manifests": ["/local/file"],
                "labelingManifest": "s3://x/y",
                "hyperparameters": {"learning_rate": 3},
                "deploy": True,
            },
            {**DEFAULTS, "thingGroup": ""},
        )
    text = str(info.value)
    for part in (
        "runName 'bad_name'",
        "either labelingManifest",
        "'/local/file': manifests must be s3://",
        "learning_rate='3'",
        "deploy: true needs a thing group",
    ):
        assert part in text


def test_label_categories():
    assert label_category_config(["a", "b"]) == {
        "document-version": "2018-11-28",
        "labels": [{"label": "a"}, {"label": "b"}],
    }


def test_labeling_is_refused_where_ground_truth_does_not_run():
    """The stack passes labelingAvailable from its region map (eu-south-2 has no Ground Truth)."""
    defaults = {**DEFAULTS, "labelingAvailable": "false", "region": "eu-south-2"}
    with pytest.raises(PipelineInputError, match="Ground Truth does not run in eu-south-2; label with Label Studio"):
        normalise({"labelingManifest": "s3://b/in.manifest"}, defaults)
    assert not normalise({"manifests": ["s3://b/a.manifest"]}, defaults)["labelingRequested"]
