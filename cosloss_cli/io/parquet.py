"""Parquet reader: record batches of numeric columns or of one list column of vectors."""

from __future__ import annotations

import atexit
import io
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np

from ..base.shown import clip
from ..errors import DataError, InputUsageError
from .base import Block, Blocks, ReadOptions, Source, rows_per_block
from .names import NUMERIC_KINDS, choose_components, split_ids, without_weight_column
from .storage import open_input
from .streams import check_readable, file_size

T = TypeVar("T")

#: Rows decoded per record batch, in bytes of float64 values (a fraction of a row group).
_BATCH_BYTES = 32 * 1024 * 1024

#: Read column chunks through a small buffer (one per column read) instead of loading
#: (pre-buffering) whole row groups: a third of the memory, and faster.
_STREAMING: dict[str, Any] = {"buffer_size": 1 << 16, "pre_buffer": False}

#: Row groups of numeric columns up to this size (uncompressed, all columns) are decoded
#: whole; polars holds whole files, so this stays well under its memory.
_WHOLE_GROUP_BYTES = 128 * 1024 * 1024


def open_parquet(path: str, options: ReadOptions) -> Source:
    """Open a Parquet file; vectors come from one list column or from numeric columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_readable(path, options.storage_options)
    previous_pool = _use_decoding_pool(pa)
    try:
        if path == "-":
            import sys

            parquet = pq.ParquetFile(io.BytesIO(sys.stdin.buffer.read()), **_STREAMING)
        elif "://" in path:
            parquet = _remote_parquet(path, options)
        else:
            parquet = pq.ParquetFile(path, **_STREAMING)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", path=path, hint="was it fully written?") from None
    finally:
        _restore_pool(pa, previous_pool)

    schema = parquet.schema_arrow
    # A file without the id column simply has no ids; the pipeline checks that one file has them.
    id_column, list_column, features, key_columns, column_notes = schema_columns(schema, options, path)
    width = _list_width(parquet, list_column, path) if list_column else len(features)
    weight_column = options.weight_column
    extra_columns = [name for name in (id_column, weight_column) if name is not None] + key_columns
    read_columns = ([list_column] if list_column else features) + extra_columns
    rows = parquet.metadata.num_rows
    step = rows_per_block(width, options.block_bytes)
    # pyarrow decodes large batches of numeric columns much faster than small ones
    # (per-batch overhead across many columns): decode up to 8 small blocks (at most
    # _BATCH_BYTES) at a time. A list column is one column: a batch of a block of up to
    # _SMALL_BATCH_BYTES is decoded in cache (see there), in half the CPU time.
    if list_column and step <= rows_per_block(width, _SMALL_BATCH_BYTES):
        batch_rows = step
    else:
        batch_rows = max(step, rows_per_block(width, min(_BATCH_BYTES, 8 * options.block_bytes)))

    local = path != "-" and "://" not in path
    groups = parquet.metadata.num_row_groups
    parallel = list_column is not None and options.decode_threads > 1 and weight_column is None and local and groups > 1

    def blocks(parallel: bool, transform: Callable[[Block], Any] | None = None) -> Generator[Any, None, None]:
        start = 0
        try:
            if parallel:
                assert list_column is not None
                parts = _RowGroupParts(path, list_column, id_column, width, (batch_rows, step))
                yield from in_order(parts, groups, options.decode_threads, transform)
                return
            # Numeric columns of whole row groups are cut into single blocks, each made into
            # its own small array: freed and reused from the pool's cache, where one array
            # per large batch meant fresh pages (faulted in and zeroed by the kernel) each time.
            whole_group_rows = None if list_column else step
            batch_size, cut = batch_rows, step
            if list_column:
                # One small block per batch, decoded and summed while in cache: less CPU and
                # under half the memory of large batches cut into blocks (bench/RESULTS.md, round 9).
                batch_size = cut = min(step, rows_per_block(width, _SMALL_BATCH_BYTES))
            for batch in _record_batches(parquet, read_columns, batch_size, whole_group_rows, list_column is None):
                if batch.num_rows == 0:
                    continue
                if list_column:
                    values = list_values(batch.column(list_column), width, start, path)
                else:
                    values = column_values(batch, features)
                cut_blocks = batch_blocks(batch, values, id_column, weight_column, key_columns, cut)
                start += batch.num_rows
                yield from cut_blocks
        except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
            raise DataError(f"cannot read row group data: {exc}", path=path, hint="was it fully written?") from None
        finally:
            parquet.close()

    whole = ListColumn(path, list_column, id_column, width) if list_column and local else None
    return Source(
        path,
        "parquet",
        (rows, width),
        _Blocks(blocks, parallel, whole),
        columns=[list_column] if list_column else features,
        has_ids=id_column is not None,
        has_weights=weight_column is not None,
        size_bytes=file_size(path),
        named=list_column is None,
        id_column=id_column,
        notes=column_notes,
        file_columns=tuple(schema.names),
        key_columns=tuple(key_columns),
    )


def batch_blocks(
    batch: Any,
    values: np.ndarray,
    id_column: str | None,
    weight_column: str | None,
    key_columns: list[str],
    step: int,
) -> Iterator[Block]:
    """The blocks of ``step`` rows of one record batch whose vectors are ``values``.

    Its ids, weights and key columns are taken from the batch now (an error in them is
    raised here), the blocks cut (views, no copies) as they are asked for: Parquet and
    every format read into Arrow batches (``arrow_batches``) make their blocks alike.
    int64 ids without nulls stay an int64 array rather than one Python int per row.
    """
    ids = _arrow_ids(batch.column(id_column)) if id_column else None
    weights = _weights(batch.column(weight_column)) if weight_column else None
    keys = tuple(batch.column(name) for name in key_columns) if key_columns else None
    whole = Block(values, ids, weights, keys)
    return (whole.slice(first, first + step) for first in range(0, batch.num_rows, step))


class ListColumn(NamedTuple):
    """A local Parquet file (or a dataset's first one) of vectors in a list column, as decoded whole."""

    path: str
    column: str
    id_column: str | None
    width: int


class _Blocks(Blocks):
    """A reader's blocks, decoded on several threads unless :meth:`one_thread` is called first.

    ``make(parallel)`` makes the generator of blocks when the first one is asked for.
    Blocks decoded on threads of their own are ``cheap`` to take: the pipeline reads them
    in place rather than through one more thread (``pipeline.threads.prefetched``).
    ``whole``: a local file's list column, which :meth:`all_rows` can decode whole.
    """

    __slots__ = ("_make", "_blocks", "parallel", "_whole")

    def __init__(
        self,
        make: Callable[[bool, Callable[[Block], Any] | None], Generator[Any, None, None]],
        parallel: bool,
        whole: ListColumn | None = None,
    ):
        self._make = make
        self._blocks: Generator[Block, None, None] | None = None
        self.parallel = parallel
        self._whole = whole

    def one_thread(self) -> None:
        """Decode on one thread after all (before the first block): a join's predictions spilled to a file."""
        if self._blocks is None:
            self.parallel = False

    def map_on_decoders(self, func: Callable[[Block], T]) -> Iterator[T] | None:
        """``func`` of every block, called on the thread that decoded it; the results in file order.

        Instead of the blocks (before the first one): a join's labels, each block looked
        up, gathered and summed as soon as it is decoded, on both cores, so that nothing
        waits for the block before it. A result's ``nbytes`` counts against the room
        the threads have to run ahead (:data:`_LOOKAHEAD_BYTES`). None when the blocks
        are not decoded on threads of their own.
        """
        if not self.parallel or self._blocks is not None:
            return None
        self._blocks = _no_blocks()
        return self._make(True, func)

    def all_rows(self, max_bytes: int) -> Iterator[Block] | None:
        """Every row as one block, the row groups decoded on both cores (see :func:`row_group_blocks`).

        Instead of the blocks (before the first one): a join's predictions, all kept anyway.
        """
        if self._whole is None or self._blocks is not None:
            return None
        return row_group_blocks(self._whole, max_bytes)

    @property
    def cheap(self) -> bool:
        return self.parallel

    def __next__(self) -> Block:
        if self._blocks is None:
            self._blocks = self._make(self.parallel, None)
        return next(self._blocks)

    def close(self) -> None:
        if self._blocks is not None:
            self._blocks.close()


def _no_blocks() -> Generator[Block, None, None]:
    """A generator of no blocks: what is left of blocks handed over to :meth:`_Blocks.map_on_decoders`."""
    yield from ()


def row_group_blocks(whole: ListColumn, max_bytes: int, threads: int = 2) -> Iterator[Block] | None:
    """All the rows of a local Parquet file of list vectors as one block, its row groups decoded on ``threads`` threads.

    For a pass that keeps every row anyway (the predictions of a join): one reader
    decodes one row group at a time on one thread, while decoding a list column is most
    of the pass. Here each thread has its own ``ParquetFile`` and decodes whole row groups
    in small record batches, each copied into its rows of one array allocated up front
    (see :func:`_decode_into`); the one block holds the same values (as the list's own
    float type, or float64) and ids as the file's blocks, in file order. Integer ids
    without nulls come as int64 arrays rather than Python objects (a tenth of the pass
    went into ``to_pylist``). None when this does not apply: one row group, or more than
    ``max_bytes`` of data in all (uncompressed): the caller would not keep it all in memory.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(whole.path)
        value_type = pq.read_schema(whole.path).field(whole.column).type.value_type
    except (pa.ArrowException, OSError, ValueError, KeyError, AttributeError):
        return None  # the ordinary reader reports it
    groups = metadata.num_row_groups
    sizes = [metadata.row_group(i).total_byte_size for i in range(groups)]
    if groups < 2 or sum(sizes) > max_bytes:
        return None
    dtype = np.dtype(_NUMPY_TYPES[str(value_type)]) if pa.types.is_floating(value_type) else np.dtype(np.float64)
    starts = [0]
    for index in range(groups):
        starts.append(starts[-1] + metadata.row_group(index).num_rows)
    parts = [(whole.path, index) for index in range(groups)]
    return _parallel_row_groups(whole, parts, starts, dtype, threads)


def files_row_group_blocks(
    source: Source, paths: list[str], max_bytes: int, threads: int = 2
) -> Iterator[Block] | None:
    """:func:`row_group_blocks` over the local Parquet files of a dataset, in order: one block of all their rows.

    ``source`` is the dataset's (its list column, width and id column). None when this
    does not apply: not a list column, more than ``max_bytes`` in all, or a file whose
    column types differ from the first's (the dataset's own reader then reports it).
    """
    if source.named or not source.columns or any("://" in path for path in paths):
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    list_column = source.columns[0]
    whole = ListColumn(source.path, list_column, source.id_column, int(source.shape[1] or 0))
    wanted = [list_column] + ([source.id_column] if source.id_column else [])
    parts: list[tuple[str, int]] = []
    starts = [0]
    total = 0
    types = None
    try:
        for path in paths:
            metadata = pq.read_metadata(path)
            schema = metadata.schema.to_arrow_schema()
            found = tuple(str(schema.field(name).type) for name in wanted)
            types = types or found
            if found != types:
                return None
            for index in range(metadata.num_row_groups):
                group = metadata.row_group(index)
                total += group.total_byte_size
                parts.append((path, index))
                starts.append(starts[-1] + group.num_rows)
        value_type = pq.read_schema(paths[0]).field(list_column).type.value_type
    except (pa.ArrowException, OSError, ValueError, KeyError, AttributeError):
        return None
    if total > max_bytes or len(parts) < 2:
        return None
    dtype = np.dtype(_NUMPY_TYPES[str(value_type)]) if pa.types.is_floating(value_type) else np.dtype(np.float64)
    return _parallel_row_groups(whole, parts, starts, dtype, threads)


#: Rows of a record batch when a list column is decoded into an array of all the rows, in
#: bytes of float64 values: batches of 1 MB of float32 cost half the CPU of 4 MB ones
#: (200,000 x 256: 0.22 s against 0.40 s for a file; their buffers are reused from the
#: pool's cache while still in the CPU's cache, where larger ones were faulted in anew).
_SMALL_BATCH_BYTES = 2 * 1024 * 1024


def _parallel_row_groups(
    whole: ListColumn, parts: list[tuple[str, int]], starts: list[int], dtype: np.dtype, threads: int
) -> Iterator[Block]:
    """Row groups ``parts`` (file, index) decoded on a pool of threads into one array (see :func:`row_group_blocks`).

    Each thread keeps one file open at a time: the one of the row group it decodes.
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.parquet as pq

    list_column, width = whole.column, whole.width
    values = np.empty((starts[-1], width), dtype=dtype)
    # The row of its own file each part starts at (for messages).
    file_rows: list[int] = []
    for part, (path, _) in enumerate(parts):
        first = part == 0 or parts[part - 1][0] != path
        file_rows.append(0 if first else file_rows[-1] + starts[part] - starts[part - 1])
    local = threading.local()
    opened: list[Any] = []  # each thread's file of the moment
    failed: list[str] = []

    def decode(part: int) -> list[np.ndarray]:
        path, index = parts[part]
        parquet = getattr(local, "parquet", None)
        if parquet is None or local.path != path:
            previous = _use_decoding_pool(pa)
            try:
                if parquet is not None:
                    parquet.close()
                parquet = local.parquet = pq.ParquetFile(path, **_STREAMING)
                local.path = path
                opened.append(parquet)
            finally:
                _restore_pool(pa, previous)
        try:
            return _decode_into(
                parquet, index, list_column, whole.id_column, values, starts[part], path, file_rows[part]
            )
        except (pa.ArrowException, OSError, ValueError, EOFError):
            failed.append(path)
            raise

    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cosloss-parquet") as pool:
            pending = [pool.submit(decode, part) for part in range(len(parts))]
            try:
                ids = [part for future in pending for part in future.result()]  # the first bad row group's error
            finally:
                for future in pending:
                    future.cancel()
    except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
        where = failed[0] if failed else whole.path
        raise DataError(f"cannot read row group data: {exc}", path=where, hint="was it fully written?") from None
    finally:
        for parquet in opened:
            parquet.close()
    yield Block(values, _joined_ids(ids) if whole.id_column else None)


