"""(MXNet environment) The device's MXNet backend, as on a Python 3.11 device that asks for it, agrees with ONNX
Runtime on the same converted package."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from odedge.model import ModelPackage
from odedge.preprocess import preprocess
from odedge.runtimes import MxnetRuntime, OnnxRuntime
from odmxnet.reference import reference_model
from odshared.model.convert import convert

pytestmark = pytest.mark.integration


def test_mxnet_backend_matches_onnx_runtime(tmp_path, seed_dir):
    reference_model("vgg16", str(tmp_path / "model.tar.gz"))
    convert(str(tmp_path / "model.tar.gz"), str(tmp_path / "package"), ["blue box", "yellow box"])
    package = ModelPackage.load(tmp_path / "package")
    blob, _ = preprocess(cv2.imread(str(seed_dir / "blue_box_1_000133.jpg")), package.input_size)
    mxnet_rows = MxnetRuntime(package).predict(blob)
    onnx_rows = OnnxRuntime(package).predict(blob)
    valid = mxnet_rows[mxnet_rows[:, 0] >= 0]
    assert len(valid) > 0
    # near-tied scores of random weights may swap rows: each MXNet row has an ONNX Runtime row within 1e-3
    # (float32 over two runtimes' convolution kernels on saturated random-weight scores)
    for row in valid:
        assert np.abs(onnx_rows - row).max(axis=1).min() <= 1e-3
