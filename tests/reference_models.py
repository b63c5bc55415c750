"""MXNet's answers for the tests (reference artifacts, forward passes), from the MXNet environment (odctl.mxnet_env)."""

from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from odctl import mxnet_env


@dataclass
class Reference:
    tarball: Path
    train_json: str
    params_bytes: bytes
    hyperparams: dict
    image_size: int
    nms_threshold: float
    nms_topk: int


def build_resnet50_from_seed(seed_dir: Path, out: Path, num_classes: int = 2) -> Reference:
    """The real SageMaker ResNet-50 512 deploy graph with its training heads rebuilt, as training writes it."""
    return _reference(out, kind="resnet50-seed", num_classes=num_classes, seed_dir=str(seed_dir))


def build_vgg16(out: Path, num_classes: int = 2) -> Reference:
    return _reference(out, kind="vgg16", num_classes=num_classes)


def _reference(out: Path, **request) -> Reference:
    made = mxnet_env.call("reference-model", {**request, "out": str(out)})
    with tarfile.open(out) as archive:
        train_json = archive.extractfile("model_algo_1-symbol.json").read().decode()
        params = archive.extractfile("model_algo_1-0000.params").read()
    return Reference(
        out, train_json, params, made["hyperparams"], made["image_size"], made["nms_threshold"], made["nms_topk"]
    )


def mxnet_forward(
    symbol_json: str, params_bytes: bytes, images: list[np.ndarray], outputs: tuple[str, ...] = ()
) -> list[list[np.ndarray]]:
    """MXNet's outputs for each preprocessed (1,3,S,S) image; ``outputs`` picks internal nodes instead."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "net.json").write_text(symbol_json)
        (base / "net.params").write_bytes(params_bytes)
        np.savez(base / "images.npz", **{f"image_{i}": image for i, image in enumerate(images)})
        request = {"symbol": str(base / "net.json"), "params": str(base / "net.params")}
        request |= {"images": str(base / "images.npz"), "out": str(base / "out.npz"), "outputs": list(outputs)}
        count = mxnet_env.call("forward", request)
        with np.load(base / "out.npz") as result:
            width = len(result.files) // count
            return [[result[f"{i}_{j}"] for j in range(width)] for i in range(count)]


def mxnet_deploy_graph(reference: Reference) -> str:
    """The deploy graph as MXNet's API builds it from the training graph (what apache/mxnet's deploy.py does)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "train.json").write_text(reference.train_json)
        request = {"train_symbol": str(Path(folder) / "train.json"), "out": str(Path(folder) / "deploy.json")}
        request |= {"nms_threshold": reference.nms_threshold, "nms_topk": reference.nms_topk}
        return Path(mxnet_env.call("deploy-graph", request)).read_text()


def mxnet_multibox_detection(triples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], **settings) -> list[np.ndarray]:
    """MXNet's MultiBoxDetection on each (cls_prob, loc_pred, anchors) triple."""
    with tempfile.TemporaryDirectory() as folder:
        arrays = {}
        for i, (cls_prob, loc, anchors) in enumerate(triples):
            arrays |= {f"{i}_cls_prob": cls_prob, f"{i}_loc_pred": loc, f"{i}_anchors": anchors}
        np.savez(Path(folder) / "in.npz", **arrays)
        request = {"inputs": str(Path(folder) / "in.npz"), "out": str(Path(folder) / "out.npz"), **settings}
        count = mxnet_env.call("multibox-detection", request)
        with np.load(Path(folder) / "out.npz") as result:
            return [result[str(i)] for i in range(count)]


def preprocess(path_or_image, size: int) -> np.ndarray:
    """The model's preprocessing (REFERENCE.md A9): BGR->RGB, stretch to SxS, CHW, float 0-255."""
    image = cv2.imread(str(path_or_image)) if not isinstance(path_or_image, np.ndarray) else path_or_image
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (size, size)).transpose(2, 0, 1)[None].astype(np.float32)


def match_detections(expected: np.ndarray, actual: np.ndarray, tol: float = 1e-4) -> tuple[int, int, int]:
    """Match valid rows (class >= 0) by class, box and score; returns (matched, expected, actual) counts."""
    exp = expected[expected[:, 0] >= 0]
    act = actual[actual[:, 0] >= 0]
    used = np.zeros(len(act), bool)
    matched = 0
    for row in exp:
        close = np.all(np.abs(act - row) <= tol, axis=1) & ~used
        if close.any():
            used[np.argmax(close)] = True
            matched += 1
    return matched, len(exp), len(act)
