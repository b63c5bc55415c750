"""SSD graphs in the layout of SageMaker's built-in Object Detection algorithm, built with MXNet.

Node names follow apache/mxnet's ``example/ssd`` (which the built-in algorithm is derived from, REFERENCE.md A6):
extra feature layers ``multi_feat_<k>_conv_{1x1,3x3}_{conv,relu}``, per-layer ``<layer>_{loc,cls}_pred_conv`` and
``<layer>_anchors``, the heads ``multibox_loc_pred``, ``multibox_cls_pred``, ``multibox_anchors``, and the
training outputs ``cls_prob``, ``loc_loss``, ``cls_label``, ``det_out``. The converter finds nodes by these
names, so it cannot tell these graphs from SageMaker's. MXNet is imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

VARIANCES = (0.1, 0.1, 0.2, 0.2)


@dataclass(frozen=True)
class FeatureSpec:
    """One SSD source layer: an existing node (``from_layer``) or an extra block (``''``)."""

    from_layer: str
    num_filter: int = -1
    stride: int = -1
    pad: int = -1
    sizes: tuple[float, ...] = (0.1, 0.141)
    ratios: tuple[float, ...] = (1.0, 2.0, 0.5)
    normalization: float = -1.0


def _fmt(values: Sequence[float]) -> str:
    return "(" + ",".join(f"{v:g}" if float(v).is_integer() else repr(float(v)) for v in values) + ")"


def _conv_relu(mx: Any, data: Any, name: str, num_filter: int, kernel: int, stride: int, pad: int) -> Any:
    bias = mx.sym.Variable(f"{name}_conv_bias", init=mx.init.Constant(0.0), attr={"__lr_mult__": "2.0"})
    conv = mx.sym.Convolution(
        data=data,
        bias=bias,
        kernel=(kernel, kernel),
        stride=(stride, stride),
        pad=(pad, pad),
        num_filter=num_filter,
        name=f"{name}_conv",
    )
    return mx.sym.Activation(data=conv, act_type="relu", name=f"{name}_relu")


def multibox_heads(body: Any, specs: Sequence[FeatureSpec], num_classes: int, min_filter: int = 128) -> tuple:
    """Feature layers, then per layer a loc and a class prediction conv and anchors; returns the three heads."""
    import mxnet as mx

    internals = body.get_internals()
    layers = []
    for k, spec in enumerate(specs):
        if spec.from_layer:
            layers.append(internals[f"{spec.from_layer}_output"])
        else:
            one = _conv_relu(mx, layers[-1], f"multi_feat_{k}_conv_1x1", max(min_filter, spec.num_filter // 2), 1, 1, 0)
            layers.append(_conv_relu(mx, one, f"multi_feat_{k}_conv_3x3", spec.num_filter, 3, spec.stride, spec.pad))
    loc_layers, cls_layers, anchor_layers = [], [], []
    for spec, layer in zip(specs, layers, strict=True):
        name = layer.name
        if spec.normalization > 0:
            layer = mx.sym.L2Normalization(data=layer, mode="channel", name=f"{name}_norm")
            scale = mx.sym.Variable(
                f"{name}_scale", shape=(1, spec.num_filter, 1, 1), init=mx.init.Constant(spec.normalization)
            )
            layer = mx.sym.broadcast_mul(lhs=scale, rhs=layer)
        anchors_per_cell = len(spec.sizes) - 1 + len(spec.ratios)
        for kind, width, bucket in (("loc", 4, loc_layers), ("cls", num_classes + 1, cls_layers)):
            bias = mx.sym.Variable(
                f"{name}_{kind}_pred_conv_bias", init=mx.init.Constant(0.0), attr={"__lr_mult__": "2.0"}
            )
            pred = mx.sym.Convolution(
                data=layer,
                bias=bias,
                kernel=(3, 3),
                stride=(1, 1),
                pad=(1, 1),
                num_filter=anchors_per_cell * width,
                name=f"{name}_{kind}_pred_conv",
            )
            bucket.append(mx.sym.Flatten(data=mx.sym.transpose(pred, axes=(0, 2, 3, 1))))
        anchors = mx.sym.contrib.MultiBoxPrior(
            layer,
            sizes=_fmt(spec.sizes),
            ratios=_fmt(spec.ratios),
            clip=False,
            steps="(-1.0, -1.0)",
            name=f"{name}_anchors",
        )
        anchor_layers.append(mx.sym.Flatten(data=anchors))
    loc_preds = mx.sym.Concat(*loc_layers, num_args=len(loc_layers), dim=1, name="multibox_loc_pred")
    cls_preds = mx.sym.Concat(*cls_layers, num_args=len(cls_layers), dim=1)
    cls_preds = mx.sym.Reshape(data=cls_preds, shape=(0, -1, num_classes + 1))
    cls_preds = mx.sym.transpose(cls_preds, axes=(0, 2, 1), name="multibox_cls_pred")
    anchor_boxes = mx.sym.Concat(*anchor_layers, num_args=len(anchor_layers), dim=1)
    anchor_boxes = mx.sym.Reshape(data=anchor_boxes, shape=(0, -1, 4), name="multibox_anchors")
    return loc_preds, cls_preds, anchor_boxes


def training_heads(
    loc_preds: Any,
    cls_preds: Any,
    anchors: Any,
    nms_threshold: float = 0.45,
    force_suppress: bool = False,
    nms_topk: int = 400,
    overlap_threshold: float = 0.5,
) -> Any:
    """MultiBoxTarget, the losses and the monitoring outputs, grouped as SageMaker's training graph has them."""
    import mxnet as mx

    label = mx.sym.Variable("label")
    target = mx.sym.contrib.MultiBoxTarget(
        anchors,
        label,
        cls_preds,
        overlap_threshold=overlap_threshold,
        ignore_label=-1,
        negative_mining_ratio=3,
        minimum_negative_samples=0,
        negative_mining_thresh=0.5,
        variances=VARIANCES,
        name="multibox_target",
    )
    loc_target, loc_mask, cls_target = target[0], target[1], target[2]
    cls_prob = mx.sym.SoftmaxOutput(
        data=cls_preds,
        label=cls_target,
        ignore_label=-1,
        use_ignore=True,
        grad_scale=1.0,
        multi_output=True,
        normalization="valid",
        name="cls_prob",
    )
    loc_loss_ = mx.sym.smooth_l1(name="loc_loss_", data=loc_mask * (loc_preds - loc_target), scalar=1.0)
    loc_loss = mx.sym.MakeLoss(loc_loss_, grad_scale=1.0, normalization="valid", name="loc_loss")
    cls_label = mx.sym.MakeLoss(data=cls_target, grad_scale=0, name="cls_label")
    det = mx.sym.contrib.MultiBoxDetection(
        cls_prob,
        loc_preds,
        anchors,
        name="detection",
        nms_threshold=nms_threshold,
        force_suppress=force_suppress,
        variances=VARIANCES,
        nms_topk=nms_topk,
    )
    det = mx.sym.MakeLoss(data=det, grad_scale=0, name="det_out")
    return mx.sym.Group([cls_prob, loc_loss, cls_label, det])


