"""What every reader gives the pipeline: a shape and an iterator of row blocks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: Default size of one block of one input, in bytes of float64 values: large enough that
#: per-block overhead is negligible (the core converts and sums a block in cache-sized
#: chunks), small enough that the few blocks in flight keep memory far below 300 MB.
DEFAULT_BLOCK_BYTES = 16 * 1024 * 1024


@dataclass
class Block:
    """Consecutive rows of one input: ``values`` has the rows on axis 0."""

    values: np.ndarray
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def slice(self, start: int, stop: int) -> Block:
        ids = None if self.ids is None else self.ids[start:stop]
        return Block(self.values[start:stop], ids)


@dataclass
class ReadOptions:
    """How to read one input file; the CLI fills it from the shared input options."""

    input_format: str | None = None
    key: str | None = None
    header: bool | None = None
    id_column: str | None = None
    columns: list[str] | None = None
    block_bytes: int = DEFAULT_BLOCK_BYTES


@dataclass
class Source:
    """An opened input: its logical shape (rows first) and a one-shot block iterator.

    ``shape[0]`` is ``None`` when the row count is only known at the end (CSV).
    ``one_vector`` is set for a 1-D array, which is read as a single row.
    """

    path: str
    format: str
    shape: tuple[int | None, ...]
    blocks: Iterator[Block]
    dtype: Any = None
    columns: list[str] | None = None
    has_ids: bool = False
    size_bytes: int | None = None
    one_vector: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)


def rows_per_block(row_items: int, block_bytes: int) -> int:
    """How many rows make a block of about ``block_bytes`` as float64."""
    return max(1, block_bytes // max(1, row_items * 8))
