"""Arrow IPC reader: files (Feather v2) and streams, memory-mapped when on disk.

``df.to_feather``, ``pyarrow.feather.write_feather``, ``pyarrow.ipc.new_file`` and
``polars.write_ipc`` write the file format (``ARROW1`` magic, random access);
``pyarrow.ipc.new_stream``, ``polars.write_ipc_stream`` and Hugging Face's
``save_to_disk`` the stream format. On disk either is memory-mapped: an uncompressed
batch is a view of the file, never copied. Columns are chosen as in Parquet
(:mod:`~cosloss_cli.io.arrow_batches`).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any

from ..errors import DataError
from .arrow_batches import batches_source
from .base import ReadOptions, Source
from .formats import short
from .storage import open_input
from .streams import PeekableReader, check_readable, file_size, is_regular_file, read_exactly

_FILE_MAGIC = b"ARROW1"


def open_arrow(path: str, options: ReadOptions) -> Source:
    """Open an Arrow IPC file or stream (``.arrow``, ``.feather``, ``.ipc``)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    check_readable(path, options.storage_options)
    try:
        if is_regular_file(path):
            source: Any = pa.memory_map(path, "r")
        elif path == "-":
            source, file_format = _stdin(pa)
        else:
            source = pa.PythonFile(open_input(path, options.storage_options, random_access=True), mode="r")
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot open: {short(str(exc))}", path=path) from None
    try:
        if file_format if path == "-" else _is_file_format(source):
            reader = ipc.open_file(source)
            rows: int | None = reader.count_rows() if hasattr(reader, "count_rows") else None
            batches: Iterator[Any] = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            reader = ipc.open_stream(source)
            rows = None
            batches = iter(reader)
    except (pa.ArrowException, OSError, ValueError, io.UnsupportedOperation) as exc:
        source.close()
        raise DataError(
            f"not a readable Arrow IPC file: {short(str(exc))}", path=path, hint="was it fully written?"
        ) from None

    def explain(exc: BaseException, done: int) -> DataError:
        return DataError(
            f"cannot read the record batch after row {done}: {short(str(exc))}",
            path=path,
            hint="was it fully written?",
        )

    return batches_source(
        path,
        "arrow",
        reader.schema,
        batches,
        rows,
        options,
        size_bytes=file_size(path),
        close=source.close,
        explain=explain,
    )


def _stdin(pa: Any) -> tuple[Any, bool]:
    """(stdin as pyarrow reads it, whether it is the file format).

    The file format is read whole (it needs random access); a stream as it comes.
    """
    head = read_exactly(sys.stdin.buffer, len(_FILE_MAGIC))
    if head == _FILE_MAGIC:
        return pa.BufferReader(head + sys.stdin.buffer.read()), True
    return pa.PythonFile(io.BufferedReader(PeekableReader(head, sys.stdin.buffer)), mode="r"), False


def _is_file_format(source: Any) -> bool:
    """Whether a seekable source starts with the file format's magic (else it is a stream)."""
    head = source.read(len(_FILE_MAGIC))
    source.seek(0)
    return bool(head == _FILE_MAGIC)