def _decode_into(
    parquet: Any,
    index: int,
    list_column: str,
    id_column: str | None,
    out: np.ndarray,
    start: int,
    path: str,
    file_row: int | None = None,
) -> list[np.ndarray]:
    """Decode row group ``index`` into ``out`` from row ``start`` on; return its ids, a part per batch.

    In small batches, not the row group at once: decoding a whole list column grows its
    buffers by doubling (100 MB more at the peak at 200,000 x 256 float32), and a small
    batch is decoded and copied while in cache (see :data:`_SMALL_BATCH_BYTES`).
    """
    columns = [list_column] + ([id_column] if id_column else [])
    batch_rows = rows_per_block(out.shape[1], _SMALL_BATCH_BYTES)
    ids: list[np.ndarray] = []
    row = start
    for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=[index], columns=columns, use_threads=False):
        rows = batch.num_rows
        shown = row if file_row is None else file_row + row - start  # the row in its own file
        out[row : row + rows] = list_values(batch.column(list_column), out.shape[1], shown, path)
        if id_column:
            ids.append(_arrow_ids(batch.column(id_column)))
        row += rows
    return ids


def _joined_ids(parts: list[np.ndarray]) -> np.ndarray:
    """The ids of every batch as one array (objects if any batch's are: a null id)."""
    if not parts:
        return np.empty(0, dtype=object)
    if len({part.dtype for part in parts}) > 1:
        parts = [part.astype(object) for part in parts]
    return np.concatenate(parts)


