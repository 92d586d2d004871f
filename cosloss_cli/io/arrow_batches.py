"""Arrow record batches as a Source: the Parquet reader's rules for any format read into Arrow.

JSON Lines, JSON arrays and Arrow IPC files are read by pyarrow into record batches, as
Parquet row groups are. Their columns are chosen as the Parquet reader chooses them (one
list column of numbers is the vectors, else the numeric columns; ids, ``--columns``,
``--weight-column`` alike), and each batch becomes blocks with the Parquet reader's own
functions: one set of rules, so a file reads the same whichever of these formats holds it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterator
from typing import Any

from ..errors import DataError
from .base import Block, GeneratedBlocks, ReadOptions, Source, rows_per_block
from .formats import short
from .parquet import batch_blocks, column_values, list_values, schema_columns

#: The errors reading a batch may raise (pyarrow's are added when it is imported).
_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError)


def batches_source(
    path: str,
    fmt: str,
    schema: Any,
    batches: Iterator[Any],
    rows: int | None,
    options: ReadOptions,
    *,
    size_bytes: int | None = None,
    where: Callable[[int], str] | None = None,
    line_of: Callable[[int], int] | None = None,
    vector_required: bool = False,
    close: Callable[[], None] | None = None,
    explain: Callable[[BaseException, int], DataError] | None = None,
) -> Source:
    """A Source over ``batches`` (record batches of ``schema``), cut into blocks of rows.

    ``rows``: the row count when the format knows it up front (else None). ``where``
    names a 0-based row in errors (``line 12``). ``vector_required``: a row without a
    vector (a null list: a JSON record without the field) is an error naming it, not a
    row of NaN. ``explain`` turns a reading error, with the rows read before it, into the
    DataError to raise. ``close`` is called when the blocks end or are dropped.
    """
    import pyarrow as pa

    errors = (*_READ_ERRORS, pa.ArrowException)
    name_of = where or (lambda row: f"row {row}")

    def fail(exc: BaseException, done: int) -> DataError:
        if explain is not None:
            return explain(exc, done)
        return DataError(f"cannot read the data: {short(str(exc))}", path=path)

    try:
        id_column, list_column, features, key_columns, column_notes = schema_columns(schema, options, path)
    except BaseException:
        if close is not None:
            close()
        raise
    weight_column = options.weight_column
    held: list[Any] = []
    if list_column is None:
        width = len(features)
    else:
        try:
            width = _first_width(schema, list_column, batches, held, path)
        except errors as exc:
            if close is not None:
                close()
            raise fail(exc, 0) from None
        except BaseException:
            if close is not None:
                close()
            raise
    step = rows_per_block(width, options.block_bytes)

    def blocks() -> Generator[Block, None, None]:
        start = 0
        try:
            for batch in itertools.chain(held, batches):
                if batch.num_rows == 0:
                    continue
                if list_column:
                    column = batch.column(list_column)
                    if vector_required and column.null_count:
                        row = start + _first_null(column)
                        raise DataError(f"{name_of(row)} has no vector {list_column!r}", path=path)
                    values = list_values(column, width, start, path, where)
                else:
                    values = column_values(batch, features)
                cut_blocks = batch_blocks(batch, values, id_column, weight_column, key_columns, step)
                start += batch.num_rows
                yield from cut_blocks
        except errors as exc:
            raise fail(exc, start) from None
        finally:
            held.clear()
            if close is not None:
                close()

    return Source(
        path,
        fmt,
        (rows, width),
        GeneratedBlocks(blocks()),
        columns=[list_column] if list_column else features,
        has_ids=id_column is not None,
        has_weights=weight_column is not None,
        size_bytes=size_bytes,
        named=list_column is None,
        id_column=id_column,
        notes=column_notes,
        line_of=line_of,
        file_columns=tuple(schema.names),
        key_columns=tuple(key_columns),
    )


def _first_width(schema: Any, column: str, batches: Iterator[Any], held: list[Any], path: str) -> int:
    """The vector length: from a fixed-size list type, else the first non-null row.

    The batches read to find it are kept in ``held``, to be yielded first: a stream is
    read once.
    """
    import pyarrow.types as t

    arrow_type = schema.field(column).type
    if t.is_fixed_size_list(arrow_type):
        return int(arrow_type.list_size)
    rows = 0
    for batch in batches:
        held.append(batch)
        rows += batch.num_rows
        values = batch.column(column)
        if values.null_count < len(values):
            valid = values.drop_null() if values.null_count else values
            return int(len(valid[0].values))
    if rows == 0:
        raise DataError("has no rows: nothing to compare", path=path)
    raise DataError(f"every vector in {column!r} is null: nothing to compare", path=path)


def _first_null(column: Any) -> int:
    """The index of the first null of an Arrow array that has one."""
    import numpy as np

    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False))
    return int(np.argmin(valid))
