"""NPY and NPZ readers: memory-mapped row blocks for files, streamed blocks otherwise.

Nothing here ever unpickles: headers are parsed with numpy's format helpers and
object dtypes are refused before any data is touched.
"""

from __future__ import annotations

import functools
import io
import math
import mmap
import operator
import os
import stat
import sys
import threading
import weakref
from collections.abc import Generator
from typing import BinaryIO, NamedTuple

import numpy as np
from numpy.lib import format as npformat

from ..base.shown import clip
from ..core.cosine import check_dtype
from ..errors import DataError, InputUsageError
from .base import Block, BlockStream, CountedBlocks, ReadOptions, Source, block_count, rows_per_block
from .streams import GZIP_MAGIC, file_size, is_regular_file, open_binary, peeked, read_exactly

Header = tuple[tuple[int, ...], bool, np.dtype]


#: Files up to this size are read whole in one call (header and data) instead of mapped:
#: for many small files (``batch``) the opens, stats and maps cost more than the data.
SMALL_FILE_BYTES = 4 * 1024 * 1024

#: Bytes read to find a small file's header (numpy pads headers to 64 bytes; most are 128).
_HEADER_PEEK = 512

#: The header numpy writes for a simple array (format 1.0), parsed without ``ast``; any
#: other header takes numpy's general parser.
_SIMPLE_HEADER = (
    r"\{'descr': '([<>|=]?[a-z]\d{1,2})', 'fortran_order': (True|False), "
    r"'shape': \(((?:\d+, ?)*\d*)\), \} *\n"
)


def open_npy(path: str, options: ReadOptions) -> Source:
    """Open an ``.npy`` file: memory-mapped when on disk, streamed from pipes and URLs."""
    if "://" in path:
        return open_remote_npy(path, options)
    small = open_small_npy(path, options) if path != "-" else None
    if small is not None:
        return small
    stream = open_binary(path)
    magic, stream = peeked(stream, len(GZIP_MAGIC))
    if magic == GZIP_MAGIC:
        return _gzip_source(path, stream, options)
    try:
        shape, fortran, dtype = _read_header(stream, path)
        offset = stream.tell() if is_regular_file(path) else None
    except BaseException:
        if path != "-":
            stream.close()
        raise
    if offset is not None:
        stream.close()
        _check_size(path, offset, shape, dtype)
        if not fortran and 0 not in shape:
            return mapped_source(path, "npy", offset, shape, dtype, options)
        if math.prod(shape) == 0:
            return array_source(path, "npy", np.empty(shape, dtype), options)
        return _fortran_source(path, offset, shape, dtype, options)
    return stream_source(path, "npy", stream, shape, fortran, dtype, options)


def _gzip_source(path: str, stream: BinaryIO, options: ReadOptions) -> Source:
    """A gzip-compressed NPY (``.npy.gz``, or gzip on stdin), decompressed as its blocks are read."""
    import gzip
    import zlib

    unzipped: BinaryIO = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    try:
        shape, fortran, dtype = _read_header(unzipped, path)
    except (OSError, EOFError, zlib.error) as exc:
        if path != "-":
            stream.close()
        raise DataError(f"corrupt or truncated gzip data: {exc}", path=path, hint="was it fully written?") from None
    except BaseException:
        if path != "-":
            stream.close()
        raise
    source = stream_source(path, "npy", unzipped, shape, fortran, dtype, options)
    if path != "-":
        source = source._replace(blocks=_closing(source.blocks, stream))
    return source


def _closing(blocks: BlockStream, stream: BinaryIO) -> CountedBlocks:
    """``blocks`` that close ``stream`` (the file under a gzip stream, which does not close it) at their end."""

    def run() -> Generator[Block, None, None]:
        try:
            yield from blocks
        finally:
            blocks.close()
            stream.close()

    return CountedBlocks(run(), operator.length_hint(blocks))


