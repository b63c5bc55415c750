"""Pre-labels: the model's boxes on each new task, from the device runtime itself (odedge: the same preprocessing,
runtime and post-processing as on a camera), so labelers correct boxes instead of drawing them."""

from __future__ import annotations

from typing import Any

from odedge.model import ModelPackage
from odedge.postprocess import detections
from odedge.preprocess import preprocess
from odedge.runtimes import create_runtime
from odshared.core import storage
from odshared.data.contact_sheet import decode

from .formats import SOURCE_KEY, prediction
from .server import LabelStudioError


def add_predictions(tasks: list[dict[str, Any]], model_dir: str, min_score: float) -> str:
    """Attach one prediction to each task, in place; returns the model version (the package's digest)."""
    package = ModelPackage.load(model_dir)
    runtime = create_runtime("onnx", package)
    for item in tasks:
        ref = item["data"][SOURCE_KEY]
        image = decode(storage.read_bytes(ref))
        if image is None:
            raise LabelStudioError(f"{ref}: not a readable image, cannot pre-label it")
        blob, meta = preprocess(image, package.input_size)
        found = detections(runtime.predict(blob), meta, package.classes, min_score)
        item["predictions"] = [prediction(found, (image.shape[1], image.shape[0]), package.version)]
    return package.version