#: How far the decoding threads of :func:`in_order` may run ahead of the consumer, in
#: bytes of decoded blocks (or of the results a transform made of them); each MB of it
#: is resident. Blocks handed over whole to the join's labels' pass (200,000 x 256) kept
#: the second thread waiting for room half the time, where 32 MB more of them cost more
#: time in fresh pages than they saved; a join's results, a few dozen bytes a row, leave
#: both threads decoding throughout (peak RSS 330 MB against 385 MB then).
_LOOKAHEAD_BYTES = 16 * 1024 * 1024


class _RowGroupParts:
    """Decodes one row group of a list column into the sequential reader's blocks, on any thread.

    Each thread opens its own ``ParquetFile`` (a reader is not shared between threads).
    The blocks are those of ``open_parquet``'s ``blocks``: record batches of ``batch_rows``
    from the start of each row group, cut into blocks of ``step`` rows, the same values
    and ids.
    """

    def __init__(self, path: str, list_column: str, id_column: str | None, width: int, rows: tuple[int, int]):
        self.path, self.list_column, self.id_column = path, list_column, id_column
        self.width, (self.batch_rows, self.step) = width, rows
        self._local = threading.local()
        self._opened: list[Any] = []
        import pyarrow.parquet as pq

        metadata = pq.read_metadata(path)
        self.starts = [0]
        for index in range(metadata.num_row_groups):
            self.starts.append(self.starts[-1] + metadata.row_group(index).num_rows)

    def blocks(self, index: int) -> Iterator[Block]:
        """The blocks of row group ``index`` (raises ``DataError`` naming the file's row of a bad vector)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet = getattr(self._local, "parquet", None)
        if parquet is None:
            previous = _use_decoding_pool(pa)
            try:
                parquet = self._local.parquet = pq.ParquetFile(self.path, **_STREAMING)
                self._opened.append(parquet)
            finally:
                _restore_pool(pa, previous)
        columns = [self.list_column] + ([self.id_column] if self.id_column else [])
        row = self.starts[index]
        batches = parquet.iter_batches(
            batch_size=self.batch_rows, row_groups=[index], columns=columns, use_threads=False
        )
        for batch in batches:
            if batch.num_rows == 0:
                continue
            values = list_values(batch.column(self.list_column), self.width, row, self.path)
            ids = _arrow_ids(batch.column(self.id_column)) if self.id_column else None
            row += batch.num_rows
            for first in range(0, batch.num_rows, self.step):
                yield Block(values[first : first + self.step], None if ids is None else ids[first : first + self.step])

    def close(self) -> None:
        for parquet in self._opened:
            parquet.close()


class _Budget:
    """Bytes of blocks decoded ahead of the consumer; a decoder of a later row group waits for room.

    The decoder of the row group the consumer is reading never waits (row groups start in
    order, so that one has always started): no deadlock whatever the sizes.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.current = 0
        self.stopped = False
        self._changed = threading.Condition()

    def reserve(self, group: int, nbytes: int) -> bool:
        """Wait for room for a block of row group ``group``; False once the consumer stopped."""
        with self._changed:
            self._changed.wait_for(lambda: self.stopped or group <= self.current or self.used + nbytes <= self.limit)
            self.used += nbytes
            return not self.stopped

    def release(self, nbytes: int) -> None:
        with self._changed:
            self.used -= nbytes
            self._changed.notify_all()

    def reading(self, group: int) -> None:
        with self._changed:
            self.current = group
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self.stopped = True
            self._changed.notify_all()