def deploy_heads(
    loc_preds: Any,
    cls_preds: Any,
    anchors: Any,
    nms_threshold: float = 0.45,
    force_suppress: bool = False,
    nms_topk: int = 400,
) -> Any:
    """The inference graph as apache/mxnet's example/ssd/deploy.py builds it with MXNet's API."""
    import mxnet as mx

    cls_prob = mx.sym.SoftmaxActivation(data=cls_preds, mode="channel", name="cls_prob")
    return mx.sym.contrib.MultiBoxDetection(
        cls_prob,
        loc_preds,
        anchors,
        name="detection",
        nms_threshold=nms_threshold,
        force_suppress=force_suppress,
        variances=VARIANCES,
        nms_topk=nms_topk,
    )


def heads_of(symbol: Any) -> tuple[Any, Any, Any]:
    internals = symbol.get_internals()
    return (
        internals["multibox_loc_pred_output"],
        internals["multibox_cls_pred_output"],
        internals["multibox_anchors_output"],
    )


def vgg16_reduced(data: Any) -> Any:
    """VGG-16 with fc6/fc7 as (dilated) convolutions, the SSD base network (layer names as in mxnet-ssd)."""
    import mxnet as mx

    net = data
    groups = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
    for group, count, filters in groups:
        for i in range(1, count + 1):
            net = mx.sym.Convolution(data=net, kernel=(3, 3), pad=(1, 1), num_filter=filters, name=f"conv{group}_{i}")
            net = mx.sym.Activation(data=net, act_type="relu", name=f"relu{group}_{i}")
        if group < 5:
            net = mx.sym.Pooling(
                data=net,
                pool_type="max",
                kernel=(2, 2),
                stride=(2, 2),
                name=f"pool{group}",
                pooling_convention="full" if group == 3 else "valid",
            )
    net = mx.sym.Pooling(data=net, pool_type="max", kernel=(3, 3), stride=(1, 1), pad=(1, 1), name="pool5")
    net = mx.sym.Convolution(data=net, kernel=(3, 3), pad=(6, 6), dilate=(6, 6), num_filter=1024, name="fc6")
    net = mx.sym.Activation(data=net, act_type="relu", name="relu6")
    net = mx.sym.Convolution(data=net, kernel=(1, 1), num_filter=1024, name="fc7")
    return mx.sym.Activation(data=net, act_type="relu", name="relu7")


