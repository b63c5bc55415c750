"""Data-preparation step of the workflow: Ground Truth output manifests -> training manifests in S3."""

from __future__ import annotations

import logging
from typing import Any

from odshared.core.log import configure
from odshared.data.dataprep import ClassRule, PrepareOptions, prepare_training

configure()
logger = logging.getLogger(__name__)


def options_from_event(event: dict[str, Any]) -> PrepareOptions:
    """The execution input's ``preparation`` block, with the defaults of ``odctl prepare-training``."""
    prep = event.get("preparation") or {}
    classes = event.get("classes")
    return PrepareOptions(
        label_attribute=event.get("label_attribute", "bb"),
        discard=frozenset(prep.get("discard", ())),
        min_confidence=float(prep.get("min_confidence", 0.0)),
        class_rules=tuple(ClassRule.parse(rule) for rule in prep.get("class_from", ())),
        classes=tuple(classes) if classes else None,
        validation_fraction=float(prep.get("validation_fraction", 0.1)),
        seed=int(prep.get("seed", 42)),
        flip=bool(prep.get("flip", False)),
        keep_empty=bool(prep.get("keep_empty", False)),
        skip_invalid=bool(prep.get("skip_invalid", False)),
        hyperparameters=event.get("hyperparameters"),
    )


def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    manifests = event["manifests"]
    if isinstance(manifests, str):
        manifests = [manifests]
    return prepare_training(manifests, event["output_prefix"], options_from_event(event)).to_dict()