_END = object()


class Parts(Protocol):
    """What :func:`in_order` decodes: the blocks of part ``index`` (a row group, a file), on any thread."""

    def blocks(self, index: int) -> Iterator[Block]: ...

    def close(self) -> None: ...


def in_order(parts: Parts, groups: int, threads: int, transform: Callable[[Block], Any] | None = None) -> Iterator[Any]:
    """The blocks of every row group in file order, the row groups decoded on ``threads`` threads.

    The labels' pass of a join decoded one row group at a time on one thread, and that
    thread set the pace (the gathers and sums waited for it). Here the next row groups
    are decoded at the same time, their blocks kept (up to :data:`_LOOKAHEAD_BYTES`)
    until the consumer reaches them; errors are raised in file order too. The threads
    are daemons: one waiting for room when the consumer was dropped without being closed
    (a traceback keeping it alive) must not hold up the interpreter's exit, as a
    ``ThreadPoolExecutor``'s worker would. With ``transform``, each block is replaced by
    ``transform(block)`` on the thread that decoded it (see ``_Blocks.map_on_decoders``).
    """
    import queue

    budget = _Budget(_LOOKAHEAD_BYTES)
    queues: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(groups)]
    following = iter(range(groups))  # row groups are started in file order (see _Budget)
    taking = threading.Lock()

    def decode(index: int) -> None:
        try:
            for block in parts.blocks(index):
                item = block if transform is None else transform(block)
                if not budget.reserve(index, _nbytes(item)):
                    return
                queues[index].put(item)
            queues[index].put(_END)
        except BaseException as exc:  # re-raised by the consumer, in file order
            queues[index].put(exc)

    def work() -> None:
        while not budget.stopped:
            with taking:
                index = next(following, None)
            if index is None:
                return
            decode(index)

    workers = [
        threading.Thread(target=work, name=f"cosloss-parquet-{n}", daemon=True) for n in range(min(threads, groups))
    ]
    running = (budget, workers)
    _RUNNING.append(running)
    for worker in workers:
        worker.start()
    try:
        for index in range(groups):
            budget.reading(index)
            while (item := queues[index].get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                budget.release(_nbytes(item))
                yield item
    finally:
        _RUNNING.remove(running)
        budget.stop()
        for worker in workers:
            worker.join(timeout=10)
        if not any(worker.is_alive() for worker in workers):
            parts.close()  # else left to the collector: a thread may still read them


#: The decoders of every :func:`in_order` whose consumer has not finished: stopped at exit.
_RUNNING: list[tuple[_Budget, list[threading.Thread]]] = []


@atexit.register
def _stop_decoders() -> None:
    """Let decoding threads leave pyarrow before the interpreter ends.

    Why: a consumer kept alive to the exit (a traceback, a global) leaves its daemon
    threads inside pyarrow's C++ code, and pyarrow's static objects destroyed under a
    running thread abort the process ("terminate called without an active exception").
    Stopped here, each thread returns at its next block.
    """
    for budget, workers in list(_RUNNING):
        budget.stop()
        for worker in workers:
            worker.join(timeout=5)


def _nbytes(item: Any) -> int:
    """The room a block (its values), or what a transform made of it, takes in :func:`in_order`'s queues."""
    return int(item.values.nbytes if isinstance(item, Block) else item.nbytes)


def _arrow_ids(column: Any) -> np.ndarray:
    """Ids of an Arrow column: int64 without nulls as numpy int64, anything else as Python objects."""
    if str(column.type) == "int64" and column.null_count == 0:
        return np.array(_to_numpy(column))
    return np.asarray(column.to_pylist(), dtype=object)


def _weights(column: Any) -> np.ndarray:
    """A weight column as float64 (a null is NaN, refused by the pipeline with its row)."""
    import pyarrow as pa

    return np.asarray(column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64)


def _remote_parquet(path: str, options: ReadOptions) -> Any:
    """A Parquet object read by ranges as row groups are reached, never downloaded whole.

    Each column chunk is read through a 1 MB buffer: one request per chunk of a typical
    row group rather than one per 64 KB. Not pre-buffered: pyarrow would then fetch every
    row group of the iteration up front, the whole object in memory.
    """
    import pyarrow.parquet as pq

    remote = open_input(path, options.storage_options, random_access=True)
    return pq.ParquetFile(remote, buffer_size=1 << 20, pre_buffer=False)


def _pandas_index_columns(schema: Any) -> list[str]:
    """The columns pandas' ``to_parquet`` stored its index in (none for a RangeIndex: metadata only)."""
    try:
        metadata = schema.pandas_metadata or {}
    except (ValueError, TypeError):  # not JSON: written by something else
        return []
    return [c for c in metadata.get("index_columns", []) if isinstance(c, str)]


#: Held from :func:`_use_decoding_pool` to :func:`_restore_pool`: readers opened on
#: several threads at once must not restore each other's pool.
_POOL_LOCK = threading.Lock()


def _use_decoding_pool(pa: Any) -> Any:
    """Make jemalloc pyarrow's default pool (while a reader is created); return the previous one.

    A Parquet reader allocates from the default pool of the moment it is created. With
    pyarrow's default mimalloc, decoding 256 float32 columns spent more time in page
    faults (system CPU: memory given back to the kernel and faulted in again) than in
    decoding; with jemalloc, which pyarrow ships on Linux and polars uses, a third of it.
    Call :func:`_restore_pool` with the result once the reader is created.
    """
    _POOL_LOCK.acquire()
    try:
        previous = pa.default_memory_pool()
        pool = _decoding_pool(pa)
        if pool is not None:
            pa.set_memory_pool(pool)
    except BaseException:
        _POOL_LOCK.release()
        raise
    return previous


def _restore_pool(pa: Any, previous: Any) -> None:
    """Put back the default pool :func:`_use_decoding_pool` replaced."""
    try:
        pa.set_memory_pool(previous)
    finally:
        _POOL_LOCK.release()


def _decoding_pool(pa: Any) -> Any:
    """pyarrow's jemalloc pool, or None (the default pool) where pyarrow was built without it."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return None


def _record_batches(
    parquet: Any, columns: list[str], batch_rows: int, whole_group_rows: int | None, use_threads: bool = True
) -> Iterator[Any]:
    """The file's record batches: of ``batch_rows`` rows, or ``whole_group_rows`` if given.

    With ``whole_group_rows``, row groups up to ``_WHOLE_GROUP_BYTES`` are decoded whole,
    their columns in parallel, then cut (without copying) into batches of that many
    rows: for many numeric columns that took less CPU than ``iter_batches``. Larger row
    groups, and every row group without it, are streamed ``batch_rows`` at a time, so
    memory stays bounded whatever the file's row group size.

    ``use_threads`` off: the columns are decoded on the calling thread. pyarrow spreads
    the columns of a batch over its pool; a list column of vectors is one column (with
    ids, one small one beside it), so the pool only adds a handoff per batch, and the
    caller runs on a thread of its own anyway (``pipeline.threads.prefetched``).
    """
    metadata = parquet.metadata
    for index in range(metadata.num_row_groups):
        if whole_group_rows and metadata.row_group(index).total_byte_size <= _WHOLE_GROUP_BYTES:
            group = parquet.read_row_group(index, columns=columns, use_threads=True)
            yield from group.to_batches(max_chunksize=whole_group_rows)
        else:
            yield from parquet.iter_batches(
                batch_size=batch_rows, row_groups=[index], columns=columns, use_threads=use_threads
            )


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow.types as t

    return bool(t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_boolean(arrow_type))


def _is_list(arrow_type: Any) -> bool:
    import pyarrow.types as t

    return bool(t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type))


class SchemaColumns(NamedTuple):
    """What each column of an Arrow schema is for: ids, the vectors, and the columns carried beside them."""

    id_column: str | None
    #: The list column holding the vectors, or None when ``features`` are the components.
    list_column: str | None
    features: list[str]
    #: Columns left out of the vectors but carried on each block (other id-like and text columns).
    key_columns: list[str]
    notes: tuple[str, ...]


def schema_columns(schema: Any, options: ReadOptions, path: str) -> SchemaColumns:
    """Decide, from a file's Arrow schema alone, which column is what (Parquet, Arrow IPC, JSON Lines).

    Raises :class:`DataError` for a weight column that does not hold numbers.
    """
    options = key_as_column(schema, options)
    usable = without_weight_column(list(schema.names), options.weight_column, path, options.partition_keys)
    split = split_ids(
        usable,
        id_column=options.id_column,
        columns=options.columns,
        detect=options.detect_ids,
        index_columns=_pandas_index_columns(schema),
        path=path,
    )
    data = [n for n in usable if n != split.id_column and n not in split.others]
    list_column, features, left_out, column_notes = _choose_columns(schema, options, path, data)
    weight_column = options.weight_column
    if weight_column is not None and not _is_numeric(schema.field(weight_column).type):
        raise DataError(
            f"the weight column {weight_column!r} has type {schema.field(weight_column).type}, not numbers", path=path
        )
    return SchemaColumns(
        split.id_column, list_column, features, [*split.others, *left_out], (*split.notes, *column_notes)
    )


def key_as_column(schema: Any, options: ReadOptions) -> ReadOptions:
    """``options`` with the side's key (``--labels-key``, ``--key``...) as ``--columns`` when it names a list column.

    One table holding both sides' vectors, as two list columns (``compute data.jsonl
    data.jsonl --labels-key a --predictions-key b``), is read as NPZ, HDF5 and
    safetensors files holding two arrays are. A key that names no list column of the
    table is for the other side's file (``compute eval.npz predictions.parquet --key
    labels``) and is not used here.
    """
    key = options.key
    if key is None or options.columns or key not in schema.names or not _is_list(schema.field(key).type):
        return options
    return options._replace(columns=[key])


def _choose_columns(
    schema: Any, options: ReadOptions, path: str, data_columns: list[str]
) -> tuple[str | None, list[str], list[str], tuple[str, ...]]:
    """Either the one list column of numbers, or the numeric feature columns (ids left out).

    Also the columns left out for not holding numbers, and the notes that name them
    (:func:`~.names.choose_components`).
    """
    names = list(schema.names)
    kinds = {name: _kind(schema.field(name).type) for name in data_columns}
    type_names = {name: _type_name(schema.field(name).type) for name in data_columns}
    if options.columns:
        for name in options.columns:
            if name not in names:
                raise InputUsageError(
                    f"no column named {name!r} for --columns", path=path, hint=f"columns: {clip(names, quote=False)}"
                )
            arrow_type = schema.field(name).type
            if _is_list(arrow_type) and len(options.columns) == 1 and _is_numeric(arrow_type.value_type):
                left_out = [n for n in data_columns if n != name and kinds[n] not in NUMERIC_KINDS and kinds[n] != "L"]
                return name, [], left_out, ()
            kinds.setdefault(name, _kind(arrow_type))
            type_names.setdefault(name, _type_name(arrow_type))
        chosen = choose_components(data_columns, kinds, columns=options.columns, type_names=type_names, path=path)
        return None, chosen.features, chosen.left_out, chosen.notes
    excluded = set(options.exclude_columns or ())
    candidates = [schema.field(name) for name in data_columns if name not in excluded]
    lists = [f for f in candidates if _is_list(f.type)]
    if len(lists) == 1:
        field = lists[0]
        if not _is_numeric(field.type.value_type):
            raise DataError(f"list column {field.name!r} holds {field.type.value_type}, not numbers", path=path)
        # Numeric columns beside a list of vectors are not used; the others are named.
        others = [f.name for f in candidates if f is not field and kinds[f.name] not in NUMERIC_KINDS]
        chosen = choose_components(others, kinds, columns=None, type_names=type_names, path=path)
        return field.name, [], chosen.left_out, chosen.notes
    if len(lists) > 1:
        raise InputUsageError(
            f"{len(lists)} list columns ({clip([f.name for f in lists], quote=False)})",
            path=path,
            hint="choose one with --columns NAME",
        )
    chosen = choose_components(
        data_columns, kinds, columns=None, exclude=options.exclude_columns, type_names=type_names, path=path
    )
    if not chosen.features:
        raise DataError("has no numeric columns", path=path)
    return None, chosen.features, chosen.left_out, chosen.notes


def _type_name(arrow_type: Any) -> str:
    """An Arrow type for a message: ``text`` for strings, as a CSV's text is named; else the type."""
    import pyarrow.types as t

    return "text" if t.is_string(arrow_type) or t.is_large_string(arrow_type) else str(arrow_type)