def open_npz(path: str, options: ReadOptions) -> Source:
    """Open one array of an ``.npz`` archive (``--key``, or its only array), streamed."""
    import zipfile  # only archives need it: not imported by every other start (measured)
    import zlib  # zipfile imports it anyway; a corrupt member raises zlib.error

    stream = open_binary(path, options.storage_options)
    if path == "-":
        stream = io.BytesIO(stream.read())  # zip needs random access: stdin is buffered whole
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        stream.close()
        raise DataError(f"not a valid .npz (zip) archive: {exc}", path=path) from None
    names = [n[:-4] if n.endswith(".npy") else n for n in archive.namelist()]
    if options.key is None:
        if len(names) != 1:
            archive.close()
            listed = clip(names, quote=False) if names else "none"
            raise InputUsageError(
                f"the archive holds {len(names)} arrays ({listed})", path=path, hint="choose one with --key NAME"
            )
        key = names[0]
    elif options.key in names:
        key = options.key
    else:
        archive.close()
        raise InputUsageError(
            f"no array named {clip(options.key)} in the archive",
            path=path,
            hint=f"available keys: {clip(names, quote=False)}",
        )
    member_name = archive.namelist()[names.index(key)]
    try:
        member = archive.open(member_name)
        shape, fortran, dtype = _read_header(member, path)  # type: ignore[arg-type]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError, zlib.error) as exc:
        archive.close()  # RuntimeError: an encrypted member; NotImplementedError: unsupported compression
        raise DataError(f"array {key!r} cannot be read: {exc}", path=path) from None
    return stream_source(path, "npz", member, shape, fortran, dtype, options)  # type: ignore[arg-type]


class SmallArray(NamedTuple):
    """A small file's array, shaped as its header says (read-only), and the file's size in bytes."""

    array: np.ndarray
    size: int


def open_small_npy(path: str, options: ReadOptions, scratch: np.ndarray | None = None) -> Source | None:
    """A small simple C-order file read with one open and one read; None: take the general path.

    See :func:`read_small_npy`, which this reads with (``scratch`` included).
    """
    small = read_small_npy(path, scratch)
    return None if small is None else small_npy_source(path, small, options)


def read_small_npy(path: str, scratch: np.ndarray | None = None) -> SmallArray | None:
    """The array of a small simple C-order file, read with one open and one read; None: the general path.

    The whole file is read into one new buffer rather than mapped: for the 256 KB files of
    a ``batch`` the map, its page-table entries and the unmap cost more than the copy, and
    the copied values are in cache when the kernel reads them (bench/RESULTS.md, round
    10: twice the CPU of a batch of small files without it). Anything unusual (not a regular file, large, another header
    version, Fortran order, a truncated file, an unreadable one) returns None, and the
    general path reads it or reports the error, so both paths give the same arrays and
    the same messages.

    ``scratch``: a uint8 buffer to read into when the file fits, instead of a new one.
    Only for a caller that is done with the array before it reads into the buffer
    again (``pipeline.compute._small_pair``): in ``batch`` workers a new 256 KB buffer per file
    could be new pages each time (malloc maps or trims them), 128 page faults a pair.
    """
    read = _read_small_file(path, scratch)
    if read is None:
        return None
    data, size = read
    header = _simple_header(data[:_HEADER_PEEK].tobytes())
    if header is None:
        return None
    shape, dtype, offset = header
    count = math.prod(shape)
    if size < offset + count * dtype.itemsize or count == 0:
        return None
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    array.flags.writeable = False  # as the general path's read-only maps: nothing may write to an input
    return SmallArray(array.reshape(shape), size)


def small_npy_source(path: str, small: SmallArray, options: ReadOptions) -> Source:
    """The Source of a small file's array, as :func:`open_small_npy` opens it."""
    file_shape, one_vector, _, step = array_layout(small.array.shape, options)
    array = small.array.reshape(file_shape)

    def blocks() -> Generator[Block, None, None]:
        for start in range(0, file_shape[0], step):
            yield Block(array[start : start + step])

    counted = CountedBlocks(blocks(), block_count(file_shape[0], step), cheap=True)
    dtype = small.array.dtype
    return Source(path, "npy", file_shape, counted, dtype=dtype, size_bytes=small.size, one_vector=one_vector)


def rows_per_array_block(shape: tuple[int, ...], options: ReadOptions) -> int:
    """How many rows of an array of this shape one block holds, as its Source splits it."""
    return array_layout(shape, options)[3]


