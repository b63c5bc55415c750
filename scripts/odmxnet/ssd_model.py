"""SSD graphs in the layout of SageMaker's built-in Object Detection algorithm, built with MXNet.

Node names follow apache/mxnet's ``example/ssd`` (which the built-in algorithm is derived from, REFERENCE.md A6):
extra feature layers ``multi_feat_<k>_conv_{1x1,3x3}_{conv,relu}``, per-layer ``<layer>_{loc,cls}_pred_conv`` and
``<layer>_anchors``, the heads ``multibox_loc_pred``, ``multibox_cls_pred``, ``multibox_anchors``, and the
training outputs ``cls_prob``, ``loc_loss``, ``cls_label``, ``det_out``. The converter finds nodes by these
names, so it cannot tell these graphs from SageMaker's. Runs in the MXNet environment only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import mxnet as mx
import numpy as np

from odshared.model.anchors import VARIANCES, anchors_per_cell


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


def _fmt_sizes(values: Sequence[float]) -> str:
    """Sizes as SageMaker's graphs spell them (float32 reprs, e.g. ``(0.2,0.2720294)``)."""
    return "(" + ",".join(str(np.float32(v)) for v in values) + ")"


def _fmt_ratios(values: Sequence[float]) -> str:
    return "(" + ",".join(f"{v:.12g}" for v in values) + ")"