def _kind(arrow_type: Any) -> str:
    """An Arrow type as numpy's ``dtype.kind`` (``L`` for a list): what :func:`choose_components` decides on."""
    import pyarrow.types as t

    if t.is_floating(arrow_type):
        return "f"
    if t.is_integer(arrow_type):
        return "u" if t.is_unsigned_integer(arrow_type) else "i"
    if t.is_boolean(arrow_type):
        return "b"
    return "L" if _is_list(arrow_type) else "O"


def _list_width(parquet: Any, column: str, path: str) -> int:
    """The vector length: from the type for fixed-size lists, else the first non-null row."""
    import pyarrow.types as t

    arrow_type = parquet.schema_arrow.field(column).type
    if t.is_fixed_size_list(arrow_type):
        return int(arrow_type.list_size)
    import pyarrow as pa

    try:
        for batch in parquet.iter_batches(batch_size=1024, columns=[column]):
            # Not to_numpy(): with nulls, or not, it imports pandas (0.9 s, 45 MB) for a length.
            lengths = batch.column(0).value_lengths()
            valid = _to_numpy(lengths.drop_null() if lengths.null_count else lengths)
            if valid.size:
                return int(valid[0])
    except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read column {column!r}: {exc}", path=path, hint="was it fully written?") from None
    if parquet.metadata.num_rows == 0:
        raise DataError("has no rows: nothing to compare", path=path)
    raise DataError(f"every vector in list column {column!r} is null: nothing to compare", path=path)


