"""The MXNet training loop of ``odctl train-local``: runs in the MXNet environment (odctl.mxnet_env starts it).

The operator's side has already checked the manifests and completed the hyperparameters (``odctl.train_local``);
this module trains the graph SageMaker trains and writes a ``model.tar.gz`` laid out as SageMaker writes it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import mxnet as mx
import numpy as np

from odctl.progress import bar
from odctl.train_local import INTERNAL_KEYS, METRIC_LINE, TrainRequest
from odctl.training_data import batches, load_samples, read_training_images
from odshared.core import storage
from odshared.core.log import log_event
from odshared.data.hyperparameters import parsed
from odshared.model.convert import CLASSES_MEMBER, VALIDATION_MEMBER, make_tarball
from odshared.model.evaluation import ImageResult, mean_average_precision

from .ssd_model import build_training_symbol, save_checkpoint_bytes

logger = logging.getLogger(__name__)


def _optimizer(hp: dict[str, Any], batches_per_epoch: int) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"learning_rate": hp["learning_rate"], "wd": hp["weight_decay"], "rescale_grad": 1.0}
    if hp["optimizer"] == "sgd":
        params["momentum"] = hp["momentum"]
    if hp["lr_scheduler_step"]:
        steps = [max(1, int(epoch * batches_per_epoch)) for epoch in hp["lr_scheduler_step"]]
        # the optimizer is given the scheduler's base rate too: Adam's own default (0.001) would otherwise replace
        # the scheduler's rate, and MXNet says so on stdout
        params["lr_scheduler"] = mx.lr_scheduler.MultiFactorScheduler(
            step=steps, factor=hp["lr_scheduler_factor"], base_lr=params["learning_rate"]
        )
    return hp["optimizer"], params


def _evaluate(
    module: Any, samples: list, hp: dict[str, Any], max_objects: int, classes: list[str], rng: np.random.Generator
) -> float:
    size, batch_size = hp["image_shape"], hp["mini_batch_size"]
    results = []
    for data, label, real in batches(samples, batch_size, size, max_objects, False, rng):
        module.forward(mx.io.DataBatch([mx.nd.array(data)], [mx.nd.array(label)]), is_train=False)
        det = module.get_outputs()[3].asnumpy()
        for row in range(real):
            rows = det[row][det[row][:, 0] >= 0]
            gt = label[row][label[row][:, 0] >= 0]
            results.append(
                ImageResult(gt[:, 1:], gt[:, 0].astype(int), rows[:, 2:6], rows[:, 0].astype(int), rows[:, 1])
            )
    return mean_average_precision(results, classes, hp["overlap_threshold"])["mAP"]


def train(request: TrainRequest) -> dict[str, Any]:
    """Train and write ``request.out``; the result is ``odctl.train_local.TrainResult``'s fields."""
    started = time.monotonic()
    hp = parsed(request.hyperparameters)
    train_items = read_training_images(request.train_manifest, request.label_attribute)
    val_items = read_training_images(request.validation_manifest, request.label_attribute)
    names = request.classes or _class_names(train_items, hp["num_classes"])
    rng = np.random.default_rng(request.seed)
    mx.random.seed(request.seed)
    size = hp["image_shape"]
    train_samples = load_samples(train_items, size, request.images, "load train")
    val_samples = load_samples(val_items, size, request.images, "load validation") if val_items else []
    symbol = build_training_symbol(
        hp["base_network"], hp["num_classes"], hp["nms_threshold"], hp["nms_topk"], hp["overlap_threshold"]
    )
    module = _bound_module(symbol, hp, request.max_objects)
    per_epoch = -(-len(train_samples) // hp["mini_batch_size"])
    if request.max_batches:
        per_epoch = min(per_epoch, request.max_batches)
    optimizer, params = _optimizer(hp, per_epoch)
    module.init_optimizer(optimizer=optimizer, optimizer_params=params)
    fit = _Fit(module, hp, request, rng, names, started)
    history, (best_map, best_epoch, best_params) = fit.run(train_samples, val_samples, per_epoch)
    _write_artifact(
        request.out,
        symbol,
        best_params,
        {**request.hyperparameters, **INTERNAL_KEYS},
        names,
        (best_map, best_epoch) if val_samples else None,
    )
    seconds = round(time.monotonic() - started, 1)
    log_event(
        logger,
        "train.done",
        model=request.out,
        epochs=len(history),
        best_epoch=best_epoch,
        best_map=best_map,
        seconds=seconds,
    )
    return {
        "model": request.out,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_map": best_map,
        "history": history,
        "seconds": seconds,
        "hyperparameters": request.hyperparameters,
    }


def _bound_module(symbol: Any, hp: dict[str, Any], max_objects: int) -> Any:
    size, batch_size = hp["image_shape"], hp["mini_batch_size"]
    module = mx.mod.Module(
        symbol,
        data_names=["data"],
        label_names=["label"],
        context=mx.cpu(),
        fixed_param_names=_frozen(symbol, hp["freeze_layer_pattern"]),
    )
    module.bind(
        data_shapes=[("data", (batch_size, 3, size, size))], label_shapes=[("label", (batch_size, max_objects, 5))]
    )
    module.init_params(initializer=mx.init.Xavier(rnd_type="gaussian", factor_type="out", magnitude=2))
    return module


class _Fit:
    """The epoch loop: train, score on validation, keep the best epoch, stop early or on the time budget."""

    def __init__(
        self, module: Any, hp: dict[str, Any], request: TrainRequest, rng: Any, names: list[str], started: float
    ) -> None:
        self.module, self.hp, self.request, self.rng, self.names, self.started = (
            module,
            hp,
            request,
            rng,
            names,
            started,
        )

    def run(self, train_samples: list, val_samples: list, per_epoch: int) -> tuple[list[dict[str, float]], tuple]:
        hp = self.hp
        history: list[dict[str, float]] = []
        best: tuple = (-1.0, 0, None)
        stale = 0
        for epoch in range(hp["epochs"]):
            ce, l1 = self._epoch(epoch, train_samples, per_epoch)
            score = (
                _evaluate(self.module, val_samples, hp, self.request.max_objects, self.names, self.rng)
                if val_samples
                else 0.0
            )
            history.append({"epoch": epoch, "cross_entropy": round(ce, 5), "smooth_l1": round(l1, 5), "mAP": score})
            log_event(
                logger,
                "train.epoch",  # the progress line: epoch N of M, the time so far
                epoch=epoch,
                of=hp["epochs"],
                elapsed_s=round(time.monotonic() - self.started, 1),
                cross_entropy=round(ce, 5),
                smooth_l1=round(l1, 5),
                metric=METRIC_LINE.format(epoch=epoch, value=f"{score:.6f}"),
            )
            # ties go to the later epoch: more training at the same validation score generalises better
            if best[2] is None or score >= best[0] * (1 + hp["early_stopping_tolerance"]):
                best, stale = (score, epoch, self.module.get_params()), 0
            else:
                stale += 1
            if self._should_stop(epoch, stale, best):
                break
        return history, best

    def _epoch(self, epoch: int, samples: list, per_epoch: int) -> tuple[float, float]:
        hp, module = self.hp, self.module
        losses = []
        size, batch_size = hp["image_shape"], hp["mini_batch_size"]
        with bar(per_epoch, f"epoch {epoch}", "batch") as pb:
            for index, (data, label, _) in enumerate(
                batches(samples, batch_size, size, self.request.max_objects, True, self.rng)
            ):
                if index >= per_epoch:
                    break
                module.forward_backward(mx.io.DataBatch([mx.nd.array(data)], [mx.nd.array(label)]))
                module.update()
                losses.append(_losses(module.get_outputs()))
                pb.update()
        ce, l1 = np.mean(losses, axis=0).tolist()
        return ce, l1

    def _should_stop(self, epoch: int, stale: int, best: tuple) -> bool:
        hp, budget = self.hp, self.request.time_budget_s
        if budget is not None and time.monotonic() - self.started > budget:
            log_event(logger, "train.time_budget_reached", epoch=epoch, budget_s=budget)
            return True
        if (
            hp["early_stopping"]
            and epoch + 1 >= hp["early_stopping_min_epochs"]
            and stale >= hp["early_stopping_patience"]
        ):
            log_event(logger, "train.early_stop", epoch=epoch, best_epoch=best[1], best_map=best[0])
            return True
        return False


def _write_artifact(
    out: str,
    symbol: Any,
    params: tuple,
    hyperparameters: dict[str, str],
    classes: list[str],
    best: tuple[float, int] | None,
) -> None:
    """SageMaker's layout, plus the class names in id order (CLASSES_MEMBER): the model knows what it detects; and
    the best epoch's validation mAP (VALIDATION_MEMBER, when there was a validation set): the device says when the
    model is too weak to count."""
    args, aux = params
    params_bytes = save_checkpoint_bytes(
        {k: v.asnumpy() for k, v in args.items()}, {k: v.asnumpy() for k, v in aux.items()}
    )
    storage.write_bytes(
        out,
        make_tarball(
            {
                "model_algo_1-symbol.json": symbol.tojson().encode(),
                "model_algo_1-0000.params": params_bytes,
                "hyperparams.json": json.dumps(hyperparameters).encode(),
                CLASSES_MEMBER: json.dumps({"classes": list(classes)}).encode(),
                **({VALIDATION_MEMBER: json.dumps({"mAP": best[0], "epoch": best[1]}).encode()} if best else {}),
            }
        ),
        "application/gzip",
    )


def _losses(outputs: list) -> tuple[float, float]:
    """Cross-entropy of the class head on its targets (ignoring -1) and the summed smooth L1 loss."""
    prob = outputs[0].asnumpy()  # (B, C+1, A)
    target = outputs[2].asnumpy().astype(int)  # (B, A)
    valid = target >= 0
    picked = np.take_along_axis(prob, np.clip(target, 0, None)[:, None, :], axis=1)[:, 0, :]
    ce = float(-np.log(np.clip(picked[valid], 1e-12, None)).mean()) if valid.any() else 0.0
    loc = float(outputs[1].asnumpy().sum() / max(1, prob.shape[0]))
    return ce, loc


def _frozen(symbol: Any, pattern: str) -> list[str]:
    if not pattern:
        return []
    regex = re.compile(pattern)
    return [name for name in symbol.list_arguments() if name not in ("data", "label") and regex.match(name)]


def _class_names(items: list, count: int) -> list[str]:
    names = [f"class_{i}" for i in range(count)]
    for item in items:
        for box in item.boxes:
            if box.class_name and box.class_id < count:
                names[box.class_id] = box.class_name
    return names
