"""SageMaker's hyperparameter rules, applied before any work starts."""

from __future__ import annotations

import pytest

from odshared.data.hyperparameters import HyperparameterError, parsed, validate


def test_defaults_are_sagemakers():
    hyper = validate({"num_classes": 2, "num_training_samples": 100})
    assert hyper["base_network"] == "vgg-16" and hyper["image_shape"] == "300" and hyper["epochs"] == "30"
    assert hyper["learning_rate"] == "0.001" and hyper["optimizer"] == "sgd" and hyper["mini_batch_size"] == "32"
    assert hyper["nms_threshold"] == "0.45" and hyper["label_width"] == "350"
    typed = parsed(hyper)
    assert typed["num_classes"] == 2 and typed["lr_scheduler_step"] == [] and typed["early_stopping"] is False


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("image_shape", 256, "image_shape='256': must be an integer >= 300"),
        ("learning_rate", 0, r"learning_rate='0': must be a number in \(0, 1\]"),
        ("learning_rate", 1.5, r"must be a number in \(0, 1\]"),
        ("weight_decay", 1, r"weight_decay='1': must be a number in \[0, 1\)"),
        ("lr_scheduler_factor", 1, r"must be a number in \(0, 1\)"),
        ("optimizer", "lbfgs", "must be one of sgd, adam, rmsprop, adadelta"),
        ("base_network", "tiny", "must be one of vgg-16, resnet-50"),
        ("early_stopping", "yes", "must be True or False"),
        ("lr_scheduler_step", "20,10", "increasing positive epochs"),
        ("mini_batch_size", 0, "must be an integer >= 1"),
        ("epochs", "ten", "epochs='ten'"),
        ("freeze_layer_pattern", "(", "freeze_layer_pattern"),
        ("learnign_rate", 0.1, "learnign_rate: unknown hyperparameter"),
    ],
)
def test_bad_values_are_named(name, value, message):
    with pytest.raises(HyperparameterError, match=message):
        validate({"num_classes": 2, "num_training_samples": 10, name: value})


def test_required_and_all_problems_reported_together():
    with pytest.raises(HyperparameterError) as info:
        validate({"epochs": 0, "momentum": 2})
    text = str(info.value)
    for part in ("epochs='0'", "momentum='2'", "num_classes: required", "num_training_samples: required"):
        assert part in text


def test_local_only_network_and_internal_keys():
    hyper = validate(
        {"num_classes": 1, "num_training_samples": 1, "base_network": "tiny", "_kvstore": "device"}, local=True
    )
    assert hyper["base_network"] == "tiny" and hyper["_kvstore"] == "device"
    assert validate({"learning_rate": "0.01"}, require=False)["learning_rate"] == "0.01"


def test_seed_hyperparams_are_valid(seed_dir):
    import json

    validate(json.loads((seed_dir / "hyperparams.json").read_text()))
