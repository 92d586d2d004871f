"""What both roads to a :class:`LossResult` share: the options' checks, the inputs, the reducer.

:mod:`cosloss_cli.pipeline.compute` takes a small NPY pair by its short road and hands
every other pair to :mod:`cosloss_cli.pipeline.blocks`; both gather the results of their
blocks in a :class:`BlockReducer`, in file order, and finish it into the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..base.aside import BACKGROUND_SIZE, aside
from ..core.cosine import Sums, block_sums, losses_from_sums, summarize
from ..core.params import NAN_POLICIES, check_axis, check_choice, check_eps, check_flag
from ..errors import DataError, NonFiniteError, ParameterError
from ..io import Block, ReadOptions, Source
from ..pairing.rows import match_rows_by_id, match_rows_by_keys, shared_keys
from ..stats.distribution import median_and_percentiles
from ..stats.figures import FigureOptions, FigureState
from .result import ComputeOptions, LossResult

if TYPE_CHECKING:
    from ..core.cosine import BoolArray, Float64Array
    from .spilled import SpilledLosses

#: Losses a computation that does not report them holds in memory before spilling them
#: to disk (:mod:`cosloss_cli.pipeline.spilled`).
SPILL_LOSSES = 4 * 1024 * 1024

#: Called after each block with the number of rows (along axis 0) just processed.
ProgressCallback = Callable[[int], None]

#: How a caller watches the route: called once the inputs are open, with the labels' rows
#: (None: not known before the end, as for a CSV) and the bytes of both inputs, so that a
#: bar can be sized; the context it returns lasts while the rows are computed and gives
#: the :data:`ProgressCallback` of each block (None: nothing to report to).
Progress = Callable[[int | None, int], AbstractContextManager[ProgressCallback | None]]


class PairInputs(NamedTuple):
    """What each step of the route is given: both inputs, how each side is read, and the options."""

    labels: str
    predictions: str
    label_options: ReadOptions
    prediction_options: ReadOptions
    options: ComputeOptions
    figures: FigureOptions


def check_options(options: ComputeOptions) -> None:
    """Refuse options the computation is not defined for (:class:`ParameterError`)."""
    check_axis(options.axis)
    check_eps(options.eps)
    check_flag("normalize", options.normalize)
    check_choice("nan_policy", options.nan_policy, NAN_POLICIES)
    if isinstance(options.threads, bool) or not isinstance(options.threads, int) or options.threads < 1:
        raise ParameterError(f"threads must be an integer >= 1, not {options.threads!r}")
    check_flag("strict", options.strict)
    check_flag("keep_losses", options.keep_losses)
    matched = options.min_matched
    if isinstance(matched, bool) or not isinstance(matched, (int, float)) or not 0 <= matched <= 1:
        raise ParameterError(f"min_matched must be a number from 0 to 1, not {matched!r}")
    if options.join_on is not None and (not isinstance(options.join_on, str) or not options.join_on):
        raise ParameterError(f"join_on must be a column name, not {options.join_on!r}")


class ReducedBlock(NamedTuple):
    """What a worker thread makes of one block: its sums, and its losses unless ``axis == 0``."""

    sums: Sums
    losses: Float64Array | None
    zero_vectors: int


class BlockReducer:
    """Accumulates block results: losses per block, or merged sums for ``axis == 0``."""

    def __init__(self, labels: Source, predictions: Source, options: ComputeOptions, axis: int, figures: FigureState):
        self.labels = labels
        self.figures = figures
        self.predictions = predictions
        self.options = options
        self.axis = axis
        self.rows = 0
        self.loss_blocks: list[Float64Array] = []
        self.nonfinite_blocks: list[BoolArray] = []
        self.zero_vectors = 0
        self.merged: Sums | None = None
        self.label_ids: list[np.ndarray] = []
        self.prediction_ids: list[np.ndarray] = []
        #: The losses once spilled to disk (``keep_losses`` off, beyond SPILL_LOSSES), and
        #: the losses held until then.
        self.spilled: SpilledLosses | None = None
        self.held = 0
        self.loss_shape: tuple[int, ...] = (0,)
        self.had_ids = False
        #: Ids are kept for the worst and best rows' ids, else dropped once losses are spilled.
        self.ranked = bool(figures.options.top or figures.options.best)
        self.shared_keys = shared_keys(labels, predictions)

    def reduce(self, lblock: Block, pblock: Block, rows: np.ndarray | None = None) -> ReducedBlock:
        """The per-block work, run on the worker threads (numpy and the kernel release the GIL).

        ``rows``: label row i is paired with prediction row ``rows[i]`` (see ``core.block_sums``).
        """
        sums = block_sums(lblock.values, pblock.values, self.axis, rows)
        if self.axis == 0:
            return ReducedBlock(sums, None, 0)
        losses = losses_from_sums(sums, eps=self.options.eps, normalize=self.options.normalize)
        return ReducedBlock(sums, losses, 0 if sums.in_range else int(sums.zero_vectors().sum()))

    def refused(self, reduced: ReducedBlock) -> bool:
        """Whether a block's NaN or infinity stops the run (``nan_policy="raise"``)."""
        sums = reduced.sums
        return self.options.nan_policy == "raise" and not sums.in_range and bool(sums.nonfinite.any())

    def add(self, offset: int, lblock: Block, pblock: Block, reduced: ReducedBlock) -> None:
        """Take in one block pair's results, in file order (on the calling thread): rows paired by position."""
        if self.refused(reduced):
            found = first_nonfinite(lblock, pblock)
            raise nonfinite_error(found, (self.labels, self.predictions)[found.side], offset + found.where[0])
        if lblock.ids is not None and pblock.ids is not None:
            match_rows_by_id(lblock.ids, pblock.ids, self.labels, self.predictions, offset)
        if self.shared_keys and lblock.keys is not None and pblock.keys is not None:
            match_rows_by_keys(lblock, pblock, self.shared_keys, self.labels, self.predictions, offset)
        if pblock.ids is not None and lblock.ids is None and self._keeps_ids():
            self.prediction_ids.append(pblock.ids)  # the labels' ids name the rows when both have them
        self.take(offset, len(lblock), lblock.ids, lblock.weights, reduced)

    def take(
        self, offset: int, rows: int, ids: np.ndarray | None, weights: np.ndarray | None, reduced: ReducedBlock
    ) -> None:
        """Keep the results of ``rows`` rows from row ``offset`` on, their ids and weights (in file order)."""
        sums = reduced.sums
        self.rows += rows
        if ids is not None:
            self.had_ids = True
            if self._keeps_ids():
                self.label_ids.append(ids)
        if reduced.losses is None:
            self.merged = sums if self.merged is None else self.merged.merge(sums)
            return
        self.zero_vectors += reduced.zero_vectors
        self.figures.add(offset, reduced.losses, sums.nonfinite, weights)
        if self.spilled is None and not self.options.keep_losses and self.held + reduced.losses.size > SPILL_LOSSES:
            self._spill()
        if self.spilled is not None:
            self.spilled.add(reduced.losses, sums.nonfinite)
            self.loss_shape = (self.rows, *reduced.losses.shape[1:])
            return
        self.loss_blocks.append(reduced.losses)
        self.nonfinite_blocks.append(sums.nonfinite)
        self.held += reduced.losses.size

    def _keeps_ids(self) -> bool:
        return self.spilled is None or self.ranked

    def _spill(self) -> None:
        """From now on, losses go to disk (see :mod:`cosloss_cli.pipeline.spilled`), those held so far first."""
        from .spilled import SpilledLosses  # only millions of losses spill: not for a small compute's start-up

        self.spilled = SpilledLosses(omit=self.options.nan_policy == "omit")
        for losses, nonfinite in zip(self.loss_blocks, self.nonfinite_blocks, strict=True):
            self.spilled.add(losses, nonfinite)
        self.loss_blocks.clear()
        self.nonfinite_blocks.clear()
        if not self.ranked:
            self.label_ids.clear()
            self.prediction_ids.clear()

    def _finish_spilled(self, spilled: SpilledLosses) -> LossResult:
        """The result of losses spilled to disk: every figure, no loss (see :mod:`cosloss_cli.pipeline.spilled`)."""
        options = self.figures.options
        try:
            summary, found = spilled.summary(self.zero_vectors)
            interval = spilled.interval(summary, options.confidence)
            bins = spilled.histogram(int(options.bins)) if options.bins else None
            ids = self._ids()
            figures = self.figures.finish_spilled(self.loss_shape, ids, found, interval, bins)
        finally:
            spilled.close()
        id_column = self.labels.id_column or self.predictions.id_column if self.had_ids else None
        return LossResult(
            labels=self.labels.path,
            predictions=self.predictions.path,
            axis=self.axis,
            shape=self._file_shape(),
            losses=np.empty(0),
            omitted=np.empty(0, dtype=bool),
            summary=summary,
            ids=None,
            notes=self.labels.notes + self.predictions.notes,
            id_column=id_column,
            figures=figures,
        )

    def finish(self) -> LossResult:
        if self.rows == 0:
            raise DataError("has no rows: nothing to compare", path=self.labels.path)
        if self.spilled is not None:
            return self._finish_spilled(self.spilled)
        if self.axis == 0:
            assert self.merged is not None
            losses = losses_from_sums(self.merged, eps=self.options.eps, normalize=self.options.normalize)
            nonfinite = self.merged.nonfinite
            self.zero_vectors = int(self.merged.zero_vectors().sum())
            self.figures.add(0, losses, nonfinite)
        else:
            losses = _joined(self.loss_blocks)
            nonfinite = _joined(self.nonfinite_blocks)
        shape = self._file_shape()
        if self.labels.one_vector:
            losses, nonfinite = losses.reshape(1), nonfinite.reshape(1)
        omitted = nonfinite if self.options.nan_policy == "omit" else np.zeros_like(nonfinite)
        # Nothing to leave out unless "omit" (a small pair's copy and mask cost more than its sums).
        counted = losses[~omitted] if self.options.nan_policy == "omit" else losses.ravel()
        omitted_count = losses.size - counted.size
        ids = self._ids()
        # Three passes over all the losses, at once on a large input (see cosloss_cli.base.aside).
        interval = self.figures.start_interval(counted)
        large = counted.size >= BACKGROUND_SIZE
        ordered = aside(lambda: median_and_percentiles(counted), background=large, name="cosloss-order")
        # The summary's sums while the partition runs; its median is the partition's.
        summary = summarize(counted, zero_vectors=self.zero_vectors, omitted=omitted_count, median=math.nan)
        median, found = ordered()
        summary = summary._replace(median=median)
        figures, losses = self.figures.finish(losses, counted, ids, interval, found)
        return LossResult(
            labels=self.labels.path,
            predictions=self.predictions.path,
            axis=0 if self.labels.one_vector else self.axis,
            shape=shape,
            losses=losses,
            omitted=omitted,
            summary=summary,
            ids=ids,
            notes=self.labels.notes + self.predictions.notes,
            id_column=self.labels.id_column or self.predictions.id_column if ids is not None else None,
            figures=figures,
        )

    def _file_shape(self) -> tuple[int, ...]:
        rest = tuple(int(n) for n in self.labels.shape[1:] if n is not None)
        if self.labels.one_vector:
            return rest
        return (self.rows, *rest)

    def _ids(self) -> np.ndarray | None:
        if self.axis != 1:
            return None  # ids name rows; with a loss per column they do not apply
        # The labels' ids, else the predictions' (equal when both have them: add() checked).
        blocks = self.label_ids or self.prediction_ids
        return _joined(blocks) if blocks else None


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    """The blocks as one array: the only block itself (a small file's), else a concatenation."""
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


