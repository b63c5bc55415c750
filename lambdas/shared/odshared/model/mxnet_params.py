"""MXNet ``.params`` files (the NDArray list format) read and written with numpy alone.

Layout (REFERENCE.md B1): u64 magic 0x112, u64 reserved, u64 count, then per array a u32 magic
(V2 0xF993FAC9 with storage type, V1 0xF993FAC8, V3 0xF993FACA, or a legacy ndim), the shape, the
context, the dtype flag and the raw C-order data; then u64 count of names and each name (u64 length + bytes).
Files written here are byte-identical to MXNet's for dense arrays (V2, CPU context).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np

from odshared.core.errors import InputDataError

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
DTYPES = {
    0: np.float32,
    1: np.float64,
    2: np.float16,
    3: np.uint8,
    4: np.int32,
    5: np.int8,
    6: np.int64,
    7: np.bool_,
    8: np.int16,
    9: np.uint16,
    10: np.uint32,
    11: np.uint64,
}
FLAGS = {np.dtype(v): k for k, v in DTYPES.items()}


class ParamsError(InputDataError):
    """A params file is truncated, corrupt or of an unsupported kind."""


class _Reader:
    def __init__(self, data: bytes | memoryview, source: str) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    def take(self, size: int, what: str) -> memoryview:
        if size < 0 or self.pos + size > len(self.data):
            raise ParamsError(
                f"{self.source}: truncated while reading {what} at byte {self.pos} "
                f"(needs {size} bytes, {len(self.data) - self.pos} left)"
            )
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def _read_shape(reader: _Reader, wide: bool, what: str) -> tuple[int, ...]:
    (ndim,) = reader.unpack("<I", f"{what} ndim")
    if ndim > 32:
        raise ParamsError(f"{reader.source}: {what} has an implausible ndim {ndim} (corrupt file?)")
    fmt = f"<{ndim}q" if wide else f"<{ndim}I"
    return tuple(int(d) for d in reader.unpack(fmt, f"{what} dims"))


def loads(data: bytes, source: str = "<params>") -> dict[str, np.ndarray]:
    """Parse a params file; names keep MXNet's ``arg:``/``aux:`` prefixes."""
    reader = _Reader(data, source)
    magic, _reserved = reader.unpack("<QQ", "header")
    if magic != LIST_MAGIC:
        raise ParamsError(f"{source}: not an MXNet params file (magic {magic:#x}, expected {LIST_MAGIC:#x})")
    (count,) = reader.unpack("<Q", "array count")
    if count > 1_000_000:
        raise ParamsError(f"{source}: implausible array count {count} (corrupt file?)")
    arrays = []
    for index in range(count):
        what = f"array {index}"
        (head,) = reader.unpack("<I", f"{what} magic")
        if head in (V2_MAGIC, V3_MAGIC):
            (stype,) = reader.unpack("<i", f"{what} storage type")
            if stype != 0:
                raise ParamsError(f"{source}: {what} is sparse (storage type {stype}); only dense arrays are supported")
            shape = _read_shape(reader, True, what)
        elif head == V1_MAGIC:
            shape = _read_shape(reader, True, what)
        else:  # legacy: the value read is the ndim, dims are uint32
            if head > 32:
                raise ParamsError(f"{source}: {what} has an unknown format marker {head:#x} (corrupt file?)")
            shape = tuple(int(d) for d in reader.unpack(f"<{head}I", f"{what} dims"))
        if len(shape) == 0:
            arrays.append(np.zeros((0,), np.float32))
            continue
        reader.unpack("<ii", f"{what} context")
        (flag,) = reader.unpack("<i", f"{what} dtype")
        if flag not in DTYPES:
            raise ParamsError(f"{source}: {what} has an unknown dtype flag {flag}")
        dtype = np.dtype(DTYPES[flag])
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        arrays.append(np.frombuffer(reader.take(size, f"{what} data"), dtype=dtype).reshape(shape))  # type: ignore[arg-type]
    (name_count,) = reader.unpack("<Q", "name count")
    if name_count not in (0, count):
        raise ParamsError(f"{source}: {name_count} names for {count} arrays")
    names = []
    for index in range(name_count):
        (length,) = reader.unpack("<Q", f"name {index} length")
        names.append(bytes(reader.take(length, f"name {index}")).decode("utf-8"))
    if reader.pos != len(reader.data):
        raise ParamsError(f"{source}: {len(reader.data) - reader.pos} unexpected bytes after the last name")
    if not names:
        names = [str(i) for i in range(count)]
    return dict(zip(names, arrays, strict=True))


def dumps(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise named dense arrays the way MXNet 1.x saves them (V2 magic, CPU context)."""
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        if array.dtype not in FLAGS:
            raise ParamsError(f"{name}: dtype {array.dtype} cannot be stored in a params file")
        parts.append(struct.pack("<Ii", V2_MAGIC, 0))
        parts.append(struct.pack(f"<I{array.ndim}q", array.ndim, *array.shape))
        parts.append(struct.pack("<iii", 1, 0, FLAGS[array.dtype]))
        parts.append(array.tobytes())
    parts.append(struct.pack("<Q", len(arrays)))
    for name in arrays:
        encoded = name.encode("utf-8")
        parts.append(struct.pack("<Q", len(encoded)) + encoded)
    return b"".join(parts)


def split_checkpoint(params: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``arg:``/``aux:`` prefixed names -> (args, aux) dicts without prefixes."""
    args, aux = {}, {}
    for name, value in params.items():
        kind, _, bare = name.partition(":")
        if kind == "arg":
            args[bare] = value
        elif kind == "aux":
            aux[bare] = value
        else:
            args[name] = value
    return args, aux
