"""Files that survive a power cut: written whole or not at all.

A file is written beside its target (``NAME.part``), flushed and fsynced, renamed over the target, and the folder is
fsynced so the rename itself is on disk. A power cut at any point leaves either the old file or the new one, never
half of one; what it can leave is a ``.part`` file, which readers ignore and ``discard_partial`` removes. A write
that fails (a full disk: ENOSPC; a failing or read-only one: EIO, EROFS) removes its ``.part`` before it raises, so a
full disk is not filled further by the halves of what it could not take.
"""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from pathlib import Path

PARTIAL = ".part"


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data``: write, flush, fsync, rename, fsync the folder. Raises OSError when the disk
    refuses, with no ``.part`` left behind (the old ``target``, if any, is untouched)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + PARTIAL)
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except BaseException:
        with suppress(OSError):  # a read-only disk cannot take the unlink either; nothing more to do then
            partial.unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)


def discard_partial(folder: Path) -> list[Path]:
    """Remove what an interrupted ``write_atomic`` left in ``folder``; returns the files removed. One that cannot
    be removed (a read-only disk) is left: readers ignore ``.part`` files, so start-up never stops for it."""
    left = sorted(folder.glob(f"*{PARTIAL}")) if folder.is_dir() else []
    removed = []
    for path in left:
        with suppress(OSError):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def describe(exc: OSError) -> str:
    """``ENOSPC: No space left on device``: the errno's name first, for a person and for a filter on the logs."""
    name = errno.errorcode.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc)
    return f"{name}: {reason}" if name else reason
