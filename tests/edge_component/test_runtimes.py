"""The runtimes and precisions the device can choose: what runs, what it reports, and that they agree."""

from __future__ import annotations

import json
import platform

import cv2
import jsonschema
import numpy as np
import pytest

from odedge.app import run
from odedge.config import ConfigError, EdgeConfig
from odedge.model import ModelPackage
from odedge.preprocess import preprocess
from odedge.runtimes import OnnxRuntime, OpenVinoRuntime, choose, create_runtime
from odshared.model.evaluation import iou
from tests.conftest import REPO


def _frames(scene, count: int = 6) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(scene["video"]))
    frames = [capture.read()[1] for _ in range(count * 10)]
    return frames[::10]


def _health(path) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line["message"] for line in lines if line["topic"].endswith("/health")]


def _matched(a: np.ndarray, b: np.ndarray, margin: float, threshold: float = 0.5) -> list[tuple[np.ndarray, ...]]:
    """Each confident detection of either side with the best-overlapping one of the other of the same class, among
    those within ``margin`` of the threshold (a score on the threshold may fall either side of it)."""

    def kept(rows: np.ndarray, cut: float) -> np.ndarray:
        return rows[(rows[:, 0] >= 0) & (rows[:, 1] > cut)]

    pairs = []
    for ours, theirs in ((a, b), (b, a)):
        for row in kept(ours, threshold + margin):
            same = kept(theirs, threshold - margin)
            same = same[same[:, 0] == row[0]]
            assert len(same), row
            pairs.append((row, same[int(np.argmax(iou(row[2:], same[:, 2:])))]))
    return pairs


def _share_found(ours: np.ndarray, theirs: np.ndarray) -> tuple[int, int]:
    """(confident detections of ``ours``, those ``theirs`` also has: same class, IoU >= 0.5, the usual match)."""
    confident = ours[(ours[:, 0] >= 0) & (ours[:, 1] > 0.6)]
    candidates = theirs[(theirs[:, 0] >= 0) & (theirs[:, 1] > 0.4)]
    found = 0
    for row in confident:
        same = candidates[candidates[:, 0] == row[0]]
        found += bool(len(same)) and float(iou(row[2:], same[:, 2:]).max()) >= 0.5
    return len(confident), found


def _assert_nine_in_ten_shared(scene, package, ours, theirs) -> None:
    """Over twelve frames, nine in ten of ``ours``'s confident detections are ``theirs``'s too."""
    total = found = 0
    for frame in _frames(scene, 12):
        blob, _ = preprocess(frame, package.input_size)
        counted = _share_found(ours.predict(blob), theirs.predict(blob))
        total, found = total + counted[0], found + counted[1]
    assert total >= 5 and found / total >= 0.9, (found, total)


def test_openvino_and_onnx_runtime_agree_on_each_precision(scene):
    """FP32: the same numbers (OpenVINO held to f32, not its bfloat16 default on BF16 CPUs); INT8: the same
    detections, their integer kernels round differently."""
    package = ModelPackage.load(scene["package_int8"])
    onnx, openvino = OnnxRuntime(package, precision="fp32"), OpenVinoRuntime(package, precision="fp32")
    for frame in _frames(scene):
        blob, _ = preprocess(frame, package.input_size)
        for ours, theirs in _matched(onnx.predict(blob), openvino.predict(blob), 1e-4):
            assert abs(ours[1] - theirs[1]) < 1e-4 and iou(ours[2:], theirs[2:][np.newaxis])[0] > 0.999
    onnx, openvino = OnnxRuntime(package, precision="int8"), OpenVinoRuntime(package, precision="int8")
    _assert_nine_in_ten_shared(scene, package, onnx, openvino)


def test_the_int8_model_detects_what_the_fp32_model_detects(scene):
    """Nine in ten of the FP32 model's confident detections are the INT8 model's too (the tests' 8-epoch model has
    boxes near the threshold, which INT8's rounding may move; the demo's model loses 0.1 point of mAP)."""
    package = ModelPackage.load(scene["package_int8"])
    fp32, int8 = OnnxRuntime(package, precision="fp32"), OnnxRuntime(package, precision="int8")
    _assert_nine_in_ten_shared(scene, package, fp32, int8)


def test_auto_is_openvino_on_x86_64_and_int8_falls_back_where_there_is_none(scene):
    with_int8, fp32_only = ModelPackage.load(scene["package_int8"]), ModelPackage.load(scene["package"])
    expected = "openvino" if platform.machine().lower() in ("x86_64", "amd64") else "onnx"
    assert choose("auto", "int8", with_int8).describe() == {"backend": expected, "precision": "int8"}
    fallback = choose("onnx", "int8", fp32_only)
    assert (fallback.precision, fallback.fallback) == (
        "fp32",
        "the model package has no INT8 model (convert with --int8)",
    )
    assert choose("mxnet", "int8", with_int8).precision == "fp32"  # the deploy graph is FP32 only
    assert choose("onnx", "fp32", with_int8).describe() == {"backend": "onnx", "precision": "fp32"}


@pytest.mark.parametrize(
    ("package", "precision", "expected"),
    [
        ("package_int8", "int8", {"precision": "int8"}),
        ("package_int8", "fp32", {"precision": "fp32"}),
        (
            "package",
            "int8",
            {"precision": "fp32", "fallback": "the model package has no INT8 model (convert with --int8)"},
        ),
    ],
)
def test_health_says_which_precision_runs_and_why(scene, tmp_path, package, precision, expected):
    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(scene[package]),
            "source": str(scene["video"]),
            "publisher": "jsonl",
            "jsonl": str(tmp_path / "out.jsonl"),
            "max_frames": "5",
            "precision": precision,
            "backend": "onnx",
        }
    )
    run(config, install_signals=False)
    schema = json.loads((REPO / "edge_component" / "schemas" / "health.schema.json").read_text())
    health = _health(tmp_path / "out.jsonl")[-1]
    jsonschema.validate(health, schema)
    assert health["runtime"] == {"backend": "onnx", **expected}


def test_a_precision_or_backend_the_device_does_not_have_is_refused_naming_the_key(scene):
    with pytest.raises(ConfigError, match="configuration precision: must be one of fp32, int8"):
        EdgeConfig.from_mapping({"model_dir": str(scene["package"]), "precision": "int4"})
    with pytest.raises(ConfigError, match="configuration backend: must be one of auto, onnx, openvino, mxnet"):
        EdgeConfig.from_mapping({"model_dir": str(scene["package"]), "backend": "tensorrt"})


def test_create_runtime_runs_what_it_reports(scene):
    runtime = create_runtime("auto", ModelPackage.load(scene["package_int8"]), precision="int8")
    assert runtime.choice.precision == "int8" and runtime.name == runtime.choice.backend
