"""Opening inputs: paths, stdin (``-``) and FIFOs, with errors a user can act on."""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Mapping
from typing import Any, BinaryIO

from ..errors import DataError, InputUsageError
from .storage import check_readable as check_object
from .storage import is_url, open_input

GZIP_MAGIC = b"\x1f\x8b"


def check_readable(path: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Raise a clear error unless ``path`` is ``-`` or a readable file (or FIFO), or object."""
    if path == "-":
        return
    if is_url(path):
        return check_object(path, storage_options)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputUsageError("no such file", path=path, hint="check the path") from None
    except PermissionError:
        raise DataError("permission denied", path=path, hint="check the file's permissions") from None
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror}", path=path) from None
    if stat.S_ISDIR(mode):
        raise InputUsageError("is a directory, not a file", path=path, hint="use 'cosloss batch' for directories")
    if not os.access(path, os.R_OK):
        raise DataError("permission denied", path=path, hint="check the file's permissions")


def is_regular_file(path: str) -> bool:
    """True for a seekable on-disk file (mmap and random access are possible)."""
    return path != "-" and not is_url(path) and os.path.isfile(path)


def open_binary(path: str, storage_options: Mapping[str, Any] | None = None) -> BinaryIO:
    """Open ``path`` (or stdin for ``-``, or a URL by ranged reads) for binary reading."""
    if is_url(path):
        return open_input(path, storage_options)
    check_readable(path)
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except PermissionError:
        raise DataError("permission denied", path=path, hint="check the file's permissions") from None
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror}", path=path) from None


def file_size(path: str) -> int | None:
    """Size in bytes of a regular file, else ``None`` (stdin, FIFOs, URLs: their reader knows)."""
    return os.path.getsize(path) if is_regular_file(path) else None


class PeekableReader(io.RawIOBase):
    """A non-seekable stream whose first bytes have been read already, then replayed."""

    def __init__(self, prefix: bytes, rest: BinaryIO):
        super().__init__()
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(view))
        if not data:
            return 0
        view[: len(data)] = data
        return len(data)


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at end of stream (pipes may return short reads)."""
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def peeked(stream: BinaryIO, size: int) -> tuple[bytes, BinaryIO]:
    """(the first ``size`` bytes of ``stream``, a stream that still starts with them).

    Buffered files and pipes are peeked without consuming; other streams (an in-memory
    stdin) are read and replayed.
    """
    peek = getattr(stream, "peek", None)
    if peek is not None:
        data = bytes(peek(size)[:size])
        if len(data) >= size:
            return data, stream
    data = read_exactly(stream, size)
    return data, io.BufferedReader(PeekableReader(data, stream))