def _conv_relu(data: Any, name: str, num_filter: int, kernel: int, stride: int, pad: int) -> Any:
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
    internals = body.get_internals()
    layers = []
    for k, spec in enumerate(specs):
        if spec.from_layer:
            layers.append(internals[f"{spec.from_layer}_output"])
        else:
            one = _conv_relu(layers[-1], f"multi_feat_{k}_conv_1x1", max(min_filter, spec.num_filter // 2), 1, 1, 0)
            layers.append(_conv_relu(one, f"multi_feat_{k}_conv_3x3", spec.num_filter, 3, spec.stride, spec.pad))
    loc_layers, cls_layers, anchor_layers = [], [], []
    for spec, layer in zip(specs, layers, strict=True):
        name = layer.name
        if spec.normalization > 0:
            layer = mx.sym.L2Normalization(data=layer, mode="channel", name=f"{name}_norm")
            scale = mx.sym.Variable(
                f"{name}_scale", shape=(1, spec.num_filter, 1, 1), init=mx.init.Constant(spec.normalization)
            )
            layer = mx.sym.broadcast_mul(lhs=scale, rhs=layer)
        per_cell = anchors_per_cell(spec.sizes, spec.ratios)
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
                num_filter=per_cell * width,
                name=f"{name}_{kind}_pred_conv",
            )
            bucket.append(mx.sym.Flatten(data=mx.sym.transpose(pred, axes=(0, 2, 3, 1))))
        anchors = mx.sym.contrib.MultiBoxPrior(
            layer,
            sizes=_fmt_sizes(spec.sizes),
            ratios=_fmt_ratios(spec.ratios),
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
    det = _detection(cls_prob, loc_preds, anchors, nms_threshold, force_suppress, nms_topk)
    det = mx.sym.MakeLoss(data=det, grad_scale=0, name="det_out")
    return mx.sym.Group([cls_prob, loc_loss, cls_label, det])


def _detection(
    cls_prob: Any, loc_preds: Any, anchors: Any, nms_threshold: float, force_suppress: bool, nms_topk: int
) -> Any:
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


def deploy_heads(
    loc_preds: Any,
    cls_preds: Any,
    anchors: Any,
    nms_threshold: float = 0.45,
    force_suppress: bool = False,
    nms_topk: int = 400,
) -> Any:
    """The inference graph as apache/mxnet's example/ssd/deploy.py builds it with MXNet's API."""
    cls_prob = mx.sym.SoftmaxActivation(data=cls_preds, mode="channel", name="cls_prob")
    return _detection(cls_prob, loc_preds, anchors, nms_threshold, force_suppress, nms_topk)


def heads_of(symbol: Any) -> tuple[Any, Any, Any]:
    internals = symbol.get_internals()
    return (
        internals["multibox_loc_pred_output"],
        internals["multibox_cls_pred_output"],
        internals["multibox_anchors_output"],
    )


def vgg16_reduced(data: Any) -> Any:
    """VGG-16 with fc6/fc7 as (dilated) convolutions, the SSD base network (layer names as in mxnet-ssd)."""
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


def _sizes(scales: Sequence[float]) -> list[tuple[float, float]]:
    """SSD's per-layer (s_k, sqrt(s_k * s_k+1)) anchor sizes; the last layer pairs with s_k + 0.17."""
    scales = list(scales) + [scales[-1] + 0.17]
    return [(scales[i], float(np.sqrt(scales[i] * scales[i + 1]))) for i in range(len(scales) - 1)]


SCALES = (0.1, 0.2, 0.37, 0.54, 0.71, 0.88)
RATIOS = (R3, R5, R5, R5, R3, R3)


def _ssd_anchors(*layers: FeatureSpec) -> tuple[FeatureSpec, ...]:
    """Six source layers with SSD's anchors: the sizes of SCALES, three ratios on the first and the last two
    layers, five on the others (the same on every base network SageMaker's algorithm builds at 300 and 512)."""
    anchors = zip(layers, _sizes(SCALES), RATIOS, strict=True)
    return tuple(replace(layer, sizes=sizes, ratios=ratios) for layer, sizes, ratios in anchors)


VGG16_300 = _ssd_anchors(
    FeatureSpec("relu4_3", 512, normalization=20),
    FeatureSpec("relu7"),
    FeatureSpec("", 512, 2, 1),
    FeatureSpec("", 256, 2, 1),
    FeatureSpec("", 256, 1, 0),
    FeatureSpec("", 256, 1, 0),
)
# resnet-50: stage-3 and stage-4 outputs, then four extra blocks (the layout of SageMaker's ResNet artifacts)
RESNET50 = _ssd_anchors(
    FeatureSpec("_plus12"),
    FeatureSpec("_plus15"),
    FeatureSpec("", 512, 2, 1),
    FeatureSpec("", 256, 2, 1),
    FeatureSpec("", 256, 2, 1),
    FeatureSpec("", 128, 2, 1),
)
TINY = (
    FeatureSpec("tiny_relu5", sizes=(0.1, 0.16), ratios=R3),
    FeatureSpec("tiny_relu6", sizes=(0.2, 0.3), ratios=R5),
    FeatureSpec("", 128, 2, 1, sizes=(0.37, 0.45), ratios=R5),
    FeatureSpec("", 128, 2, 1, sizes=(0.54, 0.65), ratios=R3),
    FeatureSpec("", 128, 2, 1, sizes=(0.75, 0.9), ratios=R3),
)


def resnet50_v2(data: Any) -> Any:
    """Pre-activation ResNet-50 with MXNet model-zoo names (bn_data, conv0, stageN_unitM_*, _plusK)."""

    def conv(x: Any, filters: int, kernel: int, stride: int, pad: int | None, name: str) -> Any:
        padding = {} if pad is None else {"pad": (pad, pad)}  # the shortcut convs carry no pad attribute
        return mx.sym.Convolution(
            data=x,
            num_filter=filters,
            kernel=(kernel, kernel),
            stride=(stride, stride),
            no_bias=True,
            workspace=256,
            name=name,
            **padding,
        )

    def bn(x: Any, name: str, fix_gamma: bool = False) -> Any:
        return mx.sym.BatchNorm(data=x, fix_gamma=fix_gamma, eps=2e-5, momentum=0.9, name=name)

    def unit(x: Any, filters: int, stride: int, dim_match: bool, name: str) -> Any:
        act1 = mx.sym.Activation(data=bn(x, f"{name}_bn1"), act_type="relu", name=f"{name}_relu1")
        conv1 = conv(act1, filters // 4, 1, 1, 0, f"{name}_conv1")
        act2 = mx.sym.Activation(data=bn(conv1, f"{name}_bn2"), act_type="relu", name=f"{name}_relu2")
        conv2 = conv(act2, filters // 4, 3, stride, 1, f"{name}_conv2")
        act3 = mx.sym.Activation(data=bn(conv2, f"{name}_bn3"), act_type="relu", name=f"{name}_relu3")
        conv3 = conv(act3, filters, 1, 1, 0, f"{name}_conv3")
        shortcut = x if dim_match else conv(act1, filters, 1, stride, None, f"{name}_sc")
        return conv3 + shortcut

    net = bn(mx.sym.identity(data=data, name="id"), "bn_data", fix_gamma=True)
    net = conv(net, 64, 7, 2, 3, "conv0")
    net = mx.sym.Activation(data=bn(net, "bn0"), act_type="relu", name="relu0")
    net = mx.sym.Pooling(data=net, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max", name="pooling0")
    for stage, (units, filters) in enumerate(zip((3, 4, 6, 3), (256, 512, 1024, 2048), strict=True), start=1):
        net = unit(net, filters, 1 if stage == 1 else 2, False, f"stage{stage}_unit1")
        for index in range(2, units + 1):
            net = unit(net, filters, 1, True, f"stage{stage}_unit{index}")
    # the classifier tail SageMaker's body also has (unused by SSD; it consumes the name flatten0)
    net = mx.sym.Activation(data=bn(net, "bn1"), act_type="relu", name="relu1")
    net = mx.sym.Pooling(data=net, global_pool=True, kernel=(7, 7), pool_type="avg", name="pool1")
    net = mx.sym.FullyConnected(data=mx.sym.Flatten(data=net), num_hidden=1000, name="fc1")
    return net


def tiny_backbone(data: Any) -> Any:
    """Six conv-BN-ReLU layers (outputs at strides 16 and 32): trains in minutes on two CPU cores."""
    net = mx.sym.BatchNorm(data=data, fix_gamma=True, eps=2e-5, name="bn_data")  # normalises 0-255 pixels
    for index, (filters, stride) in enumerate(((16, 2), (32, 2), (64, 2), (64, 1), (128, 2), (128, 2)), start=1):
        net = mx.sym.Convolution(
            data=net,
            num_filter=filters,
            kernel=(3, 3),
            stride=(stride, stride),
            pad=(1, 1),
            no_bias=True,
            name=f"tiny_conv{index}",
        )
        net = mx.sym.BatchNorm(data=net, fix_gamma=False, eps=2e-5, name=f"tiny_bn{index}")
        net = mx.sym.Activation(data=net, act_type="relu", name=f"tiny_relu{index}")
    return net


def feature_specs(base_network: str) -> tuple[FeatureSpec, ...]:
    return {"vgg-16": VGG16_300, "resnet-50": RESNET50, "tiny": TINY}[base_network]


def build_training_symbol(
    base_network: str,
    num_classes: int,
    nms_threshold: float = 0.45,
    nms_topk: int = 400,
    overlap_threshold: float = 0.5,
) -> Any:
    """The training graph SageMaker's algorithm trains, for ``base_network`` (plus the local ``tiny``)."""
    with mx.name.NameManager():  # fresh counters, so auto names (_plus12, flatten1, ...) match SageMaker's graphs
        data = mx.sym.Variable("data")
        body = {"vgg-16": vgg16_reduced, "resnet-50": resnet50_v2, "tiny": tiny_backbone}[base_network](data)
        return training_heads(
            *multibox_heads(body, feature_specs(base_network), num_classes),
            nms_threshold=nms_threshold,
            nms_topk=nms_topk,
            overlap_threshold=overlap_threshold,
        )


def vgg16_ssd_train(num_classes: int, nms_threshold: float = 0.45, nms_topk: int = 400) -> Any:
    return build_training_symbol("vgg-16", num_classes, nms_threshold, nms_topk)


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

    payload = {f"arg:{k}": mx.nd.array(v) for k, v in args.items()}
    payload.update({f"aux:{k}": mx.nd.array(v) for k, v in aux.items()})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.params")
        mx.nd.save(path, payload)
        with open(path, "rb") as handle:
            return handle.read()
