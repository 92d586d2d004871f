"""The library's :func:`cosine_loss`: arrays straight to the core's sums; pandas, polars and pyarrow
objects read as the files they would be saved as.

A DataFrame follows the CLI's rules for a file with a header, one decision shared with
the readers (:func:`~cosloss_cli.io.names.choose_data_columns`): columns named like
ids (``id``, ``*_id``, ...) are row ids, not components; a column of vectors (lists or
arrays, pyarrow-backed ``list``/``fixed_size_list`` columns) is used alone; columns that
are not numbers (text, dates...) are left out with a :class:`~cosloss_cli.errors.LeftOutWarning`;
two frames naming the same columns in another order are paired by name; names that
overlap only in part are refused. Rows are paired by position while their ids (an id
column of the same name on both sides, or the indexes) agree; when both list the same
ids in different orders, the rows are matched by id, and every row must find its
partner, else the frames are refused. A Series of arrays or lists is a column of
vectors. polars DataFrames/Series (``Array`` and ``List`` columns too) and pyarrow
Tables, RecordBatches and arrays are read through pyarrow as the frames they convert
to. Imported only when such an object is passed, so the numpy path never pays for pandas.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from ..core.cosine import DEFAULT_EPS, block_sums, losses_from_sums, validate_pair
from ..core.params import REDUCTIONS, Reduction, check_axis, check_choice, check_eps, check_flag
from ..errors import DataError, LeftOutWarning, ShapeMismatchError
from .names import VECTORS, choose_data_columns, pair_names, split_ids

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike

    from ..core.cosine import Float64Array


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

    left, right = _side(as_pandas(labels), "labels"), _side(as_pandas(predictions), "predictions")
    right = _pair_columns(left, right)
    right = _match_rows(left, right)
    losses = cosine_loss(left.values, right.values, axis, eps=eps, normalize=normalize, reduction=reduction)
    if not isinstance(losses, np.ndarray) or losses.ndim != 1:
        return losses
    return pd.Series(losses, index=_result_index(left, right, losses.size, axis), name="loss")


def as_pandas(obj: Any) -> Any:
    """polars and pyarrow objects as the pandas object they convert to; list columns stay pyarrow-backed.

    pyarrow-backed list columns are turned into one 2-D array without a Python object
    per row (:func:`_arrow_vectors`); anything else is returned as it is.
    """
    module = type(obj).__module__.partition(".")[0]
    if module == "polars":
        obj = obj.to_arrow()
        module = "pyarrow"
    if module != "pyarrow":
        return obj
    import pandas as pd
    import pyarrow as pa

    def mapper(arrow_type: Any) -> Any:
        return pd.ArrowDtype(arrow_type) if _is_arrow_list(arrow_type) else None

    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return obj.to_pandas(types_mapper=mapper)
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        if _is_arrow_list(obj.type):
            return pd.Series(
                pd.arrays.ArrowExtensionArray(pa.chunked_array([obj]) if isinstance(obj, pa.Array) else obj)
            )
        return obj.to_pandas()
    return obj


def _is_arrow_list(arrow_type: Any) -> bool:
    import pyarrow.types as t

    return bool(t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type))


def _side(obj: Any, name: str) -> _Side:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return _frame_side(obj, name)
    if isinstance(obj, pd.Series):
        if _column_kind(obj) == VECTORS:
            return _Side(_vectors(obj, name), index=obj.index)
        return _Side(obj.to_numpy(), index=None)  # one vector: its index names components, not rows
    return _Side(np.asarray(obj))


def _column_kind(column: Any) -> str:
    """numpy's ``dtype.kind`` of a column, or :data:`VECTORS` for lists or arrays in each cell (or a pyarrow list)."""
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.ArrowDtype) and _is_arrow_list(dtype.pyarrow_dtype):
        return VECTORS
    if dtype.kind == "O":
        first = next((v for v in column if v is not None and not (isinstance(v, float) and v != v)), None)
        if isinstance(first, (list, tuple, np.ndarray)):
            return VECTORS
    return str(dtype.kind)


