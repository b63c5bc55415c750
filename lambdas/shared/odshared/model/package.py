"""The model package: the files a conversion writes and the device loads, and the model component's zip.

One home for these names: the converter writes them, the publish step and ``odctl package-component`` zip them,
the CLI downloads them. The device reads the same names from ``model.json`` (odedge ships on its own, so it keeps
only that one name; a test holds the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from odshared.core import storage
from odshared.core.archives import deterministic_zip

SYMBOL_FILE = "deploy_model_algo_1-symbol.json"
PARAMS_FILE = "deploy_model_algo_1-0000.params"
ONNX_FILE = "model.onnx"
MODEL_JSON = "model.json"
CHECKSUMS = "SHA256SUMS"
PACKAGE_FILES = (SYMBOL_FILE, PARAMS_FILE, ONNX_FILE, MODEL_JSON, CHECKSUMS)
# the model component's artifact: Greengrass unzips it under {artifacts:decompressedPath}/model/model/
MODEL_ZIP = "model.zip"
ZIP_FOLDER = "model"


def read_package(uri: str) -> dict[str, bytes]:
    """The package's files from a folder or an s3:// prefix."""
    return {name: storage.read_bytes(storage.join(uri, name)) for name in PACKAGE_FILES}


def model_zip(files: Mapping[str, bytes]) -> bytes:
    """model.zip: the package's files under ``model/``, reproducible byte for byte."""
    return deterministic_zip((f"{ZIP_FOLDER}/{name}", data) for name, data in files.items())


def download_package(uri: str, folder: Path) -> Path:
    """A package under an s3:// prefix copied to ``folder`` (the device code loads local folders)."""
    for name in PACKAGE_FILES:
        storage.download_file(storage.join(uri, name), folder / name)
    return folder
