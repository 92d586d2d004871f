"""Arrow IPC stream files, as Hugging Face's ``save_to_disk`` writes its shards.

Only the dataset layer opens these (the files of a Hugging Face folder, named in its
``state.json``): a stream has no footer, so the row count is known at the end, and its
record batches are cut into blocks by the Parquet reader's own column rules (one list
column of numbers, or numeric columns; ids and weights beside them).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from ..errors import DataError
from .base import Block, ReadOptions, Source, rows_per_block
from .names import split_ids, without_weight_column
from .parquet import (
    _choose_columns,
    _column_values,
    _is_numeric,
    _list_values,
    _object_ids,
    _pandas_index_columns,
    _weights,
)
from .streams import check_readable, file_size


def open_arrow_stream(path: str, options: ReadOptions) -> Source:
    """Open an Arrow IPC stream file (local: memory-mapped; a URL: read as a stream)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    check_readable(path, options.storage_options)
    try:
        if "://" in path:
            from ..storage import open_input

            handle: Any = open_input(path, options.storage_options)
        else:
            handle = pa.memory_map(path)
        reader = ipc.open_stream(handle)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"not a readable Arrow stream: {exc}", path=path, hint="was it fully written?") from None
    schema = reader.schema
    names = list(schema.names)
    usable = without_weight_column(names, options.weight_column, path, options.partition_keys)
    split = split_ids(
        usable,
        id_column=options.id_column,
        columns=options.columns,
        detect=options.detect_ids,
        index_columns=_pandas_index_columns(schema),
        path=path,
    )
    id_column = split.id_column
    data = [n for n in usable if n != id_column and n not in split.others]
    list_column, features, left_out, column_notes = _choose_columns(schema, options, path, data)
    key_columns = [*split.others, *left_out]
    weight_column = options.weight_column
    if weight_column is not None and not _is_numeric(schema.field(weight_column).type):
        raise DataError(
            f"the weight column {weight_column!r} has type {schema.field(weight_column).type}, not numbers", path=path
        )
    batches = _batches(reader, path)
    read: list[Any] = []
    width = len(features)
    if list_column is not None:
        width, read = _list_width(batches, schema, list_column, path)
    step = rows_per_block(width, options.block_bytes)

    def blocks() -> Iterator[Block]:
        start = 0
        try:
            for batch in itertools.chain(read, batches):
                if batch.num_rows == 0:
                    continue
                if list_column:
                    values = _list_values(batch.column(list_column), width, start, path)
                else:
                    values = _column_values(batch, features)
                ids = _object_ids(batch.column(id_column)) if id_column else None
                weights = _weights(batch.column(weight_column)) if weight_column else None
                keys = tuple(batch.column(name) for name in key_columns) if key_columns else None
                start += batch.num_rows
                for first in range(0, batch.num_rows, step):
                    yield Block(
                        values[first : first + step],
                        None if ids is None else ids[first : first + step],
                        None if weights is None else weights[first : first + step],
                        None if keys is None else tuple(key[first : first + step] for key in keys),
                    )
        finally:
            handle.close()

    return Source(
        path,
        "arrow",
        (None, width),
        blocks(),
        columns=[list_column] if list_column else features,
        has_ids=id_column is not None,
        has_weights=weight_column is not None,
        size_bytes=file_size(path),
        named=list_column is None,
        id_column=id_column,
        notes=split.notes + column_notes,
        file_columns=tuple(names),
        key_columns=tuple(key_columns),
    )


def _batches(reader: Any, path: str) -> Iterator[Any]:
    import pyarrow as pa

    try:
        yield from reader
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read a record batch: {exc}", path=path, hint="was it fully written?") from None


def _list_width(batches: Iterator[Any], schema: Any, column: str, path: str) -> tuple[int, list[Any]]:
    """The vector length (the type's, or the first non-null row's) and the batches read to find it."""
    import pyarrow.types as t

    arrow_type = schema.field(column).type
    if t.is_fixed_size_list(arrow_type):
        return int(arrow_type.list_size), []
    read: list[Any] = []
    for batch in batches:
        read.append(batch)
        lengths = batch.column(column).drop_null().value_lengths()
        if len(lengths):
            return int(lengths[0].as_py()), read
    if not any(batch.num_rows for batch in read):
        raise DataError("has no rows: nothing to compare", path=path)
    raise DataError(f"every vector in list column {column!r} is null: nothing to compare", path=path)
