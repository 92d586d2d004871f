"""The ``--group-by`` columns of an input: only those columns, in the order its rows are read.

An evaluation team wants the loss per language, per source or per bucket. The group keys
are read from the labels (or, when only they have it, the predictions) with the library
made for the format, only those columns (a Parquet or Arrow file reads no vector data for
them), in the same row order as the vectors, hive keys of a dataset included; the
statistics of the groups (:mod:`cosloss_cli.stats.groups`) receive them as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputUsageError
from .base import ReadOptions
from .dataset import dataset_of
from .formats import detect_format
from .storage import is_url, open_input

#: The formats whose columns can be read by name.
KEYED_FORMATS = ("csv", "tsv", "parquet", "arrow", "feather", "ipc", "jsonl", "json")


def read_key_columns(path: str, names: Sequence[str], options: ReadOptions) -> dict[str, np.ndarray] | None:
    """The columns ``names`` of the file or dataset ``path``, in its row order; None if it has none of them.

    A dataset's files are read in the order its rows are read (``Dataset.files``; hive
    keys count as columns). Raises :class:`InputUsageError` for a format without named columns.
    """
    dataset = dataset_of(path, options) if path != "-" else None
    files = [(file.path, dict(file.partition)) for file in dataset.files] if dataset else [(path, {})]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    found: set[str] = set()
    for file_path, partition in files:
        table = _read_columns(file_path, names, options)
        rows = table.num_rows
        for name in names:
            if name in table.column_names:
                parts[name].append(_values(table.column(name)))
                found.add(name)
            elif name in partition:
                value = partition[name]
                parts[name].append(np.full(rows, value, dtype=object))
                found.add(name)
            else:
                parts[name].append(np.full(rows, None, dtype=object))
    if not found:
        return None
    missing = [name for name in names if name not in found]
    if missing:
        raise InputUsageError(f"no column named {missing[0]!r} for --group-by", path=path)
    return {name: _joined(parts[name]) for name in names}


def _read_columns(path: str, names: Sequence[str], options: ReadOptions) -> Any:
    """A pyarrow table of the columns of ``names`` that one file has (zero columns: its row count only)."""
    import pyarrow as pa

    fmt = detect_format(path, options.input_format)
    if fmt not in KEYED_FORMATS:
        raise InputUsageError(
            f"--group-by reads a column by name, and a {fmt.upper()} file has no named columns",
            path=path,
            hint="give the group of each row in a CSV, Parquet or Arrow file",
        )
    source = _openable(path, options)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(source)
        present = [name for name in names if name in parquet.schema_arrow.names]
        if not present:
            return pa.table({"_rows": pa.nulls(parquet.metadata.num_rows)}).select([])
        return parquet.read(columns=present)
    if fmt in ("csv", "tsv"):
        import pyarrow.csv as pacsv

        delimiter = options.delimiter or ("\t" if fmt == "tsv" else ",")
        header = pacsv.open_csv(source, parse_options=pacsv.ParseOptions(delimiter=delimiter)).schema.names
        if delimiter == "," and len(header) == 1 and ";" in header[0]:
            delimiter, header = ";", header[0].split(";")
        present = [name for name in names if name in header]
        # Only the key columns are converted (the vectors' pass converts the rest); an
        # empty cell is a missing key. One column is converted even without keys: the rows.
        convert = pacsv.ConvertOptions(strings_can_be_null=True, include_columns=present or header[:1])
        parse = pacsv.ParseOptions(delimiter=delimiter)
        table = pacsv.read_csv(_openable(path, options), parse_options=parse, convert_options=convert)
        return table.select(present)
    if fmt in ("arrow", "feather", "ipc"):
        import pyarrow.feather as feather

        table = feather.read_table(source, memory_map=isinstance(source, str))
        return table.select([name for name in names if name in table.column_names])
    import pyarrow.json as pajson

    table = pajson.read_json(source)
    return table.select([name for name in names if name in table.column_names])


def excluding(options: ReadOptions, names: Sequence[str]) -> ReadOptions:
    """``options`` leaving the columns ``names`` out of the vectors (a hive key is never one anyway)."""
    partition = set(options.partition_keys)
    extra = [name for name in names if name not in partition and name not in (options.exclude_columns or ())]
    return options._replace(exclude_columns=[*(options.exclude_columns or []), *extra] or None)


def excluding_both(
    label_options: ReadOptions, prediction_options: ReadOptions | None, names: Sequence[str]
) -> tuple[ReadOptions, ReadOptions]:
    """Both sides' options leaving the group columns out of their vectors.

    The key is read from one side, but a predictions file written from the same frame as
    the labels holds the group column too: on either side it is a key, never a vector
    component, nor a text column to note as "not a vector component". Excluding a name
    that one side lacks is no error as long as the other side has it.
    """
    return excluding(label_options, names), excluding(prediction_options or label_options, names)


def _openable(path: str, options: ReadOptions) -> Any:
    if "://" in path:
        if is_url(path):
            return open_input(path, options.storage_options, random_access=True)
    return path


def _values(column: Any) -> np.ndarray:
    """A pyarrow column as numpy: numbers stay numbers, text and nulls become objects."""
    import pyarrow as pa

    # Numbers and booleans without nulls straight from the array's data buffer: pyarrow's
    # to_numpy imports pandas (1 s), which a numeric key never needs.
    if column.null_count == 0 and (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return _buffer_values(column.combine_chunks())
    if column.null_count == 0 and pa.types.is_boolean(column.type):
        import pyarrow.compute as pc

        return _buffer_values(pc.cast(column.combine_chunks(), pa.uint8())).astype(bool)
    return np.array(column.to_pylist(), dtype=object)


def _buffer_values(array: Any) -> np.ndarray:
    """A null-free pyarrow array of fixed-width numbers as a numpy view of its data buffer."""
    dtype = np.dtype(array.type.to_pandas_dtype())
    if len(array) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=object)
    if all(part.dtype == parts[0].dtype and part.dtype != object for part in parts):
        return np.concatenate(parts)
    return np.concatenate([part.astype(object) for part in parts])


def key_columns_for(
    names: Sequence[str],
    labels: str,
    predictions: Sequence[str],
    read_options: ReadOptions,
    prediction_read_options: ReadOptions | None,
    *,
    joined: bool,
) -> tuple[dict[str, np.ndarray], str]:
    """The key columns from the labels, else from the (first) predictions file; and which side they came from.

    With rows matched by id the predictions' rows are not the losses' rows: their
    columns cannot be used then.
    """
    columns = read_key_columns(labels, names, read_options)
    if columns is not None:
        return columns, "labels"
    if not joined and predictions:
        columns = read_key_columns(predictions[0], names, prediction_read_options or read_options)
        if columns is not None:
            return columns, "predictions"
    where = "the labels" if joined else "the labels or the predictions"
    raise InputUsageError(
        f"no column named {names[0]!r} for --group-by in {where}",
        hint="with --join-on the group column must be in the labels" if joined else None,
    )
