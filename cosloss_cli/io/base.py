"""What every reader gives the pipeline: a shape and an iterator of row blocks.

These are NamedTuples and a plain class rather than dataclasses: creating a dataclass
costs about a millisecond at import, and every command imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

#: Default size of one block of one input, in bytes of float64 values: large enough that
#: per-block overhead is negligible (the core converts and sums a block in cache-sized
#: chunks), small enough that the few blocks in flight keep memory far below 300 MB.
DEFAULT_BLOCK_BYTES = 16 * 1024 * 1024

#: The longest CSV/TSV line read, in bytes (``--max-line-bytes``): a longer one is refused
#: with its line number rather than held whole (a file without line ends, a gzip bomb).
DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024


class Block:
    """Consecutive rows of one input: ``values`` has the rows on axis 0.

    ``ids`` and ``weights`` (the ``weight_column`` of :class:`ReadOptions`, read in the
    same pass as the values) have one entry per row, when the input has them. ``keys``
    are the columns of :attr:`Source.key_columns` (Arrow arrays, in that order): what
    the pipeline compares with the other input's to tell rows out of order.
    """

    __slots__ = ("values", "ids", "weights", "keys")

    def __init__(
        self,
        values: np.ndarray,
        ids: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        keys: tuple[Any, ...] | None = None,
    ):
        self.values = values
        self.ids = ids
        self.weights = weights
        self.keys = keys

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def slice(self, start: int, stop: int) -> Block:
        ids = None if self.ids is None else self.ids[start:stop]
        weights = None if self.weights is None else self.weights[start:stop]
        keys = None if self.keys is None else tuple(key[start:stop] for key in self.keys)
        return Block(self.values[start:stop], ids, weights, keys)


class ReadOptions(NamedTuple):
    """How to read one input file; the CLI fills it from the shared input options."""

    input_format: str | None = None
    key: str | None = None
    header: bool | None = None
    id_column: str | None = None
    columns: list[str] | None = None
    block_bytes: int = DEFAULT_BLOCK_BYTES
    #: fsspec options for URL inputs (``--storage-option``); ignored for local paths.
    storage_options: dict[str, Any] | None = None
    #: CSV/TSV field separator; ``None``: the format's (``;`` when line 1 has no ``,``).
    delimiter: str | None = None
    #: CSV/TSV decimal mark; ``None``: ``.``, or ``,`` in ``;``-separated files that use it.
    decimal: str | None = None
    #: Take columns named like ids (``id``, ``*_id``, pandas' index...) as row ids, not data.
    detect_ids: bool = True
    #: Columns that are never vector components (``--exclude-columns``).
    exclude_columns: list[str] | None = None
    #: A column holding one weight per row (CSV/TSV/Parquet): left out of the vectors and
    #: carried on each :class:`Block` as ``weights``, like the ids. Set on the labels only.
    weight_column: str | None = None
    #: Decode the row groups of a local Parquet file of list vectors on this many threads
    #: (the blocks the same, in order): the labels' pass of a join whose predictions are
    #: held in memory (the pipeline calls the blocks' ``one_thread()`` otherwise).
    decode_threads: int = 1
    #: The hive keys of the dataset a file belongs to (``split=test/``): columns of that
    #: name in the file are left out of the vectors (see ``readers.dataset``).
    partition_keys: tuple[str, ...] = ()
    #: CSV/TSV lines longer than this many bytes are refused (see DEFAULT_MAX_LINE_BYTES).
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


class Source(NamedTuple):
    """An opened input: its logical shape (rows first) and a one-shot block iterator.

    ``shape[0]`` is ``None`` when the row count is only known at the end (CSV).
    ``one_vector`` is set for a 1-D array, which is read as a single row.
    ``named`` says that ``columns`` are the file's own names of the vector components
    (a header or a schema), so the pipeline may pair columns by name. ``notes`` are
    what the reader decided on the user's behalf (the CLI prints them on stderr).
    ``line_of`` turns a 0-based data row into the file's 1-based line (text files).
    ``file_columns`` are all the file's column names, ids and unused columns included
    (for messages that list what the file has).
    """

    path: str
    format: str
    shape: tuple[int | None, ...]
    blocks: BlockStream
    dtype: Any = None
    columns: list[str] | None = None
    has_ids: bool = False
    #: Whether the blocks carry ``weights`` (the read options named a weight column).
    has_weights: bool = False
    size_bytes: int | None = None
    one_vector: bool = False
    named: bool = False
    id_column: str | None = None
    notes: tuple[str, ...] = ()
    line_of: Callable[[int], int] | None = None
    file_columns: tuple[str, ...] | None = None
    #: Names a 0-based row where ``line_of`` cannot: a dataset's file and its row there.
    where_of: Callable[[int], str] | None = None
    #: Columns that are neither vector components nor the ids nor the weights, and that
    #: cosloss left out itself (text columns, other id-like columns): their values ride
    #: on each block's ``keys``, compared with the other input's same-named columns.
    key_columns: tuple[str, ...] = ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def where(self, row: int) -> str:
        """A 0-based data row as users find it: the file's line for text files, else the row."""
        if self.where_of is not None:
            return self.where_of(row)
        return f"line {self.line_of(row)}" if self.line_of is not None else f"row {row}"


