"""NPY files in object storage: ranged reads of the header, then of each block of rows.

A remote object cannot be memory-mapped; reading it whole first would cost its size in
memory. The header is parsed from the first bytes, the promised size is checked against
the object's (a truncated upload fails before any work), and rows are then read block by
block through :func:`cosloss_cli.storage.open_input`'s ranged requests.
"""

from __future__ import annotations

from .base import ReadOptions, Source
from .npy import _check_size, _read_header, _stream_source
from .streams import open_binary


def open_remote_npy(path: str, options: ReadOptions) -> Source:
    """Open the ``.npy`` object at the URL ``path``, streamed by ranged reads."""
    stream = open_binary(path, options.storage_options)
    try:
        shape, fortran, dtype = _read_header(stream, path)
        size = getattr(stream, "size", None)
        if size is not None:
            _check_size(path, stream.tell(), shape, dtype, int(size))
    except BaseException:
        stream.close()
        raise
    source = _stream_source(path, "npy", stream, shape, fortran, dtype, options)
    return source._replace(size_bytes=size)
