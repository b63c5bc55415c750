"""Reproducible zip archives: fixed timestamps and sorted entries, so the same files give the same bytes
(component artifacts are immutable once published, and re-runs must recognise what they already uploaded)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path


def deterministic_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


# the device's environment per backend: the Install step picks requirements-mxnet.txt for Backend mxnet
REQUIREMENTS_FILES = ("requirements.txt", "requirements-mxnet.txt")


def _edge_code_entries(edge_dir: Path) -> list[tuple[str, bytes]]:
    package = edge_dir / "odedge"
    entries = [(f"odedge/{p.relative_to(package)}", p.read_bytes()) for p in package.rglob("*.py")]
    for name in REQUIREMENTS_FILES:
        entries.append((name, (edge_dir / name).read_bytes()))
    return sorted(entries)


def edge_code_digest(edge_dir: Path) -> str:
    """What the device code is, independent of the zlib that compressed it (16 hex digits of a SHA-256 over the
    entries' names and contents). It names the artifact's S3 folder, so changed code never overwrites a published
    artifact, and edge_component/releases.json pins it per component version."""
    digest = hashlib.sha256()
    for name, data in _edge_code_entries(edge_dir):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


def edge_code_zip(edge_dir: Path) -> bytes:
    """The inference component's artifact, odedge.zip: ``odedge/`` (the package) and its requirements files.

    Greengrass unzips it under ``{artifacts:decompressedPath}/odedge``; the CDK app and ``odctl
    package-component`` both publish these bytes.
    """
    return deterministic_zip(_edge_code_entries(edge_dir))
