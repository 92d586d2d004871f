"""CSV/TSV files with very many columns, read line by line with memory that follows their bytes.

pyarrow's CSV reader keeps several kilobytes of state per column (a converter, its
buffers and tasks for every block, whatever the rows), and reads many blocks ahead of
the consumer: a line 1 of 250,000 cells cost gigabytes before a row was read. Files
wider than :data:`WIDE_COLUMNS` are read here instead: lines come from a buffered
stream, at most ``max_line_bytes`` each, a block of them at a time; each block is split
into cells and converted to numbers with pyarrow's compute functions (a few bytes of
work per byte of text). Quoted lines go through the ``csv`` module. Any line that does
not convert is checked again on its own, to name its line and cell.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple

import numpy as np

from ..errors import DataError
from .base import Block, rows_per_block

#: Line 1 with more cells than this is read here rather than by pyarrow's CSV reader.
WIDE_COLUMNS = 2048

#: Text gathered per block of lines (fewer rows if their values exceed the block size).
_TEXT_BYTES = 1 << 20

#: The cells pyarrow's CSV reader reads as missing in a float column (its default null_values).
_NULLS = [b"", b"#N/A", b"#N/A N/A", b"#NA", b"-1.#IND", b"-1.#QNAN", b"-NaN", b"-nan", b"1.#IND", b"1.#QNAN"]
_NULLS += [b"N/A", b"NA", b"NULL", b"NaN", b"n/a", b"nan", b"null"]

_BOM = b"\xef\xbb\xbf"


class Layout(NamedTuple):
    """Where a wide file's values are: the cell positions of the features, ids and weights."""

    path: str
    delimiter: str
    decimal: str
    columns: int
    features: np.ndarray
    id_position: int | None
    weight_position: int | None
    header: bool
    max_line_bytes: int
    #: Checks one line the way the error re-scan of the pyarrow path does: a message or None.
    check_line: Callable[[int, str], str | None]
    #: The cell positions of the key columns (``Source.key_columns``), carried as text on each block.
    key_positions: tuple[int, ...] = ()


def too_wide(path: str, line: int | str, width: int | None, limit: int) -> DataError:
    """The refusal of a line longer than ``--max-line-bytes``."""
    size = f"{width:,} bytes" if width is not None else f"more than {limit:,} bytes"
    return DataError(
        f"line {line} is {size} long, over the limit of {limit:,} bytes per line",
        path=path,
        hint="raise --max-line-bytes if the file is right",
    )


def bounded_lines(handle: Any, limit: int, path: str) -> Iterator[bytes]:
    """The lines of a binary stream with their ends, like iterating over it, none over ``limit`` bytes.

    ``readline`` with a size reads no more than that: a line of gigabytes (a gzip bomb, a
    file without line ends) is refused after ``limit`` bytes, not held.
    """
    number = 0
    while True:
        line = handle.readline(limit + 2)
        if not line:
            return
        number += 1
        width = len(line.rstrip(b"\r\n"))
        if width > limit:
            raise too_wide(path, number, width if line.endswith(b"\n") else None, limit)
        yield line


def wide_blocks(handle: IO[bytes], layout: Layout, block_bytes: int) -> Iterator[Block]:
    """Blocks of rows of a wide file, from ``handle`` at its first byte (the header is skipped here)."""
    rows = rows_per_block(len(layout.features), block_bytes)
    lines: list[bytes] = []
    numbers: list[int] = []
    text = 0
    with handle:
        for number, line in enumerate(bounded_lines(handle, layout.max_line_bytes, layout.path), start=1):
            if number == 1:
                line = line.removeprefix(_BOM)
                if layout.header:
                    continue
            line = line.rstrip(b"\r\n")
            for part in line.split(b"\r") if b"\r" in line else (line,):  # pyarrow ends lines at \r too
                if part:  # pyarrow skips empty lines
                    lines.append(part)
                    numbers.append(number)
                    text += len(part)
            if len(lines) >= rows or text >= _TEXT_BYTES:
                yield _block(lines, numbers, layout)
                lines, numbers, text = [], [], 0
    if lines:
        yield _block(lines, numbers, layout)


def _block(lines: list[bytes], numbers: list[int], layout: Layout) -> Block:
    import pyarrow as pa

    try:
        cells = _cells(lines, layout)
        if cells is None:
            raise _problem(lines, numbers, layout)
        count = len(lines)
        offsets = (np.arange(count, dtype=np.int64) * layout.columns)[:, None]
        values = _numbers(cells.take(_indices(offsets + layout.features)), layout.decimal)
        if values is None:
            raise _problem(lines, numbers, layout)
        ids = weights = keys = None
        if layout.key_positions:
            keys = tuple(cells.take(_indices(offsets[:, 0] + position)) for position in layout.key_positions)
        if layout.id_position is not None:
            ids = np.asarray(cells.take(_indices(offsets + layout.id_position)).to_pylist(), dtype=object)
        if layout.weight_position is not None:
            weights = _numbers(cells.take(_indices(offsets + layout.weight_position)), layout.decimal)
            if weights is None:
                raise _problem(lines, numbers, layout)
    except (pa.ArrowInvalid, UnicodeDecodeError, csv.Error):
        raise _problem(lines, numbers, layout) from None
    return Block(values.reshape(count, len(layout.features)), ids, weights, keys)


