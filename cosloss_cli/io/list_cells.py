"""CSV cells that hold whole vectors: ``"[0.14, -1.66, ...]"`` or numpy's ``"[ 0.14 -1.66 ...]"``.

What pandas' ``to_csv`` writes for a column of lists or arrays: Python's list repr
(commas; under numpy 2 a list of numpy scalars reads ``[np.float64(0.14), ...]``) or
numpy's ``str`` of an array (spaces, wrapped over several physical lines inside the
quotes). Such a column is read as the vectors, like a Parquet list column. The text is
parsed by pyarrow's compute kernels, a batch at a time, not by Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import DataError, InputUsageError

#: Characters of a cell quoted in a message, at most.
_SHOWN = 60

#: ``np.float64(0.5)`` -> ``0.5``: the repr of numpy scalars in a list, under numpy 2.
_NUMPY_SCALAR = r"np\.\w+\(([^()]*)\)"


def is_list_cell(cell: str) -> bool:
    """Whether a cell holds a bracketed list of values."""
    text = cell.strip()
    return text.startswith("[") and text.endswith("]") or text.startswith("[") and "\n" in text


def choose_list_column(
    features: Sequence[str], first_row: dict[str, str], columns: Sequence[str] | None, path: str
) -> str | None:
    """The column of list cells that holds the vectors (the Parquet rule), or None.

    One such column among the features: it is the vectors (other numeric columns are
    left out, as beside a Parquet list column). Several: ``--columns NAME`` chooses.
    """
    lists = [name for name in features if is_list_cell(first_row.get(name, ""))]
    if not lists:
        return None
    if columns and len(columns) > 1:
        raise DataError(
            f"column {lists[0]!r} holds lists of numbers: it is a whole vector, not one component",
            path=path,
            hint=f"pass --columns {lists[0]} alone",
        )
    if len(lists) > 1:
        raise InputUsageError(
            f"{len(lists)} columns of lists ({', '.join(lists)})", path=path, hint="choose one with --columns NAME"
        )
    return lists[0]


def cell_width(cell: str, column: str, path: str, line: int) -> int:
    """How many values the first row's cell holds (the vectors' length)."""
    return len(_python_values(cell, column, path, line))


def vectors_of(cells: Any, width: int, column: str, start: int, path: str, line_of: Callable[[int], int]) -> np.ndarray:
    """A (rows, width) float64 array from a string column of list cells; an empty cell is a NaN row.

    ``start`` is the data row of the first cell (for messages, as ``line_of`` turns it
    into the file's line). The brackets are trimmed, commas made spaces and the text
    split at whitespace without regular expressions (a third of the CPU time of a regex
    pass); numpy's ``np.float64(...)`` wrappers, seen in the batch's first cell, are
    removed by one. Anything that is not a number (numpy's ``...`` summary too) fails
    the cast, and the slow path then finds and names the cell.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    first = cells[0].as_py() if len(cells) else None
    text = cells
    if first is not None and "(" in first:
        text = pc.replace_substring_regex(text, _NUMPY_SCALAR, r"\1")
    text = pc.replace_substring(pc.utf8_trim(text, characters="[] \t\r\n"), ",", " ")
    if pc.any(pc.equal(text, "")).as_py():  # empty cells, "[]": no values (split would give one "")
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    try:
        lists = pc.ascii_split_whitespace(text).cast(pa.list_(pa.float64()))
    except pa.ArrowInvalid as exc:
        _raise_bad_cell(cells, column, start, path, line_of)
        raise DataError(f"cannot read the lists of column {column!r}: {exc}", path=path) from None
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    missing = lengths == 0  # an empty cell (or "[]"): a missing vector
    bad = np.flatnonzero((lengths != width) & ~missing)
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"line {line_of(start + row)}, column {column!r} holds {int(lengths[row])} values, expected {width} "
            "(from the first row)",
            path=path,
        )
    values = np.full((len(lists), width), np.nan)
    flat = lists.flatten().to_numpy(zero_copy_only=False)
    values[~missing] = np.asarray(flat, dtype=np.float64).reshape(-1, width)
    return values


def _raise_bad_cell(cells: Any, column: str, start: int, path: str, line_of: Callable[[int], int]) -> None:
    """Find the first cell whose values are not numbers, and raise naming its line and value."""
    for row, cell in enumerate(cells.to_pylist()):
        if cell is not None:
            _python_values(cell, column, path, line_of(start + row))


def _python_values(cell: str, column: str, path: str, line: int) -> list[float]:
    """The values of one cell, parsed as :func:`vectors_of` does (for the first row and for errors)."""
    text = re.sub(_NUMPY_SCALAR, r"\1", cell)
    values = []
    for item in re.sub(r"[\[\],]", " ", text).split():
        if item == "...":
            raise DataError(
                f"line {line}, column {column!r}: {_short(cell)} is numpy's summary of a long array ('...'): "
                "the values are not in the file",
                path=path,
                hint="write the vectors as lists (df[col].map(list)) or to Parquet, not numpy's str of an array",
            )
        try:
            values.append(float(item))
        except ValueError:
            raise DataError(
                f"line {line}, column {column!r}: {_short(item)} in {_short(cell)} is not a number", path=path
            ) from None
    return values


def _short(text: str, limit: int = _SHOWN) -> str:
    """A cell for a message: its start, its length when cut."""
    flat = " ".join(text.split())
    return repr(flat) if len(flat) <= limit else f"{flat[: limit - 3]!r}... ({len(text)} characters)"
