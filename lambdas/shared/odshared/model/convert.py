"""SageMaker Object Detection ``model.tar.gz`` -> deployable package (MXNet deploy graph, ONNX, model.json).

Called by ``odctl convert`` and by the conversion Lambda. Needs numpy and onnx only.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import logging
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odshared.core import storage
from odshared.core.errors import InputDataError
from odshared.core.log import log_event
from odshared.model import mxnet_params
from odshared.model.graph_shapes import infer_shapes
from odshared.model.mxnet_symbol import DetectionSettings, Symbol, detection_settings, to_deploy
from odshared.model.package import (
    CHECKSUMS,
    FILE_KEYS,
    INT8_ONNX_FILE,
    MODEL_JSON,
    ONNX_FILE,
    OPTIONAL_FILES,
    PARAMS_FILE,
    SYMBOL_FILE,
    ordered,
)
from odshared.model.quantize import Calibration, quantize

# the calibration frames for a model of a given input size: read from a file, or built from images (odctl)
CalibrationFor = Callable[[int], Calibration]

logger = logging.getLogger(__name__)


# the class names in id order, as our trainers record them in model.tar.gz ({"classes": [...]}, prepare-training's
# classes.json shape); SageMaker's built-in algorithm records none
CLASSES_MEMBER = "classes.json"
# the best epoch's validation mAP as our trainer records it ({"mAP": ..., "epoch": ...}); the package carries it
# (model.json "validation") so the device can say when the model is too weak to count (odedge.quality)
VALIDATION_MEMBER = "validation.json"
# where the training's class order is, named wherever it cannot be checked (SageMaker's artifacts record none)
CLASS_ORDER_SOURCES = (
    "the training's class map: classes.json in prepare-training's output folder (--classes-from PREPARED_FOLDER), "
    "the class-map of the manifest it trained on (--classes-from prepared/train.manifest), or the training job "
    "(--classes-from the JSON `aws sagemaker describe-training-job` prints)"
)


class ConversionError(InputDataError):
    """The training artifact cannot be converted; the message says which file or setting is wrong."""


@dataclass
class TrainingArtifact:
    symbol_text: str
    params_bytes: bytes
    hyperparameters: dict[str, str]
    source: str
    member_names: dict[str, str] = field(default_factory=dict)
    classes: list[str] | None = None  # recorded by the trainer (CLASSES_MEMBER), None in SageMaker's artifacts
    validation_map: float | None = None  # recorded by the trainer (VALIDATION_MEMBER), None in SageMaker's


@dataclass
class ConvertedModel:
    files: dict[str, bytes]
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)  # what the conversion could not check, said in its result


def _one(names: Sequence[str], pattern: str, source: str) -> str | None:
    matches = sorted(n for n in names if fnmatch.fnmatch(Path(n).name, pattern))
    if len(matches) > 1:
        raise ConversionError(f"{source}: several files match {pattern}: {matches}")
    return matches[0] if matches else None


def read_artifact(path: str | Path, source: str | None = None) -> TrainingArtifact:
    """Open SageMaker's ``model.tar.gz``; file names are globbed (``*-symbol.json``, ``*.params``)."""
    source = source or str(path)
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        why = "a damaged gzip stream" if gzipped else "not gzip data"
        raise ConversionError(
            f"{source}: not a model.tar.gz ({why}): give the model.tar.gz the training job wrote"
        ) from exc
    with archive:
        try:
            names = [m.name for m in archive.getmembers() if m.isfile()]
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ConversionError(f"{source}: the archive is truncated or corrupt ({exc})") from exc
        wanted = {"symbol": "*-symbol.json", "params": "*.params", "hyperparams": "hyperparams.json"}
        matched = {key: _one(names, pattern, source) for key, pattern in wanted.items()}
        missing = [wanted[key] for key, name in matched.items() if name is None]
        found = {key: name for key, name in matched.items() if name is not None}
        if missing:
            raise ConversionError(f"{source}: the archive lacks {', '.join(missing)} (it holds {sorted(names)})")

        def read(name: str) -> bytes:
            try:
                handle = archive.extractfile(name)
                assert handle is not None
                return handle.read()
            except (tarfile.TarError, EOFError, OSError, AssertionError) as exc:
                raise ConversionError(f"{source}: cannot read {name} from the archive ({exc})") from exc

        symbol_text = read(found["symbol"]).decode("utf-8")
        params_bytes = read(found["params"])
        recorded = _recorded_classes(read(CLASSES_MEMBER), source) if CLASSES_MEMBER in names else None
        validation = _recorded_map(read(VALIDATION_MEMBER), source) if VALIDATION_MEMBER in names else None
        try:
            hyper = json.loads(read(found["hyperparams"]))
        except json.JSONDecodeError as exc:
            raise ConversionError(f"{source}: hyperparams.json is not valid JSON ({exc.msg})") from exc
    if not isinstance(hyper, dict):
        raise ConversionError(f"{source}: hyperparams.json must hold an object")
    return TrainingArtifact(
        symbol_text,
        params_bytes,
        {k: str(v) for k, v in hyper.items()},
        source,
        {k: v for k, v in found.items() if v},
        recorded,
        validation,
    )


