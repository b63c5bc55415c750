"""The converted model package on disk: model.json, model.onnx and the MXNet deploy graph.

Read once at start; a package that is missing files or whose files do not match their checksums is
refused with a clear error before the loop starts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the package's manifest (odshared.model.package.MODEL_JSON; the device ships without odshared)
MODEL_JSON = "model.json"


class ModelError(RuntimeError):
    """The model package is missing, incomplete or does not fit the configuration."""


@dataclass(frozen=True)
class ModelPackage:
    root: Path
    classes: tuple[str, ...]
    input_size: int
    anchors: int
    detection: dict[str, Any]
    files: dict[str, str]
    version: str
    int8_withheld: str = ""  # why the promotion gate kept INT8 from being the default (it lost too much mAP)
    # the mAP the weak-model check reads (odedge.quality): model.json ``held_out.map`` (odctl evaluate, on frames the
    # training never saw) first, else ``validation.mAP`` (the conversion from local training, the workflow's scoring)
    recorded_map: float | None = None
    recorded_map_source: str = "validation"  # which of the two it is: held-out or validation

    @classmethod
    def load(cls, root: str | Path, verify: bool = True) -> ModelPackage:
        """Read ``model.json`` under ``root`` (or the single folder below it, as Greengrass unzips archives)."""
        base = Path(root)
        if base.name.endswith(".tar.gz") or (base.is_file() and base.suffix in (".gz", ".tar", ".zip")):
            raise ModelError(f"{base}: a training artifact, not a converted model; convert it first (odctl convert)")
        if not base.exists():
            raise ModelError(f"{base}: no such model folder")
        if not (base / MODEL_JSON).exists():
            children = [p for p in base.iterdir() if (p / MODEL_JSON).exists()] if base.is_dir() else []
            if len(children) != 1:
                raise ModelError(f"{base}: no model.json here (is the model component deployed?)")
            base = children[0]
        try:
            manifest = json.loads((base / MODEL_JSON).read_text())
            size = int(manifest["input"]["shape"][2])
            anchors = int(manifest["output"]["shape"][1])
            classes = tuple(manifest["classes"])
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{base / 'model.json'}: not a model package description ({exc})") from exc
        files = dict(manifest.get("files", {}))
        for key, name in files.items():
            if not (base / name).exists():
                raise ModelError(f"{base}: model.json lists {key} file {name} but it is missing")
        sums = manifest.get("sha256", {})
        if verify:
            for name, expected in sums.items():
                path = base / name
                if path.exists() and _sha256(path) != expected:
                    raise ModelError(f"{path}: checksum mismatch (corrupt or partial download)")
        version = manifest.get("version") or sums.get(files.get("onnx", ""), "")[:12] or "unknown"
        withheld = str((manifest.get("int8") or {}).get("withheld") or "")
        figures = (
            ("held-out", (manifest.get("held_out") or {}).get("map")),
            ("validation", (manifest.get("validation") or {}).get("mAP")),
        )
        source, recorded = next(
            ((s, float(f)) for s, f in figures if isinstance(f, int | float) and not isinstance(f, bool)),
            ("validation", None),
        )
        detection = dict(manifest.get("detection", {}))
        return cls(base, classes, size, anchors, detection, files, version, withheld, recorded, source)

    def path(self, key: str) -> Path:
        if key not in self.files:
            raise ModelError(f"{self.root}: the package has no {key} file")
        return self.root / self.files[key]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