def _read_small_file(path: str, scratch: np.ndarray | None) -> tuple[np.ndarray, int] | None:
    """(the bytes of a regular file of at most SMALL_FILE_BYTES, its size), or None.

    The path is checked with ``stat`` before it is opened: opening a FIFO, even without
    blocking, would pair with a writer waiting on it. Then one ``os.open`` and one
    ``readv`` (one ``read`` where there is no ``readv``), without a file object, whose
    creation costs another ``fstat``.
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or not 0 < info.st_size <= SMALL_FILE_BYTES:
            return None
        data = _buffer(info.st_size, scratch)
        descriptor = os.open(path, _READ_FLAGS)
        try:
            if hasattr(os, "readv"):
                got = os.readv(descriptor, [data.data])
            else:
                chunk = os.read(descriptor, info.st_size)
                got = len(chunk)
                data[:got] = np.frombuffer(chunk, dtype=np.uint8)
        finally:
            os.close(descriptor)
    except (OSError, ValueError):
        return None
    return (data, info.st_size) if got == info.st_size else None  # changed since the stat: the general path


#: How :func:`_read_small_file` opens a file (binary on Windows, not inherited by children).
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _buffer(size: int, scratch: np.ndarray | None) -> np.ndarray:
    """``size`` bytes to read into: the start of ``scratch`` when it is large enough, else new ones."""
    if scratch is not None and scratch.size >= size:
        return scratch[:size]
    return np.empty(size, dtype=np.uint8)


def _simple_header(data: bytes) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """(shape, dtype, data offset) of a format 1.0 header of a simple C-order numeric array."""
    if data[:8] != b"\x93NUMPY\x01\x00" or len(data) < 10:
        return None
    end = 10 + int.from_bytes(data[8:10], "little")
    return _parsed_header(data[10:end], end)


@functools.lru_cache(maxsize=64)
def _parsed_header(text: bytes, end: int) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """:func:`_simple_header` of one header's text, cached: a batch's files share a few headers."""
    import re

    found = re.fullmatch(_SIMPLE_HEADER, text.decode("latin-1"))
    if found is None or found.group(2) == "True":
        return None
    try:
        dtype = np.dtype(found.group(1))
        check_dtype(dtype, "the values")
    except (TypeError, ValueError, DataError):
        return None
    shape = tuple(int(n) for n in found.group(3).replace(" ", "").split(",") if n)
    if not shape or dtype.hasobject:
        return None
    return shape, dtype, end


def _read_header(stream: BinaryIO, path: str) -> Header:
    """Parse an NPY header without trusting it: bad magic or dtype is a DataError."""
    try:
        version = npformat.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = npformat.read_array_header_2_0(stream)
    except Exception as exc:  # untrusted bytes: tokenize, ast and numpy fail in many ways
        raise DataError(f"not a valid .npy file: {exc}", path=path, hint="was it fully written?") from None
    if dtype.hasobject:
        raise DataError(
            "holds Python objects (a pickle), which cosloss never loads",
            path=path,
            hint="save the vectors as a numeric array",
        )
    try:
        check_dtype(dtype, "the values")
    except DataError as exc:
        raise DataError(exc.message, path=path) from None
    if len(shape) == 0:
        raise DataError("holds a single number (0-d array); it needs at least one vector", path=path)
    return tuple(int(n) for n in shape), bool(fortran), dtype


def _check_size(path: str, offset: int, shape: tuple[int, ...], dtype: np.dtype, actual: int | None = None) -> None:
    expected = offset + math.prod(shape) * dtype.itemsize
    actual = (file_size(path) if actual is None else actual) or 0
    if actual < expected:
        raise DataError(
            f"truncated: the header promises {expected} bytes, the file has {actual}",
            path=path,
            hint="was it fully written?",
        )


def _logical_shape(shape: tuple[int, ...]) -> tuple[tuple[int, ...], bool]:
    """A 1-D array is one vector: read it as a single row."""
    if len(shape) == 1:
        return (1, shape[0]), True
    return shape, False


def array_layout(file_shape: tuple[int, ...], options: ReadOptions) -> tuple[tuple[int, ...], bool, int, int]:
    """(logical shape, one vector?, values per row, rows per block) of an array.

    How every array format (NPY, HDF5, safetensors) cuts an array into blocks, so that
    one array reads the same whichever file holds it.
    """
    return _layout_of(file_shape, options.block_bytes)


@functools.lru_cache(maxsize=64)
def _layout_of(file_shape: tuple[int, ...], block_bytes: int) -> tuple[tuple[int, ...], bool, int, int]:
    """:func:`array_layout`, cached by shape: ``batch`` asks it of every pair, mostly of one shape."""
    shape, one_vector = _logical_shape(file_shape)
    row_items = math.prod(shape[1:])
    return shape, one_vector, row_items, rows_per_block(row_items, block_bytes)


def _source(
    path: str,
    fmt: str,
    shape: tuple[int, ...],
    step: int,
    blocks: Generator[Block, None, None],
    dtype: np.dtype,
    one_vector: bool,
    mapped: bool = False,
) -> Source:
    """The Source of an array read ``step`` rows at a time (it knows its block count).

    ``mapped``: its blocks are views of memory-mapped data, cheap to make, so they are
    read without a prefetch thread (see ``CountedBlocks``).
    """
    counted = CountedBlocks(blocks, block_count(shape[0], step), cheap=mapped)
    return Source(path, fmt, shape, counted, dtype=dtype, size_bytes=file_size(path), one_vector=one_vector)


def array_source(path: str, fmt: str, array: np.ndarray, options: ReadOptions) -> Source:
    """The Source of an array in memory (an empty one, a file's tensor), its blocks views of it."""
    shape, one_vector, _, step = array_layout(tuple(array.shape), options)
    array = array.reshape(shape)

    def blocks() -> Generator[Block, None, None]:
        for start in range(0, shape[0], step):
            yield Block(array[start : start + step])

    return _source(path, fmt, shape, step, blocks(), array.dtype, one_vector, mapped=True)


#: A large file's windows are not populated (no ``MAP_POPULATE``): their pages are mapped
#: by the page faults of the worker threads that sum them, on every core at once.
#: Populating them here put all of that kernel work (as much CPU as the sums themselves on
#: 2 x 2 GB) on the one thread that hands out the blocks, the longest path of the run.
_WINDOW_FLAGS = mmap.MAP_SHARED if hasattr(mmap, "MAP_SHARED") else 0


def mapped_source(
    path: str, fmt: str, offset: int, file_shape: tuple[int, ...], dtype: np.dtype, options: ReadOptions
) -> Source:
    """A C-order array on disk, a block of rows at a time: mapped windows under a lease, else reads.

    A mapped page past the end of a file that shrank while it was read (``np.save`` over
    it during a run) raises SIGBUS, which ends the process without a word. So the file is
    mapped only under a read lease (:func:`_take_lease`): a program that opens it for
    writing or truncates it then waits until every window is unmapped, and the next
    block reports the change instead. Each window maps only its own rows and is unmapped
    when the block is freed (the windows hold the open file, and so the lease, until
    then), so resident memory stays at the few blocks in flight however large the file is.

    Without a lease (not the file's owner, a file system without leases, not Linux) the
    blocks are read with ``preadv`` (:func:`_read_blocks`): slower, as every value is
    copied, but a file that shrinks is a short read, which is reported.
    """
    shape, one_vector, row_items, step = array_layout(file_shape, options)
    row_bytes = row_items * dtype.itemsize

    def blocks() -> Generator[Block, None, None]:
        try:
            with open(path, "rb") as handle:
                if not _take_lease(handle.fileno()):
                    yield from _read_blocks(handle.fileno(), path, offset, shape, step, row_bytes, dtype)
                    return
                for start in range(0, shape[0], step):
                    if _lease_broken(handle.fileno()):
                        raise _changed(path, "another program opened it to write or truncated it")
                    rows = min(step, shape[0] - start)
                    begin = offset + start * row_bytes
                    aligned = begin - begin % mmap.ALLOCATIONGRANULARITY
                    length = begin - aligned + rows * row_bytes
                    if _WINDOW_FLAGS:
                        window = mmap.mmap(
                            handle.fileno(), length, flags=_WINDOW_FLAGS, prot=mmap.PROT_READ, offset=aligned
                        )
                    else:
                        window = mmap.mmap(handle.fileno(), length, access=mmap.ACCESS_READ, offset=aligned)
                    values = np.frombuffer(window, dtype=dtype, count=rows * row_items, offset=begin - aligned)
                    yield Block(values.reshape((rows, *shape[1:])))
                    # This frame may outlive the run in an error's traceback: it must not
                    # keep a window (and so the lease) alive.
                    window = values = None  # type: ignore[assignment]
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the array data: {exc}", path=path) from None

    return _source(path, fmt, shape, step, blocks(), dtype, one_vector, mapped=True)


def _fortran_source(
    path: str, offset: int, file_shape: tuple[int, ...], dtype: np.dtype, options: ReadOptions
) -> Source:
    """A Fortran-order array on disk: mapped whole under a read lease (its rows are strided), else read whole.

    As :func:`mapped_source`: a mapped page of a file that shrinks would be SIGBUS, so the
    map is made only under a lease (the map holds the open file, and so the lease, until
    it is unmapped), checked before each block; without one the values are read into
    memory, and a file that ends early is reported.
    """
    handle = open(path, "rb")
    try:
        if not _take_lease(handle.fileno()):
            handle.seek(offset)
            return stream_source(path, "npy", handle, file_shape, True, dtype, options)
        count = math.prod(file_shape)
        mapped = mmap.mmap(handle.fileno(), offset + count * dtype.itemsize, access=mmap.ACCESS_READ)
    except OSError as exc:
        handle.close()
        raise DataError(f"cannot read the array data: {exc.strerror or exc}", path=path) from None
    except BaseException:
        handle.close()
        raise
    whole = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset).reshape(file_shape, order="F")
    shape, one_vector, _, step = array_layout(file_shape, options)
    array = whole.reshape(shape)
    del whole, mapped

    def blocks() -> Generator[Block, None, None]:
        nonlocal array
        try:
            for start in range(0, shape[0], step):
                if _lease_broken(handle.fileno()):
                    raise _changed(path, "another program opened it to write or truncated it")
                yield Block(array[start : start + step])
        finally:
            array = None  # type: ignore[assignment]  # the map goes with the last block that views it
            handle.close()

    return _source(path, "npy", shape, step, blocks(), dtype, one_vector, mapped=True)


