"""Files that survive a power cut: written whole or not at all.

A file is written beside its target (``NAME.part``), flushed and fsynced, renamed over the target, and the folder is
fsynced so the rename itself is on disk. A power cut at any point leaves either the old file or the new one, never
half of one; what it can leave is a ``.part`` file, which readers ignore and ``discard_partial`` removes.
"""

from __future__ import annotations

import os
from pathlib import Path

PARTIAL = ".part"


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data``: write, flush, fsync, rename, fsync the folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + PARTIAL)
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    fsync_folder(target.parent)


def discard_partial(folder: Path) -> list[Path]:
    """Remove what an interrupted ``write_atomic`` left in ``folder``; returns the files removed."""
    left = sorted(folder.glob(f"*{PARTIAL}")) if folder.is_dir() else []
    for path in left:
        path.unlink(missing_ok=True)
    return left