def _recorded_map(data: bytes, source: str) -> float:
    try:
        value = json.loads(data).get("mAP")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{source}!{VALIDATION_MEMBER}: not a JSON object with an mAP ({exc})") from exc
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConversionError(f"{source}!{VALIDATION_MEMBER}: mAP must be a number in [0, 1] (got {value!r})")
    return float(value)


def _recorded_classes(data: bytes, source: str) -> list[str]:
    try:
        classes = json.loads(data).get("classes")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{source}!{CLASSES_MEMBER}: not a JSON object with a classes list ({exc})") from exc
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise ConversionError(f"{source}!{CLASSES_MEMBER}: classes must be a list of names in class-id order")
    return classes


def class_names(artifact: TrainingArtifact, given: Sequence[str] | None) -> list[str]:
    """The names in class-id order: those the trainer recorded, which given ones must repeat exactly (a list in
    another order would swap the labels); a SageMaker artifact records none and needs them given."""
    recorded = artifact.classes
    if given and recorded and list(given) != recorded:
        raise ConversionError(
            f"the classes given ({', '.join(given)}) disagree with the ones {artifact.source} was trained on, in "
            f"class-id order: {', '.join(recorded)}; leave --classes out, or give them in that order"
        )
    if given or recorded:
        return list(given or recorded or [])
    raise ConversionError(
        f"{artifact.source} names no classes (SageMaker's artifacts do not): pass --classes NAME,NAME,... in "
        "class-id order, or --classes-from the classes.json prepare-training wrote beside the training manifest"
    )


def unchecked_order_warnings(artifact: TrainingArtifact, names: Sequence[str], classes_from: str | None) -> list[str]:
    """A SageMaker artifact records no class names, so a list given in another order than training used converts
    without error into a package that labels every box wrongly (evaluate then shows a low mAP and no reason). Said
    loudly, with where the right order is; read from the training's own class map (``classes_from``) it is only
    noted."""
    if artifact.classes is not None:
        return []
    if classes_from:
        log_event(logger, "convert.classes_from", source=artifact.source, classes=list(names), read_from=classes_from)
        return []
    text = (
        f"the class order ({', '.join(names)}) comes from --classes and cannot be checked: {artifact.source} records "
        "no class names (SageMaker's artifacts do not), and a list in another order than training used labels every "
        f"box as another class; the right order is {CLASS_ORDER_SOURCES}"
    )
    log_event(
        logger,
        "convert.class_order_unchecked",
        level=logging.WARNING,
        source=artifact.source,
        classes=list(names),
        detail=text,
    )
    return [text]


def _int_hyper(hyper: Mapping[str, str], key: str, default: int | None, source: str) -> int:
    value = hyper.get(key)
    if value is None:
        if default is None:
            raise ConversionError(f"{source}: hyperparams.json lacks {key}")
        return default
    try:
        return int(float(value))
    except ValueError as exc:
        raise ConversionError(f"{source}: hyperparams.json {key}={value!r} is not a number") from exc


