"""MXNet's own answers, for the tests and benches that check the converter and the device against them.

Reference SSD artifacts (seeded random weights) in SageMaker's model.tar.gz layout, forward passes of a symbol,
the deploy graph as apache/mxnet's deploy.py builds it, and MXNet's MultiBoxDetection on given inputs. Arrays
travel as .npz files (the format is the same for numpy 1.23 here and numpy 2 in the operator's environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np

from odshared.model.convert import make_tarball
from odshared.model.package import SYMBOL_FILE

from .ssd_model import deploy_heads, heads_of, init_params, save_checkpoint_bytes, training_heads, vgg16_ssd_train

NMS_THRESHOLD, NMS_TOPK = 0.45, 400


def reference_model(kind: str, out: str, num_classes: int = 2, seed_dir: str | None = None) -> dict[str, Any]:
    """Write a training artifact: ``resnet50-seed`` (the real SageMaker deploy graph of the seed with its
    training heads rebuilt) or ``vgg16`` (300 input); returns its settings."""
    if kind == "resnet50-seed":
        if not seed_dir:
            raise ValueError("reference-model resnet50-seed needs seed_dir")
        deploy = mx.sym.load(str(Path(seed_dir) / SYMBOL_FILE))  # the seed holds a SageMaker deploy graph
        train = training_heads(*heads_of(deploy), nms_threshold=NMS_THRESHOLD, force_suppress=False, nms_topk=NMS_TOPK)
        image_size, seed = 512, 1
        hyper = json.loads((Path(seed_dir) / "hyperparams.json").read_text())
        hyper["num_classes"] = str(num_classes)
    elif kind == "vgg16":
        train = vgg16_ssd_train(num_classes, nms_threshold=NMS_THRESHOLD, nms_topk=NMS_TOPK)
        image_size, seed = 300, 2
        hyper = {
            "base_network": "vgg-16",
            "num_classes": str(num_classes),
            "image_shape": str(image_size),
            "nms_threshold": str(NMS_THRESHOLD),
            "nms_topk": str(NMS_TOPK),
            "mini_batch_size": "32",
            "epochs": "30",
        }
    else:
        raise ValueError(f"reference-model: unknown kind {kind!r} (resnet50-seed or vgg16)")
    args, aux = init_params(train, image_size, seed=seed)
    files = {
        "model_algo_1-symbol.json": train.tojson().encode(),
        "model_algo_1-0000.params": save_checkpoint_bytes(args, aux),
        "hyperparams.json": json.dumps(hyper).encode(),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(make_tarball(files))
    return {"image_size": image_size, "nms_threshold": NMS_THRESHOLD, "nms_topk": NMS_TOPK, "hyperparams": hyper}


def deploy_graph(train_symbol: str, out: str, nms_threshold: float, nms_topk: int) -> str:
    """The deploy graph built with MXNet's API from the training graph's internals (what deploy.py does)."""
    train = mx.sym.load(train_symbol)
    deploy = deploy_heads(*heads_of(train), nms_threshold=nms_threshold, force_suppress=False, nms_topk=nms_topk)
    Path(out).write_text(deploy.tojson())
    return out


def forward(symbol: str, params: str, images: str, out: str, outputs: list[str] | None = None) -> int:
    """Run ``symbol`` on each (1,3,S,S) image in ``images`` (npz); ``outputs`` picks internal nodes instead.

    Writes ``<image>_<output>`` arrays to ``out``; returns the number of images."""
    net = mx.sym.load(symbol)
    if outputs:
        internals = net.get_internals()
        net = mx.sym.Group([internals[f"{name}_output"] for name in outputs])
    loaded = mx.nd.load(params)
    args = {k[4:]: v for k, v in loaded.items() if k.startswith("arg:") and k[4:] in net.list_arguments()}
    aux = {k[4:]: v for k, v in loaded.items() if k.startswith("aux:") and k[4:] in net.list_auxiliary_states()}
    with np.load(images) as batch:
        inputs = [batch[f"image_{i}"] for i in range(len(batch.files))]
    results = {}
    for i, image in enumerate(inputs):
        executor = net.bind(mx.cpu(), {"data": mx.nd.array(image), **args}, aux_states=aux, grad_req="null")
        for j, value in enumerate(executor.forward(is_train=False)):
            results[f"{i}_{j}"] = value.asnumpy()
    np.savez(out, **results)
    return len(inputs)


def multibox_detection(inputs: str, out: str, **settings: Any) -> int:
    """MXNet's MultiBoxDetection on each (cls_prob, loc_pred, anchors) triple in ``inputs``; ``settings`` are the
    operator's attributes (nms_threshold, force_suppress, threshold, nms_topk, variances)."""
    if "variances" in settings:
        settings["variances"] = tuple(settings["variances"])
    with np.load(inputs) as batch:
        count = len(batch.files) // 3
        results = {
            str(i): mx.nd.contrib.MultiBoxDetection(
                mx.nd.array(batch[f"{i}_cls_prob"]),
                mx.nd.array(batch[f"{i}_loc_pred"]),
                mx.nd.array(batch[f"{i}_anchors"]),
                **settings,
            ).asnumpy()
            for i in range(count)
        }
    np.savez(out, **results)
    return count