def list_values(
    column: Any, width: int, start: int, path: str, where: Callable[[int], str] | None = None
) -> np.ndarray:
    """A list column as a (rows, width) float64 array; null lists and nulls become NaN.

    ``where`` names a 0-based row for the error (a text file's line); by default ``row N``.
    """
    import pyarrow as pa

    rows = len(column)
    if pa.types.is_fixed_size_list(column.type) and column.type.list_size == width:
        bad = np.empty(0, dtype=np.intp)  # the type fixes every length (null lists included)
    else:
        # Nulls via numpy, not fill_null: a Python fill value makes pyarrow import pandas.
        value_lengths = column.value_lengths()
        lengths = _to_numpy(value_lengths)
        if value_lengths.null_count:
            lengths = np.where(np.isnan(lengths), width, lengths)
        bad = np.nonzero(lengths != width)[0]
    if bad.size:
        row = start + int(bad[0])
        place = where(row) if where is not None else f"row {row}"
        raise DataError(
            f"{place} has a vector of length {int(lengths[bad[0]])}, expected {width} (from the first row)",
            path=path,
        )
    if column.null_count:
        import pyarrow.compute as pc  # only here: importing it costs 0.1 s (it builds its docstrings)

        fill = pa.array([[np.nan] * width], type=pa.list_(pa.float64()))[0]
        column = pc.if_else(column.is_null(), fill, column.cast(pa.list_(pa.float64()), safe=False))
    if pa.types.is_fixed_size_list(column.type) and not column.null_count:
        # The child values of the rows in this (maybe sliced) array: flatten() would do the
        # same, and import pyarrow.compute for it (0.1 s).
        size = column.type.list_size
        flat = column.values.slice(column.offset * size, rows * size)
    else:
        flat = column.flatten()
    if flat.null_count:
        flat = flat.cast(pa.float64(), safe=False).fill_null(np.nan)
    values = np.asarray(_to_numpy(flat))
    return values.reshape(rows, width)