def convert_artifact(
    artifact: TrainingArtifact,
    classes: Sequence[str] | None = None,
    calibration: CalibrationFor | None = None,
    classes_from: str | None = None,
    **overrides: Any,
) -> ConvertedModel:
    """Build the package in memory; ``overrides`` set nms_threshold, force_suppress, nms_topk or threshold;
    with ``calibration`` frames, the INT8 model too; ``classes_from`` names the file ``classes`` were read from."""
    source = artifact.source
    params_name = f"{source}!{artifact.member_names.get('params', 'params')}"
    params = mxnet_params.loads(artifact.params_bytes, params_name)
    args, aux = mxnet_params.split_checkpoint(params)
    train = Symbol.loads(artifact.symbol_text, f"{source}!{artifact.member_names.get('symbol', 'symbol')}")
    settings = detection_settings(train, **overrides)
    deploy = to_deploy(train, settings)
    hyper = artifact.hyperparameters
    image_size = _int_hyper(hyper, "image_shape", 300, source)
    values = {**args, **aux}
    shapes = infer_shapes(deploy, (1, 3, image_size, image_size), {k: v.shape for k, v in values.items()})
    names = _checked_names(artifact, classes, shapes[deploy.index("multibox_cls_pred")][1] - 1)
    warnings = unchecked_order_warnings(artifact, names, classes_from)
    deploy_params, pruned = _deploy_params(deploy, params, values, artifact.params_bytes, params_name)
    anchors = shapes[deploy.index("multibox_anchors")][1]
    detection = {**settings.__dict__, "variances": list(settings.variances)}
    metadata = {
        "num_classes": len(names),
        "anchors": anchors,
        "detection": json.dumps(detection),
        "base_network": hyper.get("base_network", ""),
    }
    from odshared.model.onnx import export_onnx

    onnx_bytes = export_onnx(deploy, values, image_size, names, metadata)
    files = {SYMBOL_FILE: deploy.dumps().encode("utf-8"), PARAMS_FILE: deploy_params, ONNX_FILE: onnx_bytes}
    frames = _calibration_frames(calibration, image_size)
    if frames is not None:
        files[INT8_ONNX_FILE] = quantize(onnx_bytes, frames)
    manifest = model_manifest(names, image_size, anchors, settings, hyper, files)
    if artifact.validation_map is not None:
        manifest["validation"] = {"mAP": round(artifact.validation_map, 4), "source": "training"}
    if frames is not None:
        manifest["int8"] = {"format": "QDQ", "quantized": ["Conv"], "calibration": frames.describe()}
    files[MODEL_JSON] = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    files[CHECKSUMS] = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items()).encode()
    log_event(
        logger,
        "convert.done",
        source=source,
        classes=names,
        image_size=image_size,
        anchors=anchors,
        pruned_params=pruned,
        onnx_bytes=len(onnx_bytes),
    )
    return ConvertedModel(files, manifest, warnings)


def _checked_names(artifact: TrainingArtifact, given: Sequence[str] | None, graph_classes: int) -> list[str]:
    """The class names, as many as the class head predicts (plus background) and hyperparams.json declares."""
    declared = _int_hyper(artifact.hyperparameters, "num_classes", graph_classes, artifact.source)
    if declared != graph_classes:
        raise ConversionError(
            f"{artifact.source}: hyperparams.json says num_classes={declared} but the class head "
            f"(multibox_cls_pred) predicts {graph_classes} classes plus background"
        )
    names = class_names(artifact, given)
    if len(names) != graph_classes:
        raise ConversionError(f"{len(names)} class names given ({names}) but the model has {graph_classes} classes")
    return names


def _deploy_params(
    deploy: Symbol, params: Mapping[str, Any], values: Mapping[str, Any], original: bytes, params_name: str
) -> tuple[bytes, int]:
    """The deploy graph's parameters (those the training heads alone used pruned) and how many were pruned; MXNet's
    own bytes, unchanged, where nothing is pruned."""
    needed = [name for name in deploy.variables() if name != "data"]
    absent = [name for name in needed if name not in values]
    if absent:
        raise ConversionError(
            f"{params_name}: lacks parameters the graph uses: {absent[:5]}{' ...' if len(absent) > 5 else ''}"
        )
    aux_names = deploy.aux_names()
    kept = {f"{'aux' if name in aux_names else 'arg'}:{name}": values[name] for name in needed}
    prefixed_original = [k for k in params if k.split(":", 1)[-1] in set(needed)]
    if len(prefixed_original) == len(params) and set(prefixed_original) == set(kept):
        return original, 0
    return mxnet_params.dumps({k: params[k] for k in params if k in kept}), len(params) - len(kept)


