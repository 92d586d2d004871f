"""Rows paired by position, checked: ids or a shared key column that disagree stop the run.

Every block of a pair whose rows are not matched by id (``--join-on``) passes here, the
small NPY pair's too; the columns and shapes are :mod:`cosloss_cli.pairing.align`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base.values import python_scalar, show_id
from ..errors import RowIdsDifferError, RowsOutOfOrderError
from ..io import Block, Source


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
        hint=join_hint(labels, predictions),
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


def join_hint(labels: Source, predictions: Source) -> str:
    """What to do when rows do not line up: match them by id if both files have ids."""
    if labels.id_column and labels.id_column == predictions.id_column:
        return f"match the rows by id with --join-on {labels.id_column}, or sort both files by id"
    if labels.has_ids and predictions.has_ids:
        return (
            f"the id columns are named {labels.id_column!r} and {predictions.id_column!r}: give them one name "
            "and match the rows with --join-on NAME, or sort both files by id"
        )
    return "both files must hold the same number of vectors"
