"""safetensors reader: one tensor, memory-mapped where its header says it lies.

A safetensors file is an 8-byte little-endian header length, a JSON header giving each
tensor's ``dtype``, ``shape`` and ``data_offsets`` (from the end of the header), then the
raw little-endian C-order data. Nothing is loaded: the chosen tensor is mapped (or, from
stdin or a URL, streamed) as an NPY array is, by the NPY reader's own functions. The
``safetensors`` package is not needed to read.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Generator
from typing import Any, BinaryIO

import numpy as np

from ..core.cosine import check_dtype
from ..errors import DataError, InputUsageError
from .base import Block, CountedBlocks, ReadOptions, Source
from .formats import listing
from .npy import array_source, mapped_source, stream_source
from .streams import file_size, is_regular_file, open_binary, read_exactly

#: A header longer than this is not a safetensors file (the format itself caps it at 100 MB).
_MAX_HEADER = 100 * 1024 * 1024

#: safetensors dtype -> numpy dtype (little-endian). BF16 is widened to float32 exactly.
_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}


def open_safetensors(path: str, options: ReadOptions) -> Source:
    """Open the tensor ``--key`` names (or the only one) of a ``.safetensors`` file."""
    stream = open_binary(path, options.storage_options)
    try:
        header, data_start = _read_header(stream, path)
        key, entry = _choose(header, options.key, path)
        shape, dtype, begin, end = _layout(entry, key, path)
        size = file_size(path)
        if size is not None and data_start + end > size:
            raise DataError(
                f"truncated: tensor {key!r} ends at byte {data_start + end}, the file has {size}",
                path=path,
                hint="was it fully written?",
            )
        if is_regular_file(path):
            stream.close()
            if math.prod(shape) == 0:
                source = array_source(path, "safetensors", np.empty(shape, dtype), options)
            else:
                source = mapped_source(path, "safetensors", data_start + begin, shape, dtype, options)
        else:
            _skip(stream, begin, path)
            source = stream_source(path, "safetensors", stream, shape, False, dtype, options)
    except BaseException:
        if path != "-":
            stream.close()
        raise
    if entry["dtype"] == "BF16":
        source = _widened(source)
    return source


def tensor_names(path: str) -> list[str]:
    """The names of the tensors of a local safetensors file, in file order (no data read)."""
    with open(path, "rb") as stream:
        header, _ = _read_header(stream, path)
    return list(header)


def _read_header(stream: BinaryIO, path: str) -> tuple[dict[str, Any], int]:
    """The tensors' header entries (``__metadata__`` left out) and where the data starts."""
    start = read_exactly(stream, 8)
    length = int.from_bytes(start, "little") if len(start) == 8 else -1
    if not 0 < length <= _MAX_HEADER:
        raise DataError("not a valid safetensors file: no header length", path=path, hint="was it fully written?")
    text = read_exactly(stream, length)
    if len(text) < length:
        raise DataError("truncated: the header ends early", path=path, hint="was it fully written?")
    try:
        header = json.loads(text)
    except ValueError as exc:
        raise DataError(f"not a valid safetensors header: {exc}", path=path) from None
    if not isinstance(header, dict):
        raise DataError("not a valid safetensors header: not a JSON object", path=path)
    header.pop("__metadata__", None)
    return header, 8 + length


def _choose(header: dict[str, Any], key: str | None, path: str) -> tuple[str, dict[str, Any]]:
    names = sorted(header)
    if key is None:
        if len(names) != 1:
            raise InputUsageError(
                f"the file holds {len(names)} tensors ({listing(names)})", path=path, hint="choose one with --key NAME"
            )
        key = names[0]
    elif key not in header:
        raise InputUsageError(f"no tensor named {key!r}", path=path, hint=f"tensors: {listing(names)}")
    entry = header[key]
    if not isinstance(entry, dict):
        raise DataError(f"tensor {key!r} has no valid header entry", path=path)
    return key, entry


def _layout(entry: dict[str, Any], key: str, path: str) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """(shape, numpy dtype, first byte, end byte) of a tensor, checked against each other."""
    try:
        code = str(entry["dtype"])
        shape = tuple(int(n) for n in entry["shape"])
        begin, end = (int(n) for n in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"tensor {key!r} has no valid dtype, shape and data_offsets", path=path) from None
    if code not in _DTYPES:
        raise DataError(
            f"tensor {key!r} has dtype {code}, not one cosloss reads", path=path, hint="save it as float32 or float64"
        )
    dtype = np.dtype(_DTYPES[code])
    try:
        check_dtype(dtype, f"tensor {key!r}")
    except DataError as exc:
        raise DataError(exc.message, path=path) from None
    if not shape:
        raise DataError(f"tensor {key!r} is a single number (0-d); it needs at least one vector", path=path)
    if min(shape) < 0 or begin < 0 or end - begin != math.prod(shape) * dtype.itemsize:
        raise DataError(f"tensor {key!r}: its data_offsets do not match its shape and dtype", path=path)
    return shape, dtype, begin, end


def _skip(stream: BinaryIO, count: int, path: str) -> None:
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            raise DataError("truncated: the data ends early", path=path, hint="was it fully written?")
        count -= len(chunk)


def _widened(source: Source) -> Source:
    """A bfloat16 tensor's blocks (read as uint16) as float32: its 16 bits are a float32's top half."""

    def blocks() -> Generator[Block, None, None]:
        try:
            for block in source.blocks:
                yield Block((block.values.astype(np.uint32) << 16).view(np.float32))
        finally:
            source.blocks.close()

    count = operator.length_hint(source.blocks)
    return source._replace(blocks=CountedBlocks(blocks(), count), dtype=np.dtype(np.float32))
