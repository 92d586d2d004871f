"""pandas inputs of :func:`cosloss_cli.core.cosine_loss`: read as the files they would be saved as.

A DataFrame follows the rules of a file with a header: columns named like ids (``id``,
``*_id``, ...) are row ids, not components; two frames naming the same columns in
another order are paired by name; names that overlap only in part are refused. The
index is pandas' row id: two indexes that differ are refused rather than paired by
position. A Series of arrays or lists is a column of vectors. Imported only when a
pandas object is passed, so the numpy path never pays for pandas.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from .errors import DataError, ShapeMismatchError
from .readers.names import pair_names, split_ids


class _Side(NamedTuple):
    """One input as numbers, with what pandas knew about its rows and columns."""

    values: np.ndarray
    index: Any = None
    columns: list[Any] | None = None
    ids: np.ndarray | None = None
    id_column: str | None = None


def frame_cosine_loss(
    labels: Any, predictions: Any, axis: int, *, eps: float, normalize: bool, reduction: Literal["none", "mean"]
) -> Any:
    """:func:`cosine_loss` of pandas inputs: a Series of losses keeping the labels' index."""
    import pandas as pd

    from .core import cosine_loss

    left, right = _side(labels, "labels"), _side(predictions, "predictions")
    right = _pair_columns(left, right)
    _check_rows(left, right)
    losses = cosine_loss(left.values, right.values, axis, eps=eps, normalize=normalize, reduction=reduction)
    if not isinstance(losses, np.ndarray) or losses.ndim != 1:
        return losses
    return pd.Series(losses, index=_result_index(left, right, losses.size, axis), name="loss")


def _side(obj: Any, name: str) -> _Side:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return _frame_side(obj, name)
    if isinstance(obj, pd.Series):
        if obj.dtype == object:
            return _Side(_stack(list(obj), name), index=obj.index)
        return _Side(obj.to_numpy(), index=None)  # one vector: its index names components, not rows
    return _Side(np.asarray(obj))


def _frame_side(frame: Any, name: str) -> _Side:
    names = list(frame.columns)
    text_names = [str(n) for n in names]
    split = split_ids(text_names, id_column=None, columns=None, detect=True)
    features = [n for n, text in zip(names, text_names, strict=True) if text in split.features]
    ids = None if split.id_column is None else frame[names[text_names.index(split.id_column)]].to_numpy()
    data = frame[features]
    if len(features) == 1 and data.dtypes.iloc[0].kind == "O":  # one column of vectors
        return _Side(_stack(list(data.iloc[:, 0]), name), frame.index, None, ids, split.id_column)
    for column, dtype in data.dtypes.items():
        if dtype.kind not in "biuf":
            raise DataError(
                f"column {column!r} of the {name} has dtype {dtype}, not numbers",
                hint="drop it, or name it like an id (id, key, *_id) to use it as row ids",
            )
    return _Side(data.to_numpy(), frame.index, features, ids, split.id_column)


def _stack(vectors: list[Any], name: str) -> np.ndarray:
    """A column of arrays or lists as a 2-D array; vectors of another length are named."""
    if not vectors:
        return np.empty((0, 0))
    rows = [np.asarray(v, dtype=np.float64) for v in vectors]
    width = rows[0].shape
    for position, row in enumerate(rows):
        if row.ndim != 1 or row.shape != width:
            raise ShapeMismatchError(
                f"the {name} vector at position {position} has shape {row.shape}, expected {width} (from the first)"
            )
    return np.stack(rows)


def _pair_columns(left: _Side, right: _Side) -> _Side:
    """The predictions' columns in the labels' order when both name the same columns."""
    if left.columns is None or right.columns is None or len(left.columns) != len(right.columns):
        return right
    try:
        order = pair_names(left.columns, right.columns)
    except ValueError as exc:
        raise DataError(str(exc), hint="select the same columns of both frames, in order") from None
    if order is None:
        return right
    return right._replace(values=right.values[:, order], columns=[right.columns[i] for i in order])


def _check_rows(left: _Side, right: _Side) -> None:
    """Rows are paired by position: refuse when both sides have row ids (or indexes) that differ."""
    for what, a, b in (("id column", left.ids, right.ids), ("index", left.index, right.index)):
        if a is None or b is None or len(a) != len(b):
            continue
        differ = np.nonzero(np.asarray(a, dtype=object) != np.asarray(b, dtype=object))[0]
        if differ.size:
            row = int(differ[0])
            hint = (
                "sort both by id" if what == "id column" else "sort both with sort_index(), or reset_index(drop=True)"
            )
            raise DataError(
                f"rows are matched by position, and the {what} values differ at position {row}: "
                f"{a[row]!r} in labels, {b[row]!r} in predictions",
                hint=f"{hint} to pair rows by position",
            )


def _result_index(left: _Side, right: _Side, size: int, axis: int) -> Any:
    """The labels' row index (or ids) for a loss per row; the column names for a loss per column."""
    import pandas as pd

    if axis % 2 == 0 and left.values.ndim == 2:
        return pd.Index(left.columns) if left.columns is not None and len(left.columns) == size else None
    for side in (left, right):
        if side.ids is not None and len(side.ids) == size and _is_default(side.index):
            return pd.Index(side.ids, name=side.id_column)
    for side in (left, right):
        if side.index is not None and len(side.index) == size:
            return side.index
    return None


def _is_default(index: Any) -> bool:
    import pandas as pd

    return index is None or (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1)
