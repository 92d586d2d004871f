"""Two inputs aligned: columns paired by name, rows matched by id or key, shapes and row counts checked."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..base.values import python_scalar
from ..core.cosine import shape_text
from ..errors import DataError, InputUsageError, RowIdsDifferError, RowsOutOfOrderError, ShapeMismatchError
from ..io import Block, Blocks, BlockStream, ReadOptions, Source
from ..io.names import pair_names
from .join import show_id


def match_rows_by_id(
    label_ids: np.ndarray, prediction_ids: np.ndarray, labels: Source, predictions: Source, offset: int = 0
) -> None:
    """Rows are paired by position: refuse when both inputs have ids and they disagree.

    ``offset`` is the row of the first id given (ids are checked block by block, so a
    disagreement stops the run at the first block that shows it). The error names the
    id column both files share, if any: :func:`compute_files` then matches the rows by
    that id instead (see :func:`_matched_by_id`).
    """
    if (label_ids.dtype == object) != (prediction_ids.dtype == object):
        # int64 ids (an Arrow batch's) against Python objects (a text file's, a Parquet
        # row group's): compared as objects, by the rules below.
        label_ids, prediction_ids = label_ids.astype(object), prediction_ids.astype(object)
    if label_ids.dtype == object and prediction_ids.dtype == object and len(label_ids):
        if type(label_ids[0]) is not type(prediction_ids[0]):  # CSV ids are text, Parquet's may be numbers
            label_ids, prediction_ids = label_ids.astype(str).astype(object), prediction_ids.astype(str).astype(object)
    if label_ids.dtype != prediction_ids.dtype:
        # numpy compares int64 with float64 or uint64 through float64, so 2**53 + 1 would
        # equal 2**53.0: as Python objects the comparison is exact.
        label_ids, prediction_ids = label_ids.astype(object), prediction_ids.astype(object)
    differ = np.nonzero(label_ids != prediction_ids)[0]
    if not differ.size:
        return
    at = int(differ[0])
    row = offset + at
    label_id, prediction_id = (python_scalar(ids[at]) for ids in (label_ids, prediction_ids))
    raise RowIdsDifferError(
        f"rows are matched by position, and their ids differ: {labels.where(row)} of labels has id "
        f"{label_id!r}, {predictions.where(row)} of {predictions.path} has {prediction_id!r}",
        path=labels.path,
        hint=_join_hint(labels, predictions),
        shared_id_column=_shared_id_column(labels, predictions),
    )


def shared_keys(labels: Source, predictions: Source) -> list[tuple[str, int, int]]:
    """The key columns both inputs have: (name, place in the labels' ``keys``, in the predictions').

    Compared even when both files have ids that agree: ids that repeat (a class, a
    document with several rows) agree in more than one order.
    """
    theirs = {name: index for index, name in enumerate(predictions.key_columns)}
    return [(name, index, theirs[name]) for index, name in enumerate(labels.key_columns) if name in theirs]


def match_rows_by_keys(
    lblock: Block, pblock: Block, shared: list[tuple[str, int, int]], labels: Source, predictions: Source, offset: int
) -> None:
    """Rows are paired by position: refuse when a column both files have besides the vectors differs.

    The same text in the same order changes nothing. A difference is evidence that the
    rows are in different orders: :func:`compute_opened` then matches them by that column
    when its values are unique on both sides (:func:`_matched_by_key`), else refuses.
    """
    assert lblock.keys is not None and pblock.keys is not None
    for name, mine, theirs in shared:
        at = _first_difference(lblock.keys[mine], pblock.keys[theirs])
        if at is None:
            continue
        row = offset + at
        raise RowsOutOfOrderError(
            f"rows are matched by position, and column {name!r} (in both files, not a vector component) differs: "
            f"{labels.where(row)} of labels has {show_id(lblock.keys[mine][at].as_py())}, "
            f"{predictions.where(row)} of {predictions.path} has {show_id(pblock.keys[theirs][at].as_py())}",
            path=labels.path,
            hint=f"if the rows are in different orders, match them by their id column with --join-on NAME or "
            f"--id-column NAME; if {name!r} is not a row id, leave it out with --exclude-columns {name}",
            shared_id_column=name,
        )


def _first_difference(mine: Any, theirs: Any) -> int | None:
    """The first position where two Arrow arrays of one block differ (text of another type compared as text)."""
    if mine.type == theirs.type and mine.equals(theirs):
        return None
    left, right = mine.to_pylist(), theirs.to_pylist()
    if mine.type != theirs.type:
        left = [None if value is None else str(value) for value in left]
        right = [None if value is None else str(value) for value in right]
    for position, (a, b) in enumerate(zip(left, right, strict=True)):
        if a != b and not (a != a and b != b):  # NaN beside NaN is the same missing value
            return position
    return None


def _shared_id_column(labels: Source, predictions: Source) -> str | None:
    """The labels' id column, if the predictions have a column of that name too."""
    column = labels.id_column
    if column is None:
        return None
    if column == predictions.id_column or column in (predictions.file_columns or ()):
        return column
    return None


def _join_hint(labels: Source, predictions: Source) -> str:
    """What to do when rows do not line up: match them by id if both files have ids."""
    if labels.id_column and labels.id_column == predictions.id_column:
        return f"match the rows by id with --join-on {labels.id_column}, or sort both files by id"
    if labels.has_ids and predictions.has_ids:
        return (
            f"the id columns are named {labels.id_column!r} and {predictions.id_column!r}: give them one name "
            "and match the rows with --join-on NAME, or sort both files by id"
        )
    return "both files must hold the same number of vectors"


