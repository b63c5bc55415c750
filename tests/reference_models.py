"""Reference SSD artifacts built with real MXNet, in SageMaker's model.tar.gz layout (seeded random weights)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from odshared.convert import make_tarball


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
    import mxnet as mx

    from odctl.ssd_model import heads_of, init_params, training_heads

    deploy = mx.sym.load(str(seed_dir / "deploy_model_algo_1-symbol.json"))
    train = training_heads(*heads_of(deploy), nms_threshold=0.45, force_suppress=False, nms_topk=400)
    args, aux = init_params(train, 512, seed=1)
    hyper = json.loads((seed_dir / "hyperparams.json").read_text())
    hyper["num_classes"] = str(num_classes)
    return _write(out, train, args, aux, hyper, 512, 0.45, 400)


def build_vgg16(out: Path, num_classes: int = 2, image_size: int = 300) -> Reference:
    from odctl.ssd_model import init_params, vgg16_ssd_train

    train = vgg16_ssd_train(num_classes, nms_threshold=0.45, nms_topk=400)
    args, aux = init_params(train, image_size, seed=2)
    hyper = {
        "base_network": "vgg-16",
        "num_classes": str(num_classes),
        "image_shape": str(image_size),
        "nms_threshold": "0.45",
        "nms_topk": "400",
        "mini_batch_size": "32",
        "epochs": "30",
    }
    return _write(out, train, args, aux, hyper, image_size, 0.45, 400)


def _write(out: Path, train, args, aux, hyper, image_size, nms, topk) -> Reference:
    from odctl.ssd_model import save_checkpoint_bytes

    params = save_checkpoint_bytes(args, aux)
    train_json = train.tojson()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(
        make_tarball(
            {
                "model_algo_1-symbol.json": train_json.encode(),
                "model_algo_1-0000.params": params,
                "hyperparams.json": json.dumps(hyper).encode(),
            }
        )
    )
    return Reference(out, train_json, params, hyper, image_size, nms, topk)


def mxnet_forward(symbol_json: str, params_bytes: bytes, image: np.ndarray, outputs: tuple[str, ...] = ()) -> list:
    """Run a symbol with MXNet on one preprocessed (1,3,S,S) image; ``outputs`` picks internal nodes instead."""
    import mxnet as mx

    symbol = mx.sym.load_json(symbol_json)
    if outputs:
        internals = symbol.get_internals()
        symbol = mx.sym.Group([internals[f"{name}_output"] for name in outputs])
    loaded = mx.nd.load_frombuffer(params_bytes)
    args = {k[4:]: v for k, v in loaded.items() if k.startswith("arg:")}
    aux = {k[4:]: v for k, v in loaded.items() if k.startswith("aux:")}
    args = {k: v for k, v in args.items() if k in symbol.list_arguments()}
    aux = {k: v for k, v in aux.items() if k in symbol.list_auxiliary_states()}
    executor = symbol.bind(mx.cpu(), {"data": mx.nd.array(image), **args}, aux_states=aux, grad_req="null")
    return [o.asnumpy() for o in executor.forward(is_train=False)]


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
