"""A local file system for DuckDB that counts the bytes a query reads (fsspec; ``duckdb.register_filesystem``).

File sizes say what is stored; what a query engine bills by, and what a columnar format saves, is what it reads.
DuckDB reads through a registered fsspec file system for every path under its protocol (``counted://``), so
every byte it takes from a file passes through :meth:`CountingFile.read` here. Kept as byte ranges per file:
DuckDB reads some bytes twice (a page header's 256-byte look-ahead, a footer's length), and a reader that keeps
what it fetched (as one fetching from S3 does) needs each byte once: :meth:`CountingFileSystem.distinct`.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from fsspec.implementations.local import LocalFileOpener, LocalFileSystem


class CountingFile(LocalFileOpener):
    """A local file whose reads are recorded by its file system."""

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        start = self.f.tell()
        data: bytes = super().read(*args, **kwargs)
        self.fs.record(self.path, start, len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        start = self.f.tell()
        got: int = self.f.readinto(buffer)
        self.fs.record(self.path, start, got)
        return got


class CountingFileSystem(LocalFileSystem):
    """``counted://<absolute path>``: the local files, and the byte ranges read from each."""

    protocol = "counted"
    cachable = False  # a fresh record per instance, never fsspec's shared one

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reads: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        self._lock = threading.Lock()  # DuckDB reads from several threads

    def record(self, path: str, start: int, length: int) -> None:
        with self._lock:
            self.reads[path].append((start, start + length))

    def distinct(self) -> int:
        """The bytes read, each once: the union of the ranges read from each file."""
        count = 0
        for ranges in self.reads.values():
            reach = 0
            for start, end in sorted(ranges):
                count += max(0, end - max(start, reach))
                reach = max(reach, end)
        return count

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, **kwargs: Any) -> CountingFile:
        return CountingFile(self._strip_protocol(path), mode, fs=self, **kwargs)
