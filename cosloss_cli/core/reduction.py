"""TensorFlow's weights and reductions of the losses (``compute_weighted_loss``).

Pure numpy: no files, no terminals. ``tf.compat.v1.losses.cosine_distance`` takes
``weights`` (a scalar, or one weight per loss) and one of five reductions; users
porting TF code expect the same number, so the definitions are TF's::

    weighted                = loss * w
    none                    = weighted (one value per loss)
    sum                     = sum(weighted)
    mean                    = sum(weighted) / sum(w)
    sum_over_batch_size     = sum(weighted) / count
    sum_by_nonzero_weights  = sum(weighted) / count(w != 0)      (TF's default)

``count`` is the number of losses; a scalar weight counts once per loss (TF broadcasts
it). A zero denominator gives 0, as TF's ``div_no_nan`` does. Without weights every
weight is 1, so ``mean``, ``sum_over_batch_size`` and ``sum_by_nonzero_weights`` are all
the plain mean. Unlike TF, negative or non-finite weights are refused: a weighted mean
with them is not a loss anyone means to report.

The four sums behind the reductions merge across blocks (:class:`WeightedSums`), so a
pipeline that streams the losses can reduce them block by block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import DataError, InputUsageError
from .cosine import check_dtype, shape_text
from .params import WEIGHTED_REDUCTIONS, WeightedReduction

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .cosine import Float64Array

#: The reductions, in TF's order; the names are TF's ``Reduction`` constants in lower case.
#: Defined in :mod:`cosloss_cli.core.params`, which the CLI reads without importing numpy.
REDUCTIONS: tuple[str, ...] = WEIGHTED_REDUCTIONS

#: TF's default: with no weights (or all weights non-zero and equal to 1) the plain mean.
DEFAULT_REDUCTION: WeightedReduction = "sum_by_nonzero_weights"

#: Given a 0-based row of a weights file, its 1-based line in that file (None if unknown).
LineOf = Callable[[int], "int | None"]


def check_reduction(reduction: str) -> WeightedReduction:
    """``reduction`` as a :data:`WeightedReduction`, or an :class:`InputUsageError` listing the choices."""
    if reduction not in REDUCTIONS:
        raise InputUsageError(f"unknown reduction {reduction!r}", hint=f"choose one of {', '.join(REDUCTIONS)}")
    return reduction  # type: ignore[return-value]


def check_weights(
    weights: ArrayLike,
    shape: tuple[int, ...],
    *,
    first_row: int = 0,
    path: str | None = None,
    line_of: LineOf | None = None,
) -> Float64Array:
    """The weights as float64, broadcast to the losses' ``shape``; a DataError if unusable.

    Accepted as TF's ``broadcast_weights`` accepts them: a scalar, or an array of the
    losses' rank whose every dimension is 1 or the losses' size. Every weight must be
    finite and >= 0; the first one that is not is named by its 0-based row (``first_row``
    is added, for a block that starts further into the file) and, when ``line_of`` knows
    it, by its line in the file ``path``.
    """
    array = np.asarray(weights)
    check_dtype(array.dtype, "the weights")
    as_float: Float64Array = np.asarray(array, dtype=np.float64)
    if as_float.ndim and not _broadcastable(as_float.shape, shape):
        raise DataError(
            f"the weights have shape {shape_text(as_float.shape)}, the losses {shape_text(shape)}",
            path=path,
            hint="give one weight per loss, or a single weight",
        )
    bad = ~np.isfinite(as_float) | (as_float < 0)
    if bad.any():
        raise _bad_weight_error(as_float, bad, first_row, path, line_of)
    broadcast: Float64Array = np.broadcast_to(as_float, shape)
    return broadcast


def loss_weights(weights: np.ndarray, shape: tuple[int | None, ...], *, path: str | None = None) -> Float64Array:
    """Weights of any layout TF takes for losses of ``shape`` (rows first), laid out rows first.

    ``tf.compat.v1.losses.cosine_distance`` keeps the reduced axis: inputs of shape
    (3, 2, 3) reduced along axis 2 give TF losses of shape (3, 2, 1), cosloss's (3, 2).
    Accepted, as TF accepts them: one weight per row (``(3,)``, the only layout of 2-D
    inputs' losses besides a trailing 1); one per loss, shaped like the losses, like TF's
    losses (a trailing 1) or flat in C order (``(6,)``); and any shape of the losses' rank
    (with or without TF's trailing 1) whose every dimension is 1 or the losses' (TF's
    broadcasting: ``(3, 1)`` or ``(3, 1, 1)`` is one weight per sample). Anything else is
    a DataError naming both shapes. ``shape[0]`` is None when the rows are not known yet
    (a CSV streams): a 1-D array is then one weight per row, counted as the rows come.

    Returns a 1-D array (one weight per row) or an array of the losses' rank whose every
    dimension is 1 or the losses' (rows first, so that a block of rows slices it).

    >>> loss_weights(np.ones((3, 2, 1)), (3, 2)).shape, loss_weights(np.ones(6), (3, 2)).shape
    ((3, 2), (3, 2))
    >>> loss_weights(np.ones((3, 1, 1)), (3, 2)).shape, loss_weights(np.ones(3), (3, 2)).shape
    ((3, 1), (3,))
    """
    array: Float64Array = np.asarray(weights, dtype=np.float64)
    rows, rest = shape[0], tuple(shape[1:])
    if array.ndim == 1 and (not rest or rows is None or array.shape[0] == rows):
        return array  # one weight per row (its count is checked against the rows)
    known = rows is not None and all(n is not None for n in rest)
    per_loss = int(np.prod([n for n in rest if n is not None], dtype=np.int64))
    if array.ndim == 1 and known and array.shape[0] == int(rows or 0) * per_loss:
        flat: Float64Array = array.reshape((int(rows or 0), *(int(n or 0) for n in rest)))
        return flat  # one weight per loss, flat in C order
    if array.ndim == len(shape) + 1 and array.shape[-1] == 1:
        array = array.reshape(array.shape[:-1])  # TF's shape of the losses: the reduced axis kept
    if array.ndim == len(shape) and all(w == 1 or n is None or w == n for w, n in zip(array.shape, shape, strict=True)):
        if array.shape[0] == 1 and rows is not None and rows != 1:  # the same weights for every row
            array = np.broadcast_to(array, (rows, *array.shape[1:]))
        return array.reshape(-1) if array.ndim == 1 else array
    tf_shape = shape_text((*shape, 1))
    raise DataError(
        f"the weights have shape {shape_text(np.shape(weights))}, the losses {shape_text(shape)} "
        f"(TensorFlow's {tf_shape})",
        path=path,
        hint=f"give one weight per row, one per loss (shaped {shape_text(shape)}, {tf_shape} or flat), "
        "or a shape whose every dimension is 1 or the losses' (TF's broadcasting)",
    )


def _broadcastable(weights_shape: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """TF's rule: same rank, each dimension 1 or equal (numpy would also add leading axes)."""
    return len(weights_shape) == len(shape) and all(w in (1, n) for w, n in zip(weights_shape, shape, strict=True))


def _bad_weight_error(
    weights: Float64Array, bad: np.ndarray, first_row: int, path: str | None, line_of: LineOf | None
) -> DataError:
    position = np.unravel_index(int(np.flatnonzero(bad)[0]), weights.shape) if weights.ndim else ()
    value = float(weights[position])
    row = first_row + int(position[0]) if position else first_row
    where = f"row {row}" if weights.ndim <= 1 else f"entry {shape_text((row, *map(int, position[1:])))}"
    line = line_of(row) if line_of is not None and weights.ndim else None
    if line is not None:
        where += f" (line {line})"
    problem = "negative" if value < 0 else "not a finite number"
    return DataError(
        f"the weight of {where} is {value!r}: {problem}", path=path, hint="weights must be finite and >= 0"
    )


class WeightedSums(NamedTuple):
    """The four sums every reduction is made of; sums of consecutive blocks merge by adding.

    ``sum_weighted`` is sum(loss * w), ``sum_weights`` sum(w), ``nonzero`` count(w != 0)
    and ``count`` the number of losses (all over the broadcast weights).
    """

    sum_weighted: float
    sum_weights: float
    nonzero: int
    count: int  # type: ignore[assignment]

    @classmethod
    def of(cls, losses: ArrayLike, weights: ArrayLike | None = None, *, first_row: int = 0) -> WeightedSums:
        """The sums of one block of losses with its weights (None: every weight is 1)."""
        values = np.asarray(losses, dtype=np.float64)
        if weights is None:  # np.sum's own reduction, without its wrapper: a small pair of batch calls this
            size = int(values.size)
            return cls(float(np.add.reduce(values, axis=None)), float(size), size, size)
        w = check_weights(weights, values.shape, first_row=first_row)
        return cls(float(np.sum(values * w)), float(np.sum(w)), int(np.count_nonzero(w)), int(values.size))

    def merge(self, other: WeightedSums) -> WeightedSums:
        """The sums of both blocks together."""
        return WeightedSums(
            self.sum_weighted + other.sum_weighted,
            self.sum_weights + other.sum_weights,
            self.nonzero + other.nonzero,
            self.count + other.count,
        )

    def reduce(self, reduction: str = DEFAULT_REDUCTION) -> float:
        """The reduced loss; ``none`` has no single value (use :func:`reduce_losses`)."""
        reduction = check_reduction(reduction)
        if reduction == "none":
            raise InputUsageError("reduction 'none' gives one value per loss, not a sum")
        if reduction == "sum":
            return self.sum_weighted
        denominator = {
            "mean": self.sum_weights,
            "sum_over_batch_size": float(self.count),
            "sum_by_nonzero_weights": float(self.nonzero),
        }[reduction]
        return _safe_divide(self.sum_weighted, denominator)


#: The sums of no losses at all: the start of a block-by-block reduction.
NO_LOSSES = WeightedSums(0.0, 0.0, 0, 0)


def _safe_divide(numerator: float, denominator: float) -> float:
    """TF's ``div_no_nan``: 0 when the denominator is 0, whatever the numerator."""
    return 0.0 if denominator == 0 else numerator / denominator


def reduce_losses(
    losses: ArrayLike, weights: ArrayLike | None = None, reduction: str = DEFAULT_REDUCTION
) -> Float64Array | float:
    """Weight and reduce losses as ``tf.compat.v1.losses.compute_weighted_loss`` does.

    ``weights`` is None (all 1), a scalar, or one weight per loss (see
    :func:`check_weights`). ``reduction="none"`` returns the weighted losses as an array
    of the losses' shape; every other reduction returns a float. NaN losses propagate:
    under ``--nan-policy omit`` pass the kept losses and the same rows' weights.

    Examples
    --------
    >>> reduce_losses([0.5, 1.0, 0.25], [2.0, 0.0, 1.0], "sum")
    1.25
    >>> reduce_losses([0.5, 1.0, 0.25], [2.0, 0.0, 1.0], "mean")  # 1.25 / 3
    0.4166666666666667
    >>> reduce_losses([0.5, 1.0, 0.25], [2.0, 0.0, 1.0])  # sum_by_nonzero_weights: 1.25 / 2
    0.625
    >>> reduce_losses([0.5, 1.0], [0.0, 0.0], "mean")  # zero denominator: 0, as in TF
    0.0
    >>> reduce_losses([0.5, 1.0], 2.0, "none")
    array([1., 2.])
    """
    reduction = check_reduction(reduction)
    if reduction == "none":
        values: Float64Array = np.array(losses, dtype=np.float64)  # a copy: the caller's stays theirs
        if weights is not None:
            values *= check_weights(weights, values.shape)
        return values
    return WeightedSums.of(losses, weights).reduce(reduction)