def _take_lease(descriptor: int) -> bool:
    """Take a read lease on an open file (Linux ``F_SETLEASE``); whether one was taken.

    While the lease is held (until the file is closed and unmapped) a program that opens
    the file to write, or truncates it, is held back (up to ``/proc/sys/fs/lease-break-time``,
    45 s by default) and the lease shows the pending break. Its notice is a signal:
    SIGURG, ignored by default, rather than SIGIO, which would end this process. No
    lease is taken when something in this process handles SIGURG, or when a writer has
    the file open already (EAGAIN): such a file may be changing now.
    """
    if not sys.platform.startswith("linux"):
        return False
    import fcntl
    import signal

    try:
        if signal.getsignal(signal.SIGURG) not in (signal.SIG_DFL, signal.SIG_IGN):
            return False
        fcntl.fcntl(descriptor, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except (OSError, AttributeError, ValueError):  # EACCES: not the owner; EINVAL: no leases here
        return False
    return True


def _lease_broken(descriptor: int) -> bool:
    """Whether a program is waiting to write the leased file (the lease is being broken)."""
    import fcntl

    return bool(fcntl.fcntl(descriptor, fcntl.F_GETLEASE) != fcntl.F_RDLCK)


def _read_blocks(
    descriptor: int, path: str, offset: int, shape: tuple[int, ...], step: int, row_bytes: int, dtype: np.dtype
) -> Generator[Block, None, None]:
    """The blocks read with ``preadv`` into recycled buffers; a file written to meanwhile is refused.

    A file that ends early is a short read, and one whose size or modification time
    changed during the read (rewritten in place, even to its old size) is refused after
    its last block. Each block's buffer goes back to a small pool once the block's last
    view is freed, so the reads land in memory touched before.
    """
    before = _identity(os.fstat(descriptor))
    pool = _BufferPool(min(step, shape[0]) * row_bytes)
    for start in range(0, shape[0], step):
        rows = min(step, shape[0] - start)
        values = pool.take(rows * row_bytes, dtype)
        _read_at(descriptor, values, offset + start * row_bytes, path)
        values.flags.writeable = False  # as a read-only map: nothing may write to an input
        yield Block(values.reshape((rows, *shape[1:])))
    if _identity(os.fstat(descriptor)) != before:
        raise _changed(path, "it was written to during the read")


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is written to: its inode, size and modification times."""
    return info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _changed(path: str, detail: str) -> DataError:
    return DataError(f"changed while it was read ({detail})", path=path, hint="rerun once it is fully written")


def _read_at(descriptor: int, values: np.ndarray, position: int, path: str) -> None:
    """Fill ``values`` from ``position`` of the file; a file that ends early has changed since it was opened."""
    view = values.data.cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(descriptor, [view[done:]], position + done)
        if got == 0:
            raise _changed(path, f"it ended {position + done} bytes in, shorter than its header promises")
        done += got


class _BufferPool:
    """Buffers of one size, handed out as arrays and taken back when the last view of one is freed.

    Each array handed out is made over a fresh ``memoryview`` of a pooled buffer (``ndarray.data``), so the
    views numpy derives from it (slices, reshapes) keep that array, not the buffer, as
    their base: its finalizer runs only once every view is gone. A buffer handed out is
    never written to again before then.
    """

    def __init__(self, size: int):
        self._size = size
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, nbytes: int, dtype: np.dtype) -> np.ndarray:
        """An array of ``nbytes`` bytes of ``dtype`` over a buffer nothing else uses."""
        with self._lock:
            buffer = self._free.pop() if self._free else None
        if buffer is None:
            buffer = np.empty(self._size, dtype=np.uint8)
        values = np.frombuffer(buffer.data[:nbytes], dtype=dtype)
        weakref.finalize(values, self._give_back, buffer)
        return values

    def _give_back(self, buffer: np.ndarray) -> None:
        with self._lock:
            self._free.append(buffer)


def stream_source(
    path: str,
    fmt: str,
    stream: BinaryIO,
    file_shape: tuple[int, ...],
    fortran: bool,
    dtype: np.dtype,
    options: ReadOptions,
) -> Source:
    """The Source of an array read from ``stream`` a block at a time (pipes, archives, URLs).

    The data starts at the stream's position; a Fortran-order array is read whole first.
    The stream is closed at the end (unless it is stdin).
    """
    shape, one_vector, row_items, step = array_layout(file_shape, options)
    row_bytes = row_items * dtype.itemsize

    def blocks() -> Generator[Block, None, None]:
        try:
            if fortran and len(file_shape) > 1:
                data = _read_values(stream, math.prod(shape) * dtype.itemsize, path)
                whole = np.frombuffer(data, dtype=dtype).reshape(file_shape, order="F").reshape(shape)
                for start in range(0, shape[0], step):
                    yield Block(whole[start : start + step])
                return
            for start in range(0, shape[0], step):
                rows = min(step, shape[0] - start)
                data = _read_values(stream, rows * row_bytes, path)
                yield Block(np.frombuffer(data, dtype=dtype).reshape((rows, *shape[1:])))
        finally:
            if path != "-":
                stream.close()

    return _source(path, fmt, shape, step, blocks(), dtype, one_vector)


def _read_errors() -> tuple[type[BaseException], ...]:
    """What a failing read raises: zip errors too once an archive was opened (zlib: a corrupt member)."""
    import zlib  # evaluated only when a read fails

    zipfile = sys.modules.get("zipfile")
    return (OSError, EOFError, zlib.error) + ((zipfile.BadZipFile,) if zipfile else ())


def _read_values(stream: BinaryIO, size: int, path: str) -> bytes:
    try:
        data = read_exactly(stream, size)
    except _read_errors() as exc:
        raise DataError(f"cannot read the array data: {exc}", path=path) from None
    if len(data) < size:
        raise DataError("truncated: the array data ends early", path=path, hint="was it fully written?")
    return data


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
    source = stream_source(path, "npy", stream, shape, fortran, dtype, options)
    return source._replace(size_bytes=size)