@runtime_checkable
class BlockStream(Protocol):
    """What the pipeline may ask of a reader's blocks (``Source.blocks``), beyond iterating them.

    Every reader's blocks derive from :class:`Blocks`, which gives the defaults; a reader
    overrides what it can do better. ``__length_hint__`` (PEP 424) is the count of blocks
    left, when the reader knows it: an input of one block is read in place instead of on
    a prefetch thread (``pipeline.threads.prefetched``). ``cheap`` says that making a
    block costs next to nothing (a memory-mapped window) or that the blocks are decoded
    on threads of their own: such inputs are read in place too. ``one_thread``,
    ``map_on_decoders`` and ``all_rows`` are how a join steers a reader that decodes on
    several threads (Parquet row groups, the files of a dataset); each must be called
    before the first block is read. ``close`` closes the reader's file now rather than
    when the blocks are collected.
    """

    @property
    def cheap(self) -> bool: ...

    def __iter__(self) -> BlockStream: ...

    def __next__(self) -> Block: ...

    def __length_hint__(self) -> int: ...

    def one_thread(self) -> None:
        """Decode on the calling thread only (a join's labels, when its predictions are spilled to a file)."""

    def map_on_decoders(self, func: Callable[[Block], T]) -> Iterator[T] | None:
        """``func`` of every block, called on the thread that decoded it, in order; None: read the blocks."""

    def all_rows(self, max_bytes: int) -> Iterator[Block] | None:
        """Every row in one block, decoded on several threads; None: read the blocks (or over ``max_bytes``)."""

    def close(self) -> None:
        """Close the reader's file now; the blocks end."""


class Blocks:
    """The defaults of :class:`BlockStream`: the base of every reader's blocks.

    On its own, a stream of no blocks (a placeholder for a source that is not read).
    Its subclasses yield a reader's blocks: :class:`GeneratedBlocks` those of a
    generator, others their own (``parquet``'s row groups, a dataset's files).
    """

    __slots__ = ()

    @property
    def cheap(self) -> bool:
        return False

    def __iter__(self) -> Blocks:
        return self

    def __next__(self) -> Block:
        raise StopIteration

    def __length_hint__(self) -> int:
        result: int = NotImplemented  # unknown: ``operator.length_hint`` takes its default (PEP 424)
        return result

    def one_thread(self) -> None:
        """Nothing to do: the blocks are made on the thread that asks for them."""

    def map_on_decoders(self, func: Callable[[Block], T]) -> Iterator[T] | None:
        """None: the blocks are not decoded on threads of their own."""
        return None

    def all_rows(self, max_bytes: int) -> Iterator[Block] | None:
        """None: no faster way to every row than the blocks."""
        return None

    def close(self) -> None:
        """Nothing to close."""


class GeneratedBlocks(Blocks):
    """The blocks of a reader's generator; closing them closes the generator (and so its file) now."""

    __slots__ = ("_blocks",)

    def __init__(self, blocks: Generator[Block, None, None]):
        self._blocks = blocks

    def __next__(self) -> Block:
        return next(self._blocks)

    def close(self) -> None:
        self._blocks.close()


class CountedBlocks(GeneratedBlocks):
    """The blocks of a reader that knows how many it will yield (``__length_hint__``).

    ``cheap``: see :class:`BlockStream`; an array's blocks, memory-mapped windows or
    views, are.
    """

    __slots__ = ("_left", "_cheap")

    def __init__(self, blocks: Generator[Block, None, None], count: int, cheap: bool = False):
        super().__init__(blocks)
        self._left = count
        self._cheap = cheap

    @property
    def cheap(self) -> bool:
        return self._cheap

    def __next__(self) -> Block:
        block = next(self._blocks)
        self._left = max(0, self._left - 1)
        return block

    def __length_hint__(self) -> int:
        return self._left


def block_count(rows: int, step: int) -> int:
    """How many blocks of ``step`` rows hold ``rows`` rows."""
    return -(-rows // step)


def rows_per_block(row_items: int, block_bytes: int) -> int:
    """How many rows make a block of about ``block_bytes`` as float64."""
    return max(1, block_bytes // max(1, row_items * 8))