def _calibration_frames(calibration: CalibrationFor | None, image_size: int) -> Calibration | None:
    """The INT8 calibration frames for this input size, refused when built for another."""
    frames = calibration(image_size) if calibration is not None else None
    if frames is not None and frames.frames.shape[1:] != (3, image_size, image_size):
        raise ConversionError(
            f"{frames.source}: calibration frames are {list(frames.frames.shape[1:])}, the model takes "
            f"[3, {image_size}, {image_size}]"
        )
    return frames


def model_manifest(
    classes: Sequence[str],
    image_size: int,
    anchors: int,
    settings: DetectionSettings,
    hyper: Mapping[str, str],
    files: Mapping[str, bytes],
) -> dict[str, Any]:
    """What the device reads to run the model: no timestamps, so converting twice gives the same bytes."""
    return {
        "format_version": 1,
        "classes": list(classes),
        "num_classes": len(classes),
        "input": {
            "name": "data",
            "shape": [1, 3, image_size, image_size],
            "layout": "NCHW",
            "color": "RGB",
            "range": [0, 255],
            "mean": [0.0, 0.0, 0.0],
            "scale": [1.0, 1.0, 1.0],
            "resize": "stretch",
        },
        "output": {
            "name": "detections",
            "shape": [1, anchors, 6],
            "row": ["class_id", "score", "xmin", "ymin", "xmax", "ymax"],
            "coordinates": "normalized",
            "empty_class_id": -1,
        },
        "detection": {**settings.__dict__, "variances": list(settings.variances)},
        "files": {key: name for key, name in FILE_KEYS.items() if name in files},
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "training": {
            "base_network": hyper.get("base_network"),
            "image_shape": hyper.get("image_shape"),
            "hyperparameters": dict(sorted(hyper.items())),
        },
    }