def _cells(lines: list[bytes], layout: Layout) -> Any:
    """Every cell of the lines, row after row (a pyarrow string array), or None if a line is ragged."""
    import pyarrow.compute as pc

    text = _strings(lines)
    if any(b'"' in line for line in lines):
        rows = [next(csv.reader([line], delimiter=layout.delimiter)) for line in text.to_pylist()]
        if any(len(row) != layout.columns for row in rows):
            return None
        return _strings([cell.encode() for row in rows for cell in row])
    split = pc.split_pattern(text, layout.delimiter)
    if np.any(_view(pc.list_value_length(split), np.int32) != layout.columns):
        return None
    return pc.list_flatten(split)


def _strings(items: list[bytes]) -> Any:
    """A pyarrow string array of UTF-8 bytes, built from its buffers (ArrowInvalid if not UTF-8).

    Not ``pa.array``, which imports pandas to ask whether a list is one of its types.
    """
    import pyarrow as pa

    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=len(items)), out=offsets[1:])
    data = b"".join(items)
    array = pa.Array.from_buffers(pa.large_binary(), len(items), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return array.cast(pa.large_string())


def _indices(positions: np.ndarray) -> Any:
    """Cell positions as a pyarrow int64 array for ``take`` (a view of the numpy array)."""
    import pyarrow as pa

    flat = np.ascontiguousarray(positions, dtype=np.int64).ravel()
    return pa.Array.from_buffers(pa.int64(), len(flat), [None, pa.py_buffer(flat)])


def _view(array: Any, dtype: type) -> np.ndarray:
    """The values of a pyarrow array without nulls, as a numpy view (``to_numpy`` imports pandas)."""
    values: np.ndarray = np.frombuffer(array.buffers()[1], dtype=dtype)
    return values[array.offset : array.offset + len(array)]


def _numbers(cells: Any, decimal: str) -> np.ndarray | None:
    """Cells as float64 the way pyarrow's CSV reader converts them (missing: NaN), or None if one is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = pc.utf8_trim(cells, " \t")
    cells = pc.if_else(pc.is_in(cells, value_set=_strings(_NULLS)), pa.nulls(1, pa.large_string())[0], cells)
    if decimal != ".":
        if pc.any(pc.match_substring(cells, ".")).as_py():
            return None
        cells = pc.replace_substring(cells, decimal, ".")
    try:
        numbers = pc.cast(cells, pa.float64())
    except pa.ArrowInvalid:
        return None
    values = _view(numbers, np.float64)
    if numbers.null_count:  # missing cells: NaN, as the other readers give them
        valid = np.unpackbits(np.frombuffer(numbers.buffers()[0], dtype=np.uint8), bitorder="little")
        values = np.where(valid[numbers.offset : numbers.offset + len(numbers)].astype(bool), values, np.nan)
    return values


def _problem(lines: list[bytes], numbers: list[int], layout: Layout) -> DataError:
    """The first line of a block that does not convert, named with its line and cell."""
    for number, line in zip(numbers, lines, strict=True):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return DataError(
                f"line {number} is not UTF-8 (byte 0x{line[exc.start]:02x})",
                path=layout.path,
                hint="convert it with: iconv -f latin1 -t utf-8",
            )
        try:
            found = layout.check_line(number, text)
        except csv.Error as exc:
            found = f"line {number} cannot be parsed: {exc}"
        if found:
            return DataError(found, path=layout.path)
    return DataError(f"lines {numbers[0]} to {numbers[-1]} cannot be read as numbers", path=layout.path)


def line_finder(open_lines: Callable[[], IO[bytes]], layout: Layout) -> Callable[[int], int]:
    """A function from a 0-based data row to its 1-based line, counted the way :func:`wide_blocks` reads."""

    def line_of(row: int) -> int:
        seen = -1
        with open_lines() as handle:
            for number, line in enumerate(bounded_lines(handle, layout.max_line_bytes, layout.path), start=1):
                if number == 1 and layout.header:
                    continue
                for part in line.rstrip(b"\r\n").split(b"\r"):
                    if part:
                        seen += 1
                        if seen == row:
                            return number
        return row + 1 + int(layout.header)

    return line_of