class Found(NamedTuple):
    """The first NaN or infinity of a pair of blocks: which input (0 labels, 1 predictions), where, what."""

    side: int
    where: tuple[int, ...]
    value: float
    width: int | None


def first_nonfinite(lblock: Block, pblock: Block) -> Found:
    """Find the first NaN or infinity of a pair of blocks (the labels' first at the same place)."""
    found = []
    for side, block in enumerate((lblock, pblock)):
        bad = np.argwhere(~np.isfinite(np.asarray(block.values, dtype=np.float64)))
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            width = block.values.shape[1] if block.values.ndim == 2 else None
            found.append(Found(side, where, float(block.values[where]), width))
    return min(found, key=lambda item: item.where)


def nonfinite_error(found: Found, source: Source, row: int) -> NonFiniteError:
    """Name the file, row (``row``: the block's row ``found.where[0]`` in the file) and column of a NaN or infinity."""
    where = found.where
    if source.columns and len(where) == 2 and len(source.columns) == found.width:
        place = f"{source.where(row)}, column {source.columns[where[1]]!r}"
    elif len(where) == 2:
        place = f"{source.where(row)}, column {where[1]}"
    else:
        place = f"index {(row, *where[1:])}"
    return NonFiniteError(
        f"{place} is {_value_name(found.value)}",
        path=source.path,
        hint="fix the data, or pass --nan-policy omit (skip such vectors) or propagate (NaN losses)",
    )


def _value_name(value: float) -> str:
    if math.isnan(value):
        return "NaN (or empty)"
    return "+Inf" if value > 0 else "-Inf"
