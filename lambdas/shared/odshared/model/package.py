"""The model package: the files a conversion writes and the device loads, and the model component's zip.

One home for these names: the converter writes them, the publish step and ``odctl package-component`` zip them,
the CLI downloads them. The device reads the same names from ``model.json`` (odedge ships on its own, so it keeps
only that one name; a test holds the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odshared.core import storage
from odshared.core.archives import deterministic_zip

SYMBOL_FILE = "deploy_model_algo_1-symbol.json"
PARAMS_FILE = "deploy_model_algo_1-0000.params"
ONNX_FILE = "model.onnx"
INT8_ONNX_FILE = "model.int8.onnx"  # written when the conversion is given calibration frames
MODEL_JSON = "model.json"
CHECKSUMS = "SHA256SUMS"
PACKAGE_FILES = (SYMBOL_FILE, PARAMS_FILE, ONNX_FILE, MODEL_JSON, CHECKSUMS)
OPTIONAL_FILES = (INT8_ONNX_FILE,)
# model.json's "files" keys, as the device's runtimes ask for them
FILE_KEYS = {"onnx": ONNX_FILE, "onnx_int8": INT8_ONNX_FILE, "mxnet_symbol": SYMBOL_FILE, "mxnet_params": PARAMS_FILE}
# model.json's key of the mAP measured on held-out frames (odctl evaluate); odedge.model reads it by this name
HELD_OUT = "held_out"
# the model component's artifact: Greengrass unzips it under {artifacts:decompressedPath}/model/model/
MODEL_ZIP = "model.zip"
ZIP_FOLDER = "model"


def ordered(names: set[str] | list[str]) -> list[str]:
    """The order files are written in: SHA256SUMS last, since its presence means the package is complete."""
    return [name for name in (*PACKAGE_FILES[:-1], *OPTIONAL_FILES, CHECKSUMS) if name in names]


def package_files(checksums: bytes) -> list[str]:
    """The files a package holds, from its SHA256SUMS (an optional file is there only if it is listed)."""
    listed = {line.split(maxsplit=1)[1].strip() for line in checksums.decode().splitlines() if line.strip()}
    return ordered(listed | set(PACKAGE_FILES))


def read_package(uri: str) -> dict[str, bytes]:
    """The package's files from a folder or an s3:// prefix."""
    checksums = storage.read_bytes(storage.join(uri, CHECKSUMS))
    return {name: storage.read_bytes(storage.join(uri, name)) for name in package_files(checksums)}


def model_zip(files: Mapping[str, bytes]) -> bytes:
    """model.zip: the package's files under ``model/``, reproducible byte for byte."""
    return deterministic_zip((f"{ZIP_FOLDER}/{name}", data) for name, data in files.items())


def download_package(uri: str, folder: Path) -> Path:
    """A package under an s3:// prefix copied to ``folder`` (the device code loads local folders)."""
    checksums = storage.read_bytes(storage.join(uri, CHECKSUMS))
    for name in package_files(checksums):
        storage.download_file(storage.join(uri, name), folder / name)
    return folder


def update_manifest(uri: str, changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into the package's model.json (one level deep) after the conversion wrote it, as the
    scoring step does; SHA256SUMS rewritten last, as the converter writes it."""
    import hashlib
    import json

    checksums = storage.read_bytes(storage.join(uri, CHECKSUMS)).decode()
    manifest = json.loads(storage.read_bytes(storage.join(uri, MODEL_JSON)))
    for key, value in changes.items():
        manifest[key] = {**manifest.get(key, {}), **value} if isinstance(value, Mapping) else value
    data = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    summed = f"{hashlib.sha256(data).hexdigest()}  {MODEL_JSON}"
    lines = [
        summed if line.split(maxsplit=1)[-1].strip() == MODEL_JSON else line
        for line in checksums.splitlines()
        if line.strip()
    ]
    storage.write_bytes(storage.join(uri, MODEL_JSON), data, "application/json")
    storage.write_bytes(storage.join(uri, CHECKSUMS), ("\n".join(lines) + "\n").encode())


def record_held_out(uri: str, figure: Mapping[str, Any]) -> None:
    """Keep in the package's model.json (``held_out``) the mAP ``odctl evaluate`` measured on labeled frames: map,
    precision, images, source, measured_at. The device's weak-model check reads it before the training's own
    validation score, which is measured on frames like the training's and flatters the model."""
    update_manifest(uri, {HELD_OUT: dict(figure)})
