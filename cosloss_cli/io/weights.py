"""Weights for TF's weighted reductions: one float per row, from a file or a labels column.

``--weights FILE`` names a file of any input format holding one weight per row: a
one-column CSV/TSV (a header is optional), a 1-D or (rows, 1) NPY/NPZ array, or a
Parquet file of one numeric column. ``--weight-column NAME`` reads column NAME of the
labels file instead. Weights are small (8 bytes a row), so the blocks the reader
streams are gathered into one array.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.reduction import LineOf, check_weights
from ..errors import DataError, InputUsageError
from . import ReadOptions, Source, open_source

if TYPE_CHECKING:
    from ..core.cosine import Float64Array


def weights_for(weights: Any, labels: Source, loss_shape: tuple[int | None, ...] = (None,)) -> Any:
    """Weights as the library or the CLI gives them, ready for the figures: a weights file read, else as given.

    A file's count is checked against the labels' rows now when the labels know it
    (NPY, Parquet) and the losses are one per row; a CSV's rows are counted as it
    streams. Weights of N-D losses (``loss_shape``) may be laid out as TF takes them:
    the figures check them against that shape.
    """
    if not isinstance(weights, str):
        return weights
    rows = labels.shape[0] if not labels.one_vector else 1
    expected = rows if len(loss_shape) <= 1 else None
    return read_weights(weights, expected_rows=expected, labels_path=labels.path, any_shape=True)


def read_weights(
    path: str,
    options: ReadOptions | None = None,
    *,
    column: str | None = None,
    expected_rows: int | None = None,
    labels_path: str | None = None,
    any_shape: bool = False,
) -> Float64Array:
    """The weights in ``path`` as a float64 1-D array, checked to be finite and >= 0.

    With ``column``, ``path`` is the labels file and its column ``column`` holds the
    weights (CSV/TSV/Parquet; NPY has no columns: a usage error). ``options`` are the
    read options of that file (format, header, NPZ key); an ``id_column`` in a weights
    file is skipped, as in any input. When ``expected_rows`` is given (the rows of
    ``labels_path``), another count of weights is a DataError naming both files.
    A bad weight is named by its 0-based row and, for CSV/TSV on disk, its line.
    With ``any_shape``, an NPY/NPZ array of several values per row (weights per loss of
    N-D inputs, or TF's layouts: see :func:`~cosloss_cli.core.reduction.loss_weights`) is
    returned in its own shape instead of refused.
    """
    options = options or ReadOptions()
    if column is not None:
        options = options._replace(columns=[column], id_column=None)
    source = open_source(path, options)
    try:
        if any_shape and _shaped(source):
            weights = _gather_shaped(source)
        else:
            _check_layout(source, column)
            weights = _gather(source, _line_finder(source, options))
    finally:
        source.blocks.close()
    if expected_rows is not None and weights.size != expected_rows:
        labels = labels_path or "the labels"
        raise DataError(
            f"has {weights.size} weights, but {labels} has {expected_rows} rows",
            path=path,
            hint="give one weight per row",
        )
    return weights


def _check_layout(source: Source, column: str | None) -> None:
    """One value per row: a single column, or a 1-D array (read as one row of values)."""
    if column is not None and source.format in ("npy", "npz"):
        raise InputUsageError(
            f"an {source.format.upper()} file has no columns to take weights from",
            path=source.path,
            hint="pass the weights as a file of their own with --weights",
        )
    if source.one_vector:
        return
    width = source.shape[1] if source.ndim == 2 else None
    if width != 1:
        what = f"{width} values" if width is not None else f"arrays of shape {source.shape[1:]}"
        raise DataError(
            f"holds {what} per row, not one weight",
            path=source.path,
            hint="save the weights as one column or a 1-D array",
        )


def _shaped(source: Source) -> bool:
    """An NPY/NPZ array of more than one value per row: weights laid out like N-D losses."""
    return source.format in ("npy", "npz") and not source.one_vector and source.ndim >= 2 and source.shape[1:] != (1,)


def _gather_shaped(source: Source) -> Float64Array:
    """Every weight of an N-D array, in its shape, checked (a bad one named by its entry)."""
    parts: list[Float64Array] = []
    row = 0
    for block in source.blocks:
        parts.append(check_weights(block.values, block.values.shape, first_row=row, path=source.path))
        row += len(block.values)
    if not parts:
        return np.empty((0, *(int(n or 0) for n in source.shape[1:])), dtype=np.float64)
    weights: Float64Array = np.concatenate(parts)
    return weights


def _gather(source: Source, line_of: LineOf | None) -> Float64Array:
    """All weights of the source, each block checked as it arrives."""
    parts: list[Float64Array] = []
    row = 0
    for values in _weight_blocks(source):
        parts.append(check_weights(values, values.shape, first_row=row, path=source.path, line_of=line_of))
        row += values.size
    weights: Float64Array = np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)
    return weights


def _weight_blocks(source: Source) -> Iterator[np.ndarray]:
    """Each block's weights as a 1-D array (a 1-D array file is one row of all its weights)."""
    for block in source.blocks:
        values = block.values
        yield values.reshape(-1) if source.one_vector else values[:, 0]


def _line_finder(source: Source, options: ReadOptions) -> LineOf | None:
    """Lines are known for CSV/TSV files on disk, found only when a weight is bad (so the CSV reader
    is imported only then, not by every run that reads weights)."""
    if source.format not in ("csv", "tsv"):
        return None
    from .delimited import line_of_row

    return lambda row: line_of_row(source.path, source.format, row, options.header)
