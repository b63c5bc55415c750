"""The local trainer: SageMaker's built-in SSD reproduced with MXNet on the CPU, same inputs, same outputs.

Reads augmented manifests (``source-ref`` + the label attribute), validates hyperparameters with SageMaker's
rules, trains the graph SageMaker trains (for ``tiny``, a small backbone with the same heads) and writes a
``model.tar.gz`` laid out as SageMaker writes it. Logs ``validation:mAP`` per epoch in the algorithm's format.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odshared import storage
from odshared.convert import make_tarball
from odshared.hyperparameters import HyperparameterError, for_training, parsed
from odshared.log import log_event

from .evaluation import ImageResult, mean_average_precision
from .progress import bar
from .training_data import batches, load_samples, read_labeled

logger = logging.getLogger(__name__)
# The line SageMaker's built-in algorithm prints per epoch; metric definition regex: see METRIC_REGEX.
METRIC_LINE = "#quality_metric: host=algo-1, epoch={epoch}, validation mAP <score>=({value})"
METRIC_REGEX = r"#quality_metric: host=\S+, epoch=\S+, validation mAP <score>=\((\S+)\)"
INTERNAL_KEYS = {"_kvstore": "device", "_num_kv_servers": "auto", "_tuning_objective_metric": "", "kv_store": "device"}


@dataclass
class TrainResult:
    model: str
    epochs_run: int
    best_epoch: int
    best_map: float
    history: list[dict[str, float]]
    seconds: float
    hyperparameters: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def prepare_hyperparameters(
    overrides: dict[str, Any], base_network: str | None, num_train: int, num_classes: int, max_objects: int
) -> dict[str, str]:
    """SageMaker's checks on the data-decided values, plus train-local's own base networks."""
    values = {**overrides, **({"base_network": base_network} if base_network else {})}
    return for_training(values, num_train, num_classes, max_objects, local=True)


def _optimizer(hp: dict[str, Any], batches_per_epoch: int) -> tuple[str, dict[str, Any]]:
    import mxnet as mx

    params: dict[str, Any] = {"learning_rate": hp["learning_rate"], "wd": hp["weight_decay"], "rescale_grad": 1.0}
    if hp["optimizer"] == "sgd":
        params["momentum"] = hp["momentum"]
    if hp["lr_scheduler_step"]:
        steps = [max(1, int(epoch * batches_per_epoch)) for epoch in hp["lr_scheduler_step"]]
        # the scheduler carries the base rate; passing learning_rate as well makes MXNet print a warning on stdout
        params["lr_scheduler"] = mx.lr_scheduler.MultiFactorScheduler(
            step=steps, factor=hp["lr_scheduler_factor"], base_lr=params.pop("learning_rate")
        )
    return hp["optimizer"], params


def _evaluate(
    module: Any, samples: list, hp: dict[str, Any], max_objects: int, classes: list[str], rng: np.random.Generator
) -> float:
    import mxnet as mx

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


def train_local(
    train_manifest: str,
    validation_manifest: str,
    out: str,
    hyperparameters: dict[str, Any] | None = None,
    base_network: str | None = None,
    images: str | None = None,
    label_attribute: str = "bb",
    classes: list[str] | None = None,
    seed: int = 0,
    max_batches: int | None = None,
    time_budget_s: float | None = None,
) -> TrainResult:
    """Train and write ``out`` (model.tar.gz, local or s3://).

    ``max_batches`` caps batches per epoch (tests); ``time_budget_s`` stops after the epoch that exhausts it
    (the demo's budget), keeping the best epoch so far.
    """
    import mxnet as mx

    from .ssd_model import build_training_symbol

    started = time.monotonic()
    storage.check_bucket(out)
    train_items = read_labeled(train_manifest, label_attribute)
    val_items = read_labeled(validation_manifest, label_attribute)
    if not train_items:
        raise HyperparameterError(f"{train_manifest}: no training lines")
    all_items = train_items + val_items
    num_classes = 1 + max((int(b.class_id) for item in all_items for b in item.boxes), default=0)
    max_objects = max(1, max((len(item.boxes) for item in all_items), default=1))
    hyper = prepare_hyperparameters(
        dict(hyperparameters or {}), base_network, len(train_items), num_classes, max_objects
    )
    hp = parsed(hyper)
    names = classes or _class_names(train_items, hp["num_classes"])
    if hp.get("use_pretrained_model") == "1":
        log_event(
            logger,
            "train.no_pretrained_weights",
            level=logging.WARNING,
            detail="pretrained ImageNet weights cannot be downloaded here; training from scratch",
        )
    size, batch_size = hp["image_shape"], hp["mini_batch_size"]
    rng = np.random.default_rng(seed)
    mx.random.seed(seed)
    train_samples = load_samples(train_items, size, images, "load train")
    val_samples = load_samples(val_items, size, images, "load validation") if val_items else []

    symbol = build_training_symbol(
        hp["base_network"], hp["num_classes"], hp["nms_threshold"], hp["nms_topk"], hp["overlap_threshold"]
    )
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
    per_epoch = (len(train_samples) + batch_size - 1) // batch_size
    if max_batches:
        per_epoch = min(per_epoch, max_batches)
    optimizer, params = _optimizer(hp, per_epoch)
    module.init_optimizer(optimizer=optimizer, optimizer_params=params)

    history, best = [], (-1.0, 0, None)
    stale = 0
    for epoch in range(hp["epochs"]):
        losses = []
        with bar(per_epoch, f"epoch {epoch}", "batch") as pb:
            for index, (data, label, _) in enumerate(batches(train_samples, batch_size, size, max_objects, True, rng)):
                if index >= per_epoch:
                    break
                module.forward_backward(mx.io.DataBatch([mx.nd.array(data)], [mx.nd.array(label)]))
                module.update()
                outputs = module.get_outputs()
                losses.append(_losses(outputs))
                pb.update()
        score = _evaluate(module, val_samples, hp, max_objects, names, rng) if val_samples else 0.0
        ce, l1 = np.mean(losses, axis=0).tolist()
        history.append({"epoch": epoch, "cross_entropy": round(ce, 5), "smooth_l1": round(l1, 5), "mAP": score})
        log_event(
            logger,
            "train.epoch",
            epoch=epoch,
            cross_entropy=round(ce, 5),
            smooth_l1=round(l1, 5),
            metric=METRIC_LINE.format(epoch=epoch, value=f"{score:.6f}"),
        )
        # ties go to the later epoch: more training at the same validation score generalises better
        improved = best[2] is None or score >= best[0] * (1 + hp["early_stopping_tolerance"])
        if improved:
            best = (score, epoch, module.get_params())
            stale = 0
        else:
            stale += 1
        if time_budget_s is not None and time.monotonic() - started > time_budget_s:
            log_event(logger, "train.time_budget_reached", epoch=epoch, budget_s=time_budget_s)
            break
        if (
            hp["early_stopping"]
            and epoch + 1 >= hp["early_stopping_min_epochs"]
            and (stale >= hp["early_stopping_patience"])
        ):
            log_event(logger, "train.early_stop", epoch=epoch, best_epoch=best[1], best_map=best[0])
            break

    from .ssd_model import save_checkpoint_bytes

    args, aux = best[2]
    params_bytes = save_checkpoint_bytes(
        {k: v.asnumpy() for k, v in args.items()}, {k: v.asnumpy() for k, v in aux.items()}
    )
    hyper_out = {**hyper, **INTERNAL_KEYS}
    storage.write_bytes(
        out,
        make_tarball(
            {
                "model_algo_1-symbol.json": symbol.tojson().encode(),
                "model_algo_1-0000.params": params_bytes,
                "hyperparams.json": json.dumps(hyper_out).encode(),
            }
        ),
        "application/gzip",
    )
    result = TrainResult(out, len(history), best[1], best[0], history, round(time.monotonic() - started, 1), hyper)
    log_event(
        logger,
        "train.done",
        model=out,
        epochs=len(history),
        best_epoch=best[1],
        best_map=best[0],
        seconds=result.seconds,
    )
    return result


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


def load_hyperparameters(uri: str | None) -> dict[str, Any]:
    if not uri:
        return {}
    try:
        values = json.loads(storage.read_text(uri))
    except json.JSONDecodeError as exc:
        raise HyperparameterError(f"{uri}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(values, dict):
        raise HyperparameterError(f"{uri}: must hold a JSON object of name -> value")
    return values


def default_output(path: str) -> str:
    return path if path.endswith(".tar.gz") else str(Path(path) / "model.tar.gz")