def _frame_side(frame: Any, name: str) -> _Side:
    names = list(frame.columns)
    text_names = [str(n) for n in names]
    split = split_ids(text_names, id_column=None, columns=None, detect=True)
    by_text = {text: n for n, text in zip(names, text_names, strict=True) if text in split.features}
    ids = None if split.id_column is None else frame[names[text_names.index(split.id_column)]].to_numpy()
    kinds = {text: _column_kind(frame[n]) for text, n in by_text.items()}
    type_names = {text: str(frame[n].dtype) for text, n in by_text.items()}
    try:  # one decision for files and frames: text left out, integers beside floats refused
        chosen = choose_data_columns(list(by_text), kinds, type_names=type_names)
    except ValueError as exc:
        raise DataError(f"the {name}: {exc}", hint="select the columns to compare, e.g. frame[[...]]") from None
    except DataError as exc:
        raise DataError(f"the {name}: {exc.message}", hint=exc.hint) from None
    if chosen.left_out:
        shown = ", ".join(f"{text!r} ({type_names[text]})" for text in chosen.left_out)
        warnings.warn(
            f"cosloss: columns of the {name} left out, as the CLI leaves them out: {shown}",
            LeftOutWarning,
            stacklevel=5,  # the caller of cosine_loss
        )
    if chosen.vectors is not None:
        return _Side(_vectors(frame[by_text[chosen.vectors]], name), frame.index, None, ids, split.id_column)
    features = [by_text[text] for text in chosen.features]
    return _Side(frame[features].to_numpy(), frame.index, features, ids, split.id_column)


def _vectors(column: Any, name: str) -> np.ndarray:
    """A column of vectors as a 2-D array (pyarrow-backed ones without a Python object per row)."""
    found = _arrow_vectors(column, name)
    return found if found is not None else _stack(list(column), name)


def _arrow_vectors(column: Any, name: str) -> np.ndarray | None:
    """A pyarrow-backed list column as a 2-D array, from its buffers; None for any other column."""
    import pandas as pd

    if not isinstance(column.dtype, pd.ArrowDtype) or not _is_arrow_list(column.dtype.pyarrow_dtype):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    lists = pa.chunked_array(column.array.__arrow_array__()).combine_chunks()
    value_type = lists.type.value_type
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type)):
        raise DataError(f"the {name} column {column.name!r} holds {value_type}, not numbers")
    if lists.null_count:
        position = int(np.flatnonzero(lists.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"the {name} vector at position {position} is missing (null)")
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        position = int(np.flatnonzero(lengths != lengths[0])[0])
        raise ShapeMismatchError(
            f"the {name} vector at position {position} has shape ({lengths[position]},), "
            f"expected ({lengths[0]},) (from the first)"
        )
    width = int(lengths[0]) if len(lengths) else 0
    values = lists.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values).reshape(len(lists), width)


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


def _match_rows(left: _Side, right: _Side) -> _Side:
    """The predictions' rows in the labels' order: by position while their ids agree, else by id.

    As the CLI does with files: when both sides have an id column of the same name (or
    both have indexes) listing the same ids in another order, the predictions' rows are
    taken in the labels' order of those ids. Every row must find its partner, once:
    otherwise (ids missing on a side, or repeated) the frames are refused, naming where
    the ids first differ.
    """
    for what, a, b in (("id column", left.ids, right.ids), ("index", left.index, right.index)):
        if a is None or b is None or len(a) != len(b):
            continue
        differ = np.nonzero(np.asarray(a, dtype=object) != np.asarray(b, dtype=object))[0]
        if not differ.size:
            return right  # the rows agree: paired by position
        row = int(differ[0])
        where = f"the {what} values differ at position {row} ({a[row]!r} in labels, {b[row]!r} in predictions)"
        hint = "sort both by id" if what == "id column" else "sort both with sort_index()"
        if what == "id column" and left.id_column != right.id_column:  # as the CLI: never matched by them
            raise DataError(
                f"rows are matched by position, and {where}, in columns of different names "
                f"({left.id_column!r} and {right.id_column!r})",
                hint=f"{hint} to pair rows by position, or give both id columns one name",
            )
        order, problem = _partners(a, b)
        if order is None:
            raise DataError(
                f"{where}, and matching the rows by them leaves {problem}",
                hint=f"{hint}, or give each row one partner",
            )
        index = None if right.index is None else right.index[order]
        ids = None if right.ids is None else right.ids[order]
        return right._replace(values=right.values[order], index=index, ids=ids)
    return right


