"""Calibration step of the workflow: the run's validation frames, preprocessed as the device does, for INT8."""

from __future__ import annotations

import logging
from typing import Any

from odshared.core.log import configure
from odshared.model.calibration import DEFAULT_CALIBRATION_IMAGES, prepare_calibration

configure()
logger = logging.getLogger(__name__)


def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    manifests = [event[key] for key in ("validation_manifest", "train_manifest") if event.get(key)]
    count = int(event.get("images") or DEFAULT_CALIBRATION_IMAGES)
    evaluation_images = int(event.get("evaluation_images") or 0)  # the validation frames the model is scored on
    return prepare_calibration(
        manifests, event.get("hyperparameters") or {}, count, event.get("label_attribute"), evaluation_images
    )
