"""Test helpers that generate fixtures with code (never downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID


def seed_manifest_local(seed_dir: Path, name: str, tmp: Path, image_dir: Path | None = None) -> Path:
    """A copy of a seed output manifest; with ``image_dir``, source-refs point at local files there."""
    out = tmp / name
    lines = []
    for line in (seed_dir / name).read_text().splitlines():
        obj = json.loads(line)
        if image_dir is not None:
            obj["source-ref"] = str(image_dir / obj["source-ref"].rsplit("/", 1)[1])
        lines.append(json.dumps(obj))
    out.write_text("\n".join(lines) + "\n")
    return out


def put_keys_in_moto(bucket: str, keys: list[str], body: bytes = b"") -> None:
    """Fill a moto bucket through its backend: 10,000 HTTP PUTs would take minutes, the listing under test
    still goes over HTTP."""
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in keys:
        backend.put_object(bucket, key, body)


def gt_line(
    ref: str, boxes: list[dict[str, Any]], class_map: dict[str, str], width: int = 100, height: int = 80, **extra: Any
) -> str:
    """One Ground Truth output line in the real layout."""
    return json.dumps(
        {
            "source-ref": ref,
            **extra,
            "bb": {"image_size": [{"width": width, "height": height, "depth": 3}], "annotations": boxes},
            "bb-metadata": {
                "objects": [{"confidence": b.pop("confidence", 0.9)} for b in [dict(x) for x in boxes]],
                "class-map": class_map,
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": "2026-01-01T00:00:00.000000",
                "job-name": "labeling-job/test",
            },
        }
    )


def load_handler_module(folder: str):
    """A Lambda's handler.py as a module (each folder has one, so they are loaded by path, not by name)."""
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location(f"{folder}_handler", REPO / "lambdas" / folder / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