def _partners(a: Any, b: Any) -> tuple[np.ndarray | None, str]:
    """The position in ``b`` of each id of ``a`` when each has exactly one partner, else None and why."""
    import pandas as pd

    left, right = pd.Index(np.asarray(a, dtype=object)), pd.Index(np.asarray(b, dtype=object))
    for side, index in (("labels", left), ("predictions", right)):
        if not index.is_unique:
            return None, f"the id {index[index.duplicated()][0]!r} twice in the {side}"
    order = right.get_indexer(left)
    if (order < 0).any():
        missing = left[order < 0]
        return None, f"{missing.size} label row(s) without a partner (ids {', '.join(map(repr, missing[:3]))})"
    return order, ""


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


def cosine_loss(
    labels: ArrayLike,
    predictions: ArrayLike,
    axis: int = -1,
    *,
    eps: float = DEFAULT_EPS,
    normalize: bool = True,
    reduction: Reduction = "none",
) -> Float64Array | float | pd.Series:
    """Cosine distance loss between ``labels`` and ``predictions`` along ``axis``.

    pandas inputs are read as the files they would be saved as, by the CLI's rules: a
    DataFrame's columns named like ids (``id``, ``*_id``...) are row ids, columns that
    are not numbers are left out (with a ``LeftOutWarning``), two frames naming the same
    columns are paired by name, and a Series of arrays or lists is a column of vectors.
    Their losses come back as a Series keeping the labels' index (or ids); rows whose
    indexes or ids (of one column name) list the same ids in another order are matched
    by them, every row to exactly one partner, else refused. polars and pyarrow objects
    are read as the pandas objects they convert to (see :mod:`cosloss_cli.io.frames`).

    Parameters
    ----------
    labels, predictions : array_like
        Real-valued arrays of the same shape.
    axis : int, default -1
        The axis holding the vector entries; negative counts from the end.
    eps : float, default 1e-12
        Squared norms are raised to at least ``eps`` (TensorFlow's l2_normalize).
    normalize : bool, default True
        Normalize the vectors first. ``False`` gives TF's raw ``1 - sum(L*P)``.
    reduction : {"none", "mean"}
        ``"none"`` returns one loss per vector pair (the input shape without
        ``axis``); ``"mean"`` returns their mean as a float.

    Returns
    -------
    numpy.ndarray or float or pandas.Series
        Losses in [0, 2] (float64); NaN where an input is NaN or infinite. A Series
        (keeping the labels' index or ids) for pandas inputs.

    Raises
    ------
    ShapeMismatchError
        The two shapes differ.
    DataError
        An input is not real numbers (complex, text, object) or is 0-d.
    InputUsageError
        ``axis`` is out of range for the data.
    ParameterError
        ``axis``, ``eps``, ``normalize`` or ``reduction`` is not an allowed value;
        checked before any arithmetic.

    Examples
    --------
    >>> labels = [[1, 4, 5], [5, 5, 7]]
    >>> predictions = [[3, 2, 5], [3, 2, 7]]
    >>> cosine_loss(labels, predictions, axis=1)
    array([0.09887289, 0.05546452])
    >>> round(cosine_loss(labels, predictions, axis=1, reduction="mean"), 9)
    0.077168701
    >>> cosine_loss([[0, 0, 0]], [[1, 2, 3]])
    array([1.])
    """
    check_axis(axis)
    check_eps(eps)
    check_flag("normalize", normalize)
    check_choice("reduction", reduction, REDUCTIONS)
    if _is_frame_like(labels) or _is_frame_like(predictions):
        return frame_cosine_loss(labels, predictions, axis, eps=eps, normalize=normalize, reduction=reduction)
    l_array = np.asarray(labels)
    p_array = np.asarray(predictions)
    axis = validate_pair(l_array, p_array, axis)
    losses = losses_from_sums(block_sums(l_array, p_array, axis), eps=eps, normalize=normalize)
    if reduction == "mean":
        return float(np.mean(losses)) if losses.size else math.nan
    return losses


def _is_frame_like(obj: object) -> bool:
    """A pandas, polars or pyarrow object, told without importing them (the numpy path never does)."""
    return type(obj).__module__.partition(".")[0] in ("pandas", "polars", "pyarrow")