R3 = (1.0, 2.0, 0.5)
R5 = (1.0, 2.0, 0.5, 3.0, 1.0 / 3)
VGG16_300 = (
    FeatureSpec("relu4_3", 512, sizes=(0.1, 0.141), ratios=R3, normalization=20),
    FeatureSpec("relu7", sizes=(0.2, 0.272), ratios=R5),
    FeatureSpec("", 512, 2, 1, sizes=(0.37, 0.447), ratios=R5),
    FeatureSpec("", 256, 2, 1, sizes=(0.54, 0.619), ratios=R5),
    FeatureSpec("", 256, 1, 0, sizes=(0.71, 0.79), ratios=R3),
    FeatureSpec("", 256, 1, 0, sizes=(0.88, 0.961), ratios=R3),
)


def vgg16_ssd_train(num_classes: int, nms_threshold: float = 0.45, nms_topk: int = 400) -> Any:
    import mxnet as mx

    body = vgg16_reduced(mx.sym.Variable("data"))
    return training_heads(*multibox_heads(body, VGG16_300, num_classes), nms_threshold=nms_threshold, nms_topk=nms_topk)


def init_params(symbol: Any, image_size: int, seed: int = 0, label_shape: tuple[int, ...] = (1, 1, 5)) -> tuple:
    """Seeded random weights (He-normal convs, realistic BatchNorm statistics for 0-255 input)."""
    shapes = {"data": (1, 3, image_size, image_size)}
    if "label" in symbol.list_arguments():
        shapes["label"] = label_shape
    arg_shapes, _, aux_shapes = symbol.infer_shape(**shapes)
    rng = np.random.default_rng(seed)
    args, aux = {}, {}
    for name, shape in zip(symbol.list_arguments(), arg_shapes, strict=True):
        if name in ("data", "label"):
            continue
        if name.endswith("_weight"):
            fan_in = int(np.prod(shape[1:]))
            args[name] = (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        elif name.endswith("_gamma"):
            args[name] = rng.uniform(0.8, 1.2, size=shape).astype(np.float32)
        elif name.endswith("_scale"):
            args[name] = np.full(shape, 20.0, np.float32)
        else:
            args[name] = (rng.normal(size=shape) * 0.1).astype(np.float32)
    for name, shape in zip(symbol.list_auxiliary_states(), aux_shapes, strict=True):
        if name.endswith("_var"):
            aux[name] = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
        else:
            aux[name] = (rng.normal(size=shape) * 0.1).astype(np.float32)
    if "bn_data_moving_mean" in aux:  # the ResNet input BatchNorm normalises raw 0-255 pixels
        aux["bn_data_moving_mean"][:] = 120.0
        aux["bn_data_moving_var"][:] = 60.0**2
    return args, aux


def save_checkpoint_bytes(args: dict, aux: dict) -> bytes:
    """The params file MXNet writes for a checkpoint (``arg:``/``aux:`` names), via MXNet itself."""
    import os
    import tempfile

    import mxnet as mx

    payload = {f"arg:{k}": mx.nd.array(v) for k, v in args.items()}
    payload.update({f"aux:{k}": mx.nd.array(v) for k, v in aux.items()})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.params")
        mx.nd.save(path, payload)
        with open(path, "rb") as handle:
            return handle.read()