def _to_numpy(array: Any) -> np.ndarray:
    """An Arrow array as numpy: zero-copy when it can be (the copying path imports pandas)."""
    dtype = _NUMPY_TYPES.get(str(array.type))
    if dtype is not None and array.null_count == 0:
        # Even zero-copy to_numpy imports pandas (0.4 s): view the data buffer directly.
        data = array.buffers()[1]
        return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * np.dtype(dtype).itemsize)
    return np.asarray(array.to_numpy(zero_copy_only=False))


#: Arrow type names whose data buffer numpy can view as is.
_NUMPY_TYPES = {"halffloat": "float16", "float": "float32", "double": "float64"} | {
    name: name for name in (f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64))
}


def column_values(batch: Any, features: list[str]) -> np.ndarray:
    import pyarrow as pa

    selected = batch.select(features)
    types = {f.type for f in selected.schema}
    if len(types) > 1 or not pa.types.is_floating(next(iter(types))):
        arrays = [c.cast(pa.float64(), safe=False) for c in selected.columns]
        selected = pa.RecordBatch.from_arrays(arrays, names=features)
    # Column-major is a plain copy of each column (row-major would transpose here, 7x
    # slower); the core transposes small chunks in cache as it converts them.
    return np.asarray(selected.to_tensor(null_to_nan=True, row_major=False, memory_pool=_decoding_pool(pa)))


