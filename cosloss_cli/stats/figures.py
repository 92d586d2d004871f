"""The figures a result gains beyond the summary: TF's weighted reduction and the distribution.

The pipeline hands each block's losses to a :class:`FigureState` in file order, as they
come back from the worker threads; the state keeps only what is bounded (the four
:class:`~cosloss_cli.core.reduction.WeightedSums`, K candidates of each :class:`TopK`, and for
``--reduction none`` the rows' weights), and :meth:`FigureState.finish` adds what needs
all the kept losses at once (percentiles, the bootstrap interval of the mean, the
histogram), which the result holds anyway.

The arithmetic lives in the pure modules: :mod:`cosloss_cli.core.reduction`,
:mod:`cosloss_cli.stats.distribution` and :mod:`cosloss_cli.stats.intervals`; this module only feeds
them blocks and checks the options.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..base.aside import BACKGROUND_SIZE, aside
from ..core.reduction import (
    DEFAULT_REDUCTION,
    NO_LOSSES,
    LineOf,
    WeightedSums,
    check_reduction,
    check_weights,
    loss_weights,
)
from ..errors import DataError, InputUsageError, ParameterError
from .distribution import TopK, histogram, percentiles
from .intervals import MIN_RESAMPLES, mean_ci

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..core.cosine import BoolArray, Float64Array

#: The confidence level of the bootstrap interval of the mean unless told (0 turns it off).
DEFAULT_CONFIDENCE = 0.95


class FigureOptions(NamedTuple):
    """What to compute besides the losses and their summary (``compute_files`` keywords).

    ``weights``: None (every weight 1), a path of a weights file (one weight per row, any
    input format), a number (the weight of every row) or an array of one weight per row.
    ``weight_column``: a column of the labels file holding the weights instead.
    ``top``/``best``: how many of the largest/smallest losses to list. ``bins``: the
    number of bins of the histogram (None: none). ``confidence``: of the bootstrap
    interval of the mean (0: none). ``resamples``: None computes the bootstrap
    distribution (:mod:`cosloss_cli.stats.saddlepoint`) when the losses are smooth enough
    (100 distinct values or more), and draws 10,000 otherwise; a number draws that
    many resamples, as ``scipy.stats.bootstrap`` does with ``seed`` (see
    :func:`cosloss_cli.stats.intervals.mean_ci`).
    """

    weights: Any = None
    weight_column: str | None = None
    reduction: str = DEFAULT_REDUCTION
    top: int = 0
    best: int = 0
    bins: int | None = None
    confidence: float = DEFAULT_CONFIDENCE
    resamples: int | None = None
    seed: int = 0


class Ranked(NamedTuple):
    """One of the worst or best losses: its index (a tuple for N-D losses), row id, loss."""

    index: int | tuple[int, ...]  # type: ignore[assignment]  # hides tuple.index, as JSON names it
    id: Any
    loss: float


class PairRanked(NamedTuple):
    """One of the worst losses of several results (a batch's pairs): the result's name, then as :class:`Ranked`."""

    name: str
    index: Any  # an int, or a tuple for N-D losses (hides tuple.index)
    id: Any
    loss: float


class Figures(NamedTuple):
    """The figures of a result beyond its summary: one record, held whole by every result that has them.

    :class:`~cosloss_cli.pipeline.result.LossResult`, a batch's
    :class:`~cosloss_cli.batch.pair.PairResult` and its pooled
    :class:`~cosloss_cli.batch.merge.Overall` each hold one as ``figures``, so a new figure
    is a field here (and its renderer), not a copy in each of them.

    ``loss`` is the reduced loss (NaN for reduction ``none``, which has none); ``mean``
    of the summary stays the unweighted mean. ``ci_low``/``ci_high`` are NaN when the
    interval is off (``confidence`` 0) or cannot be formed (fewer than 2 losses, NaN).
    ``worst`` of a batch's pooled figures names each row's pair (:class:`PairRanked`).
    """

    reduction: str = DEFAULT_REDUCTION
    weighted: bool = False
    loss: float = math.nan
    percentiles: dict[str, float] | None = None
    confidence: float = 0.0
    ci_low: float = math.nan
    ci_high: float = math.nan
    worst: tuple[Ranked, ...] | tuple[PairRanked, ...] = ()
    best: tuple[Ranked, ...] = ()
    histogram: tuple[Float64Array, np.ndarray] | None = None
    #: The sums behind ``loss``, which merge across results (``batch``'s pooled loss).
    weighted_sums: WeightedSums | None = None


def check_figure_options(options: FigureOptions) -> FigureOptions:
    """The options, or a :class:`ParameterError` (exit 2) saying which one is out of range."""
    check_reduction(options.reduction)
    if options.weights is not None and options.weight_column is not None:
        raise ParameterError("give the weights as a file (--weights) or as a column (--weight-column), not both")
    for name in ("top", "best"):
        TopK(getattr(options, name))  # its own check of the count
    if options.bins is not None and (isinstance(options.bins, bool) or int(options.bins) < 1):
        raise ParameterError(f"the number of bins must be at least 1, not {options.bins!r}")
    if not (options.confidence == 0 or 0 < options.confidence < 1):
        raise ParameterError(
            f"the confidence level must be between 0 and 1, not {options.confidence!r}", hint="0 turns the interval off"
        )
    if options.confidence and options.resamples is not None:
        _check_resamples(options.resamples)
    return options


def _check_resamples(resamples: int) -> None:
    """The same floor as ``compare``'s intervals."""
    if resamples < MIN_RESAMPLES:
        raise ParameterError(f"the bootstrap needs at least {MIN_RESAMPLES} resamples, not {resamples}")


class FigureState:
    """Figures accumulated block by block, in file order, on the calling thread.

    ``weights`` are the rows' weights read beforehand (a ``--weights`` file, or an array
    or number given to the library), or None: then the labels' blocks carry them (a
    weight column) or every weight is 1. An array or file may hold one weight per row
    (broadcast over the other axes of N-D losses), one per loss, or any layout TF
    broadcasts (:func:`~cosloss_cli.core.reduction.loss_weights`, for the losses'
    ``loss_shape``); weights are refused when the losses are per column (axis 0).

    Of the labels input it knows only what its messages name: ``labels_path``, and
    ``line_of``, the line of a row in a text file; ``column``: its blocks carry the
    weights (a weight column).
    """

    def __init__(
        self,
        options: FigureOptions,
        nan_policy: str,
        per_row: bool,
        weights: Any = None,
        loss_shape: tuple[int | None, ...] | None = None,
        *,
        labels_path: str,
        column: bool = False,
        line_of: LineOf | None = None,
    ) -> None:
        self.options = options
        self.labels_path = labels_path
        self.line_of = line_of
        self.omit = nan_policy == "omit"
        self.column = column
        self.weighted = weights is not None or self.column
        if self.weighted and not per_row:
            raise InputUsageError(
                "weights are given per row, but with --axis 0 there is a loss per column",
                hint="use --axis 1 (a loss per row) with weights",
            )
        self.scalar: float | None = None
        self.array: Float64Array | None = None
        if weights is not None:
            given = np.asarray(weights)
            if given.ndim == 0:
                self.scalar = float(check_weights(given, ()))
            else:
                checked = check_weights(given.reshape(-1), (given.size,), path=_weights_path(options))
                shape = loss_shape if loss_shape is not None else (None,)
                self.array = loss_weights(checked.reshape(given.shape), shape, path=_weights_path(options))
        self.sums = NO_LOSSES
        self.worst = TopK(options.top)
        self.best = TopK(options.best, best=True)
        self.row_weights: list[Float64Array] = []  # kept for reduction "none" only
        self.rows = 0

    def add(self, row: int, losses: Float64Array, nonfinite: BoolArray, weights: np.ndarray | None = None) -> None:
        """Take in the losses of the rows from ``row`` on (rows on axis 0), and their weights if carried."""
        rows = int(losses.shape[0]) if losses.ndim else 1
        ranked = np.where(nonfinite, np.nan, losses) if self.omit and nonfinite.any() else losses
        flat_offset = row * (losses.size // rows if rows else 1)
        self.worst.update(ranked, offset=flat_offset)
        self.best.update(ranked, offset=flat_offset)
        w = self._block_weights(row, rows, weights) if self.weighted else None
        if w is not None and self.options.reduction == "none":
            self.row_weights.append(w)
        kept_losses: Float64Array = losses
        wide = None if w is None else np.broadcast_to(_rows_first(w, losses.ndim), losses.shape)
        if self.omit and nonfinite.any():
            kept_losses = losses[~nonfinite]
            wide = None if wide is None else wide[~nonfinite]
        self.sums = self.sums.merge(WeightedSums.of(kept_losses, wide))
        self.rows = row + rows

    def _block_weights(self, row: int, rows: int, carried: np.ndarray | None) -> Float64Array:
        if self.scalar is not None:
            return np.full(rows, self.scalar)
        if self.array is not None:
            part = self.array[row : row + rows]
            if part.shape[0] != rows:
                raise DataError(
                    f"has {self.array.size} weights, but {self.labels_path} has more rows",
                    path=_weights_path(self.options),
                    hint="give one weight per row",
                )
            return part
        if carried is None:  # the reader promised weights: a bug if they are missing
            raise AssertionError("a block of the labels came without its weights")
        return check_weights(carried, (rows,), first_row=row, path=self.labels_path, line_of=self.line_of)

    def start_interval(self, counted: Float64Array) -> Callable[[], tuple[float, float]]:
        """Begin the interval of the mean of ``counted``; call the result for ``(low, high)``.

        On a large input it runs on a thread of its own (see :mod:`cosloss_cli.base.aside`)
        while the caller works out the summary and the percentiles.
        """
        large = bool(self.options.confidence) and counted.size >= BACKGROUND_SIZE
        return aside(lambda: self._interval(counted), background=large, name="cosloss-interval")

    def finish(
        self,
        losses: Float64Array,
        counted: Float64Array,
        ids: np.ndarray | None,
        interval: Callable[[], tuple[float, float]] | None = None,
        found: dict[str, float] | None = None,
    ) -> tuple[Figures, Float64Array]:
        """The figures of all ``losses`` (``counted``: those not omitted), and the losses to report.

        The losses to report are the weighted ones for reduction ``none``, else ``losses``.
        ``interval`` is what :meth:`start_interval` returned, if the caller started it;
        ``found``, the percentiles of ``counted`` if the caller has them.
        """
        self._check_weight_count()
        options = self.options
        interval = interval or self.start_interval(counted)
        found = percentiles(counted) if found is None else found
        bins = histogram(counted, int(options.bins)) if options.bins else None
        figures = self.finish_spilled(losses.shape, ids, found, interval(), bins)
        if options.reduction == "none" and self.row_weights:
            weights = np.concatenate(self.row_weights)
            losses = losses * _rows_first(weights, losses.ndim)
        return figures, losses

    def finish_spilled(
        self,
        shape: tuple[int, ...],
        ids: np.ndarray | None,
        found: dict[str, float],
        interval: tuple[float, float],
        bins: tuple[Float64Array, np.ndarray] | None,
    ) -> Figures:
        """The figures, given those that need every loss: for losses held in memory or spilled to disk.

        ``shape`` is the losses' (for the index of the worst and best rows).
        """
        self._check_weight_count()
        options = self.options
        return Figures(
            reduction=options.reduction,
            weighted=self.weighted,
            loss=math.nan if options.reduction == "none" else self.sums.reduce(options.reduction),
            percentiles=found,
            confidence=float(options.confidence),
            ci_low=interval[0],
            ci_high=interval[1],
            worst=self._ranked(self.worst, shape, ids),
            best=self._ranked(self.best, shape, ids),
            histogram=bins,
            weighted_sums=self.sums,
        )

    def _check_weight_count(self) -> None:
        if self.array is not None and self.array.shape[0] != self.rows:
            raise DataError(
                f"has {self.array.size} weights, but {self.labels_path} has {self.rows} rows",
                path=_weights_path(self.options),
                hint="give one weight per row",
            )

    def _interval(self, counted: Float64Array) -> tuple[float, float]:
        if not self.options.confidence:
            return math.nan, math.nan
        options = self.options
        return mean_ci(counted, confidence=options.confidence, resamples=options.resamples, seed=options.seed)

    @staticmethod
    def _ranked(top: TopK, shape: tuple[int, ...], ids: np.ndarray | None) -> tuple[Ranked, ...]:
        ranked = []
        for position, loss in top.result():
            index: int | tuple[int, ...] = position
            row = position
            if len(shape) > 1:
                index = tuple(int(i) for i in np.unravel_index(position, shape))
                row = index[0]
            ident = ids[row] if ids is not None and row < len(ids) else None
            ranked.append(Ranked(index, ident.item() if isinstance(ident, np.generic) else ident, loss))
        return tuple(ranked)


def _rows_first(weights: np.ndarray, ndim: int) -> np.ndarray:
    """Weights that broadcast against losses of ``ndim`` dimensions: one per row spread over the others."""
    return weights.reshape((weights.shape[0],) + (1,) * (ndim - 1)) if weights.ndim == 1 else weights


def _weights_path(options: FigureOptions) -> str | None:
    return options.weights if isinstance(options.weights, str) else None