def convert(
    model_uri: str,
    out: str,
    classes: Sequence[str] | None = None,
    skip_unchanged: bool = True,
    calibration: CalibrationFor | None = None,
    classes_from: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Convert a ``model.tar.gz`` (path or s3://) and write the package under ``out`` (folder or s3://);
    ``calibration`` gives frames for the model's input size, and the INT8 model is written too; ``classes_from``
    names where ``classes`` were read (:func:`read_class_order`), else they count as typed by hand."""
    storage.check_bucket(out)
    with tempfile.TemporaryDirectory(prefix="convert-") as tmp:
        local = Path(tmp) / "model.tar.gz"
        if storage.is_s3(model_uri):
            storage.download_file(model_uri, local)  # streamed to disk (Lambda /tmp), not held in memory
        else:
            local = Path(model_uri)
            if not local.exists():
                raise ConversionError(f"{model_uri}: no such file")
        artifact = read_artifact(local, model_uri)
        converted = convert_artifact(artifact, classes, calibration, classes_from, **overrides)
    checksums_uri = storage.join(out, CHECKSUMS)
    unchanged = (
        skip_unchanged
        and storage.exists(checksums_uri)
        and (storage.read_bytes(checksums_uri) == converted.files[CHECKSUMS])
    )
    names = ordered(list(converted.files))
    if not unchanged:
        for stale in (name for name in OPTIONAL_FILES if name not in converted.files):
            if storage.exists(storage.join(out, stale)):  # an earlier conversion's INT8 model is not this one's
                storage.delete(storage.join(out, stale))
        for name in names:  # checksums last: its presence means the package is complete
            storage.write_bytes(storage.join(out, name), converted.files[name])
    result = {
        "model_artifact": model_uri,
        "package": out,
        "unchanged": unchanged,
        "files": {name: {"uri": storage.join(out, name), "bytes": len(converted.files[name])} for name in names},
        "classes": converted.manifest["classes"],
        "image_size": converted.manifest["input"]["shape"][2],
        "warnings": converted.warnings,
    }
    log_event(logger, "convert.written", package=out, unchanged=unchanged)
    return result


# what --classes-from reads, named when it is none of them
CLASS_ORDER_FILES = (
    "prepare-training's classes.json or its output folder, a manifest the training read (its class-map), or the "
    "JSON of `aws sagemaker describe-training-job`"
)


def read_class_order(uri: str) -> list[str]:
    """The class names in the id order a training used, taken from what it read rather than typed: prepare-training's
    classes.json or its output folder, a manifest it trained on (the class-map its lines carry), or a training job's
    description (classes.json beside its train channel's manifest, else that manifest's class-map). SageMaker's
    artifact records no names, so these are the only places its order can come from."""
    folder_file = storage.join(uri, CLASSES_MEMBER)
    if storage.exists(folder_file):
        return _checked_order(_json_object(folder_file).get("classes"), folder_file)
    if not storage.is_s3(uri) and Path(uri).is_dir():
        raise ConversionError(f"{uri}: a folder without {CLASSES_MEMBER}; --classes-from takes {CLASS_ORDER_FILES}")
    try:
        whole = json.loads(storage.read_text(uri))
    except UnicodeDecodeError:
        raise ConversionError(f"{uri}: not text; --classes-from takes {CLASS_ORDER_FILES}") from None
    except json.JSONDecodeError:
        whole = None  # several JSON lines: a manifest
    if isinstance(whole, dict) and "classes" in whole:
        return _checked_order(whole["classes"], uri)
    if isinstance(whole, dict) and "InputDataConfig" in whole:
        return _training_job_order(whole, uri)
    return _manifest_order(uri)


def _json_object(uri: str) -> dict[str, Any]:
    try:
        value = json.loads(storage.read_text(uri))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{uri}: not JSON ({exc}); expected prepare-training's classes.json") from None
    if not isinstance(value, dict):
        raise ConversionError(f"{uri}: not a JSON object; expected prepare-training's classes.json")
    return value


def _checked_order(classes: Any, uri: str) -> list[str]:
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise ConversionError(f"{uri}: classes must be a list of names in class-id order (got {classes!r})")
    if len(set(classes)) != len(classes):
        raise ConversionError(f"{uri}: classes has duplicates: {classes}")
    return list(classes)


def _training_job_order(described: Mapping[str, Any], uri: str) -> list[str]:
    """A training job names no classes; its train channel is prepare-training's train.manifest (an augmented
    manifest), beside which prepare-training wrote classes.json."""
    channels = {c.get("ChannelName"): c for c in described.get("InputDataConfig") or [] if isinstance(c, dict)}
    try:
        source = channels["train"]["DataSource"]["S3DataSource"]
        train = str(source["S3Uri"])
    except (KeyError, TypeError):
        raise ConversionError(
            f"{uri}: the training job has no train channel with an S3Uri (channels: {sorted(map(str, channels))})"
        ) from None
    manifest = source.get("S3DataType") == "AugmentedManifestFile"
    beside = storage.join(storage.parent(train) if manifest else train, CLASSES_MEMBER)
    if storage.exists(beside):
        return _checked_order(_json_object(beside).get("classes"), beside)
    if not manifest:
        raise ConversionError(f"{uri}: its train channel {train} holds no {CLASSES_MEMBER}; give --classes-from it")
    return _manifest_order(train)


def _manifest_order(uri: str) -> list[str]:
    """The class-map of a manifest's lines (``<attribute>-metadata``), which must agree and number the classes
    from 0 without gaps, as the ids a training learns do."""
    names: dict[int, str] = {}
    for number, line in enumerate(storage.iter_lines(uri), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            maps = [v["class-map"] for k, v in row.items() if k.endswith("-metadata") and "class-map" in v]
            pairs = [(int(cid), str(name)) for class_map in maps for cid, name in class_map.items()]
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            raise ConversionError(
                f"{uri}: line {number} is not a manifest line; --classes-from takes {CLASS_ORDER_FILES}"
            ) from None
        for cid, name in pairs:
            if names.setdefault(cid, name) != name:
                raise ConversionError(
                    f"{uri}: line {number} maps class id {cid} to {name!r}, earlier lines to {names[cid]!r}"
                )
    if not names:
        raise ConversionError(f"{uri}: no line has a class-map; --classes-from takes {CLASS_ORDER_FILES}")
    if sorted(names) != list(range(len(names))):
        raise ConversionError(
            f"{uri}: its class-map numbers the classes {sorted(names)}, not 0 to {len(names) - 1} as a training's ids "
            "run; give the classes.json prepare-training wrote instead"
        )
    return [names[cid] for cid in range(len(names))]


def make_tarball(members: Mapping[str, bytes]) -> bytes:
    """A ``model.tar.gz`` laid out as SageMaker writes it (used by the local trainer and the tests)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