class ColumnSlabs:
    """Two local Parquet files of numeric columns, each row group read a few columns at a time.

    Why: a row group as ``pq.write_table`` and ``df.to_parquet`` write it holds up to a
    million rows, and each column chunk of it is then one or two pages (and a dictionary)
    that pyarrow decodes whole: reading a row group row-wise, in record batches, holds
    every column's decoded pages at once (the row group and more, 570 MB for 200,000 x
    256 float32). Read a slab of columns at a time instead, the three sums of each row
    being added slab by slab (``core.Sums.merge``), memory follows the slab: rows x
    ``columns`` x a few bytes per thread, with the sums' 40 bytes a row.

    :meth:`read` is called on several threads at once (``pipeline.compute``), each
    reading and summing a slab of its own: pyarrow decodes, and the kernel sums, without
    the GIL, so both cores are busy where one slab after the other left the second core
    waiting for the sums. Each thread has its own readers of both files (as each thread
    of :func:`_parallel_row_groups` has its own) and its own arrays, until
    :meth:`release`.
    """

    def __init__(self, labels: Source, predictions: Source, sizes: list[int], columns: int):
        self.labels, self.predictions = labels, predictions
        #: Rows of each row group (the same in both files).
        self.sizes = sizes
        self.columns = columns
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        #: Readers opened before the last :meth:`release` are closed: a thread opens new ones.
        self._generation = 0

    def firsts(self) -> range:
        """The first column of each slab."""
        return range(0, len(self.labels.columns or ()), self.columns)

    def read(self, group: int, first: int) -> tuple[np.ndarray, np.ndarray]:
        """The labels' and predictions' values of the slab at column ``first`` of row group ``group``.

        Column-major; valid until this thread reads its next slab.
        """
        stop = first + self.columns
        names = (self.labels.columns or [])[first:stop], (self.predictions.columns or [])[first:stop]
        return self._values(0, group, list(names[0])), self._values(1, group, list(names[1]))

    def ids(self, group: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Each file's ids of row group ``group`` (None for a file without an id column)."""
        found: list[np.ndarray | None] = []
        for side, source in enumerate((self.labels, self.predictions)):
            if source.id_column is None:
                found.append(None)
                continue
            table = self._read(side, group, [source.id_column])
            found.append(_arrow_ids(table.column(0).combine_chunks()))
        return found[0], found[1]

    def keys(self, group: int) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
        """Each file's key columns of row group ``group`` (:attr:`Source.key_columns`; None without any)."""
        found: list[tuple[Any, ...] | None] = []
        for side, source in enumerate((self.labels, self.predictions)):
            if not source.key_columns:
                found.append(None)
                continue
            table = self._read(side, group, list(source.key_columns))
            found.append(tuple(column.combine_chunks() for column in table.columns))
        return found[0], found[1]

    def release(self) -> None:
        """Close every thread's readers (a row group's pass is over; its threads end with it).

        Each pass has threads of its own: without this, a file of many large row groups
        kept four readers open per row group (four file descriptors) until the end.
        """
        with self._lock:
            opened, self._opened = self._opened, []
            self._generation += 1
        for parquet in opened:
            parquet.close()

    def _files(self) -> list[Any]:
        """This thread's readers of both files, opened on first use with the decoding pool."""
        files = getattr(self._local, "files", None)
        if files is None or self._local.generation != self._generation:
            import pyarrow as pa
            import pyarrow.parquet as pq

            previous = _use_decoding_pool(pa)
            try:
                files = [pq.ParquetFile(source.path, **_STREAMING) for source in (self.labels, self.predictions)]
            finally:
                _restore_pool(pa, previous)
            with self._lock:
                self._opened.extend(files)
            self._local.files, self._local.generation = files, self._generation
            self._local.buffers = [None, None]
        return files

    def _read(self, side: int, group: int, names: list[str]) -> Any:
        import pyarrow as pa

        source = (self.labels, self.predictions)[side]
        try:
            return self._files()[side].read_row_group(group, columns=names, use_threads=True)
        except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
            problem = f"cannot read row group data: {exc}"
            raise DataError(problem, path=source.path, hint="was it fully written?") from None

    def _values(self, side: int, group: int, names: list[str]) -> np.ndarray:
        """A slab's values, column-major; valid until this thread reads that side's next slab.

        Columns of one float type without nulls are copied from their buffers into an
        array kept for the thread's next slab; anything else is converted as record
        batches are.
        """
        table = self._read(side, group, names)
        columns = table.columns
        types = {str(column.type) for column in columns}
        if len(types) != 1 or types.pop() not in ("float", "double") or any(column.null_count for column in columns):
            return column_values(table.combine_chunks().to_batches()[0], names)
        dtype = np.float32 if str(columns[0].type) == "float" else np.float64
        shape = (table.num_rows, len(names))
        buffers: list[np.ndarray | None] = self._local.buffers
        buffer = buffers[side]
        if buffer is None or buffer.dtype != dtype or buffer.shape[0] != shape[0] or buffer.shape[1] < shape[1]:
            buffer = buffers[side] = np.empty((shape[0], self.columns), dtype=dtype, order="F")
        out = buffer[:, : shape[1]]
        for j, column in enumerate(columns):
            start = 0
            for chunk in column.chunks:
                out[start : start + len(chunk), j] = _to_numpy(chunk)
                start += len(chunk)
        return out

    def close(self) -> None:
        self.release()


def column_slabs(labels: Source, predictions: Source, block_bytes: int) -> ColumnSlabs | None:
    """:class:`ColumnSlabs` for a pair of local Parquet files of numeric columns with a large row group, else None.

    Large: more than :data:`_WHOLE_GROUP_BYTES` (uncompressed), which the blocks would
    read in record batches (row groups up to that are decoded whole, the faster way for
    many small groups). Both files must have the same rows in each row group, and no
    weight column (their blocks carry the weights).
    """
    sources = (labels, predictions)
    if any(
        source.format != "parquet" or not source.named or source.path == "-" or "://" in source.path
        for source in sources
    ):
        return None
    if labels.has_weights or predictions.has_weights or labels.shape != predictions.shape or labels.one_vector:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        layouts = [pq.read_metadata(source.path) for source in sources]
    except (pa.ArrowException, OSError, ValueError):
        return None  # the blocks report it
    sizes = [[meta.row_group(i).num_rows for i in range(meta.num_row_groups)] for meta in layouts]
    largest = max(meta.row_group(i).total_byte_size for meta in layouts for i in range(meta.num_row_groups))
    if sizes[0] != sizes[1] or largest <= _WHOLE_GROUP_BYTES:
        return None
    columns = max(8, 2 * block_bytes // max(1, 8 * max(sizes[0])))
    return ColumnSlabs(labels, predictions, sizes[0], columns)