def pair_columns(labels: Source, predictions: Source, read_options: ReadOptions | None) -> tuple[Source, Source]:
    """Pair the vector components by name when both inputs name them (explicit ``columns`` win).

    The same names in another order: the predictions' columns are reordered to the
    labels' (a note says so). Disjoint names: by position. Names that overlap in part:
    a refusal naming the differences, since neither pairing can be trusted.
    """
    if (read_options is not None and read_options.columns) or not (labels.named and predictions.named):
        return labels, predictions
    assert labels.columns is not None and predictions.columns is not None
    try:
        order = pair_names(labels.columns, predictions.columns)
    except ValueError as exc:
        raise DataError(
            str(exc),
            path=f"{labels.path} and {predictions.path}",
            hint="name the columns to compare, in order, with --columns A,B,C",
        ) from None
    if order is None:
        return labels, predictions
    note = f"{predictions.path}: columns paired with the labels' by name (they are in another order)"
    return labels, predictions._replace(
        blocks=_Reordered(predictions.blocks, order), columns=labels.columns, notes=(*predictions.notes, note)
    )


class _Reordered(Blocks):
    """Blocks with their columns put in another order; keeps the reader's length hint."""

    __slots__ = ("_blocks", "_order")

    def __init__(self, blocks: BlockStream, order: list[int]):
        self._blocks = blocks
        self._order = np.asarray(order, dtype=np.intp)

    def __next__(self) -> Block:
        block = next(self._blocks)
        return Block(block.values[:, self._order], block.ids, block.weights, block.keys)

    def __length_hint__(self) -> int:
        return operator.length_hint(self._blocks)

    def close(self) -> None:
        self._blocks.close()


def check_columns_and_ids(labels: Source, predictions: Source, read_options: ReadOptions | None) -> None:
    if read_options is None:
        return
    if read_options.id_column and not (labels.has_ids or predictions.has_ids):
        raise InputUsageError(
            f"neither input has a column named {read_options.id_column!r} for --id-column",
            hint=_columns_hint(labels, predictions),
        )
    if read_options.columns and labels.columns is None and predictions.columns is None:
        raise InputUsageError("--columns needs inputs with named columns (CSV, TSV or Parquet)")
    if read_options.exclude_columns:
        present = {*(labels.file_columns or ()), *(predictions.file_columns or ())}
        missing = [name for name in read_options.exclude_columns if name not in present]
        if missing:
            raise InputUsageError(
                f"neither input has a column named {missing[0]!r} for --exclude-columns",
                hint=_columns_hint(labels, predictions),
            )


def _columns_hint(labels: Source, predictions: Source) -> str:
    named = labels.columns or predictions.columns
    return f"columns: {', '.join(named[:12])}" if named else "NPY/NPZ inputs have no named columns"


def source_shape_text(source: Source) -> str:
    return shape_text(source.shape[1:] if source.one_vector else source.shape)


def check_shapes(labels: Source, predictions: Source, same_rows: bool = True) -> None:
    """Compare what is known before reading: rank, vector shape, row count if known and ``same_rows``."""
    same_rank = labels.ndim == predictions.ndim and labels.one_vector == predictions.one_vector
    same_rest = labels.shape[1:] == predictions.shape[1:]
    rows_known = same_rows and labels.shape[0] is not None and predictions.shape[0] is not None
    if not same_rank or not same_rest or (rows_known and labels.shape[0] != predictions.shape[0]):
        raise ShapeMismatchError(
            f"shapes differ: labels {labels.path} {source_shape_text(labels)}, "
            f"predictions {predictions.path} {source_shape_text(predictions)}",
            hint=_join_hint(labels, predictions)
            if same_rest and same_rank
            else "both files must hold the same number of vectors of the same length",
        )


def aligned(
    labels: Iterator[Block], predictions: Iterator[Block], lsource: Source, psource: Source
) -> Iterator[tuple[Block, Block]]:
    """Pair up blocks of equal length from two streams whose block sizes differ."""
    lpending: Block | None = None
    ppending: Block | None = None
    while True:
        if lpending is None or len(lpending) == 0:
            lpending = next(labels, None)
        if ppending is None or len(ppending) == 0:
            ppending = next(predictions, None)
        if lpending is None or ppending is None:
            if lpending is not None or ppending is not None:
                _raise_row_count_mismatch(lpending, ppending, labels, predictions, lsource, psource)
            return
        n = min(len(lpending), len(ppending))
        if n == 0:
            continue
        yield lpending.slice(0, n), ppending.slice(0, n)
        lpending = lpending.slice(n, len(lpending))
        ppending = ppending.slice(n, len(ppending))


def _raise_row_count_mismatch(
    lpending: Block | None,
    ppending: Block | None,
    labels: Iterator[Block],
    predictions: Iterator[Block],
    lsource: Source,
    psource: Source,
) -> None:
    """One input ran out first: count what is left of the other for the message."""
    longer, rest, pending = (
        ("labels", labels, lpending) if lpending is not None else ("predictions", predictions, ppending)
    )
    extra = (len(pending) if pending else 0) + sum(len(b) for b in rest)
    raise ShapeMismatchError(
        f"row counts differ: {longer} has {extra} more rows than the other input "
        f"(labels {lsource.path}, predictions {psource.path})",
        hint=_join_hint(lsource, psource),
    )
