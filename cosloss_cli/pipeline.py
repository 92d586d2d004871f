"""From two files to losses: open both, align their row blocks, reduce them in the core.

This is the library entry point the CLI calls for one pair of files (``compute``) and
that ``batch`` calls once per pair. It owns the checks that need both inputs (shapes,
ids, the NaN policy) and the scheduling of blocks onto threads; the arithmetic is in
:mod:`cosloss_cli.core`, the file formats in :mod:`cosloss_cli.readers`.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

from .aside import aside
from .core import (
    DEFAULT_EPS,
    Summary,
    Sums,
    block_sums,
    losses_from_sums,
    normalize_axis,
    shape_text,
    summarize,
)
from .distribution import median_and_percentiles
from .errors import (
    DataError,
    IdMatchError,
    InputUsageError,
    NonFiniteError,
    ParameterError,
    RowIdsDifferError,
    RowsOutOfOrderError,
    ShapeMismatchError,
    UnmatchedRowsError,
)
from .figures import (
    BACKGROUND_LOSSES,
    FigureOptions,
    Figures,
    FigureState,
    Ranked,
    check_figure_options,
    read_weights_for,
)
from .params import NAN_POLICIES, NanPolicy, check_axis, check_choice, check_eps, check_flag
from .readers import Block, ReadOptions, Source, check_distinct, format_extension, open_source
from .readers.names import pair_names
from .small_pairs import PlainRows, needs_only_the_losses, plain_rows
from .spilled import SPILL_LOSSES

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .core import BoolArray, Float64Array
    from .join import Match, RowJoin, Unmatched
    from .reduction import WeightedSums
    from .spilled import SpilledLosses

__all__ = [
    "NAN_POLICIES",
    "ComputeOptions",
    "LossResult",
    "NanPolicy",
    "compute_files",
    "compute_pair",
    "compute_sources",
    "open_pair",
]

#: Called after each block with the number of rows (along axis 0) just processed.
ProgressCallback = Callable[[int], None]

T = TypeVar("T")
R = TypeVar("R")


class ComputeOptions(NamedTuple):
    """How to turn vectors into losses (the options every command shares)."""

    axis: int = -1
    eps: float = DEFAULT_EPS
    normalize: bool = True
    nan_policy: NanPolicy = "raise"
    threads: int = min(2, os.cpu_count() or 1)
    #: Match rows by the value of this column (any order, unmatched rows left out) instead of by position.
    join_on: str | None = None
    #: With ``join_on``: a row whose id has no partner is an error instead of being left out.
    strict: bool = False
    #: With ``join_on``: the least share of rows that must find their partner, from 0 (leave
    #: any number out) to 1 (none); below it, an :class:`UnmatchedRowsError`. ``batch`` uses 1.
    min_matched: float = 0.0
    #: Whether the result must hold every loss (``losses``, ``omitted``, ``ids``). Off (the
    #: CLI's ``--json --no-losses``), losses beyond a bound are spilled to disk and the
    #: result's ``losses`` is empty: memory stays bounded whatever the rows (see ``spilled``).
    keep_losses: bool = True


class LossResult(NamedTuple):
    """Per-vector losses of one pair of inputs and their summary.

    ``losses`` has the input shape without ``axis``; entries that were omitted under
    ``nan_policy="omit"`` are NaN there and True in ``omitted``.
    """

    labels: str
    predictions: str
    axis: int
    shape: tuple[int, ...]
    losses: Float64Array
    omitted: BoolArray
    summary: Summary
    ids: np.ndarray | None = None
    #: What was decided on the user's behalf (id columns, headers, column order): one line each.
    notes: tuple[str, ...] = ()
    #: The name of the column the ids came from, if any (the index name of :meth:`to_frame`).
    id_column: str | None = None
    #: Rows matched by id (``join_on``): those left out for want of a partner, else None.
    unmatched: Unmatched | None = None
    #: Rows matched by id: the 0-based row in the labels file of each row of ``losses``.
    label_rows: np.ndarray | None = None
    #: Rows matched by id: every unmatched id of the labels and of the predictions (``batch``
    #: looks for them in its other pairs).
    unmatched_keys: tuple[np.ndarray, np.ndarray] | None = None
    # The figures of :class:`~cosloss_cli.figures.Figures` (see there), field for field.
    #: TF's reduction, whether weights were given, and the reduced loss (NaN for ``none``,
    #: whose weighted losses are then ``losses``); ``summary.mean`` stays unweighted.
    reduction: str = Figures().reduction
    weighted: bool = False
    loss: float = math.nan
    #: p05 p25 p75 p95 p99 of the counted losses (numpy's linear method).
    percentiles: dict[str, float] | None = None
    #: The bootstrap (BCa) interval of the mean at this confidence (0: not computed; NaN ends).
    confidence: float = 0.0
    ci_low: float = math.nan
    ci_high: float = math.nan
    #: The largest / smallest losses (``top`` / ``best`` of them), in order.
    worst: tuple[Ranked, ...] = ()
    best: tuple[Ranked, ...] = ()
    #: (edges, counts) when ``bins`` was given.
    histogram: tuple[Float64Array, np.ndarray] | None = None
    #: The four sums behind ``loss``; they merge across results (``batch`` pools them).
    weighted_sums: WeightedSums | None = None
    #: ``--group-by``: the figures of each group of rows (see :mod:`cosloss_cli.groups`).
    groups: tuple[dict[str, Any], ...] | None = None

    # No field is called ``index`` or ``count``: they would hide the tuple methods of that name.

    def kept(self) -> Float64Array:
        """The losses that count (omitted ones removed), flattened."""
        if not self.omitted.any():  # the common case: no copy, no mask
            return np.ravel(self.losses)
        kept: Float64Array = self.losses[~self.omitted]
        return kept

    def to_frame(self) -> Any:
        """The losses as a pandas DataFrame with a ``loss`` column, indexed by the row ids if any.

        Omitted vectors (``nan_policy="omit"``) are kept, with NaN losses, so rows line up
        with the inputs. pandas is imported only here.
        """
        import pandas as pd

        losses = self.losses.reshape(-1) if self.losses.ndim != 1 else self.losses
        index = None
        if self.ids is not None and len(self.ids) == len(losses):
            index = pd.Index(self.ids, name=self.id_column or "id")
        return pd.DataFrame({"loss": losses}, index=index)


def compute_files(
    labels: str,
    predictions: str,
    read_options: ReadOptions | None = None,
    options: ComputeOptions | None = None,
    progress: ProgressCallback | None = None,
    prediction_read_options: ReadOptions | None = None,
    **settings: Any,
) -> LossResult:
    """Compute the losses between two files (``-`` for stdin on one side).

    Options are keywords named as the CLI's: ``axis``, ``eps``, ``normalize``,
    ``nan_policy``, ``threads`` (how to compute) and ``input_format``, ``key``, ``header``,
    ``id_column``, ``columns`` (a list or ``"a,b,c"``), ``delimiter``, ``decimal``,
    ``detect_ids`` (how to read), ``join_on``, ``strict`` (match rows by the id in that
    column, in any order; see :mod:`cosloss_cli.join`), and the figures of
    :class:`~cosloss_cli.figures.FigureOptions`: ``weights`` (a file, a number or an
    array of one weight per row), ``weight_column`` (a column of the labels file),
    ``reduction``, ``top``, ``best``, ``bins``, ``confidence`` (0: no interval),
    ``resamples``, ``seed``. They override ``read_options`` and ``options``, which stay
    for reuse. ``read_options`` apply to both files unless ``prediction_read_options``
    are given for the predictions; a ``weight_column`` applies to the labels only.

    >>> compute_files("sample_data/labels.csv", "sample_data/predictions.csv", axis=1).summary.count
    2
    """
    read_settings, compute_settings, figure_settings = _split_settings(settings)
    read_options = (read_options or ReadOptions())._replace(**read_settings)
    prediction_read_options = (prediction_read_options or read_options)._replace(**read_settings)
    options = (options or ComputeOptions())._replace(**compute_settings)
    figures = FigureOptions(**figure_settings)
    result = compute_pair(labels, predictions, read_options, options, figures, prediction_read_options, progress)
    check_distinct(labels, predictions, read_options, prediction_read_options)  # last: any error in the data first
    return result


def compute_pair(
    labels: str,
    predictions: str,
    read_options: ReadOptions,
    options: ComputeOptions,
    figures: FigureOptions,
    prediction_read_options: ReadOptions | None = None,
    progress: ProgressCallback | None = None,
    checked: bool = False,
) -> LossResult:
    """:func:`compute_files` with its options given as the objects, not as keywords.

    What ``batch`` calls for each pair: sorting keywords into options and copying them
    cost a small pair a sixth of its time. ``checked``: the caller has checked
    ``options`` and ``figures`` (``batch`` does once per task, not once per pair).
    """
    if not checked:
        figures = check_figure_options(figures)
    prediction_read_options = prediction_read_options or read_options
    # The weights are a column of the labels only; the predictions are read as without them.
    if figures.weight_column:
        read_options = read_options._replace(weight_column=figures.weight_column)
    if prediction_read_options.weight_column is not None:
        prediction_read_options = prediction_read_options._replace(weight_column=None)
    if options.join_on is not None:
        read_options, prediction_read_options = join_read_options(read_options, prediction_read_options, options)
    small = _small_pair(
        labels, predictions, read_options, prediction_read_options or read_options, options, figures, progress, checked
    )
    if small is not None:
        return small
    sources = open_pair(labels, predictions, read_options, prediction_read_options)
    return compute_opened(sources, options, progress, read_options, prediction_read_options, figures)


def _small_pair(
    labels: str,
    predictions: str,
    read_options: ReadOptions,
    prediction_read_options: ReadOptions,
    options: ComputeOptions,
    figures: FigureOptions,
    progress: ProgressCallback | None,
    checked: bool = False,
) -> LossResult | None:
    """Two small plain 2-D NPY files of one block each, without the block pipeline; None: any other pair.

    Why: ``batch`` over thousands of 256 KB pairs spent more of a pair in the general
    path's steps (format detection, the checks of named columns and ids, the
    generators that prefetch, align and schedule blocks) than in reading and summing
    it. This reads both files as :func:`open_pair` would (the same small-file reader);
    when no figure needs more than the losses, :func:`~cosloss_cli.small_pairs.plain_rows`
    computes them, else their only block goes to the same :class:`_Reduction` and figures.
    Either way the result is the general path's to the bit (tested). Anything else returns None
    before any work is repeated: other formats or options, vectors that are not rows
    (``axis`` 0, N-D, 1-D), several blocks, and sums that are not plain (a NaN, an
    infinity, a zero or extreme vector: the general path words their errors).
    """
    if (
        options.join_on is not None
        or figures.weights is not None
        or figures.weight_column is not None
        or not _plain_npy(labels, read_options)
        or not _plain_npy(predictions, prediction_read_options)
    ):
        return None
    from .readers.npy import read_small_npy, rows_per_array_block, small_npy_source

    label_scratch, prediction_scratch = _small_pair_buffers()  # nothing read into them outlives this call
    label_file = read_small_npy(labels, label_scratch)
    prediction_file = read_small_npy(predictions, prediction_scratch) if label_file is not None else None
    if label_file is None or prediction_file is None:
        return None
    if not checked:
        check_options(options)  # before the shape checks, as compute_sources orders them
    lvalues, pvalues = label_file.array, prediction_file.array
    shape = lvalues.shape
    if (
        len(shape) != 2  # 1-D files are one vector, N-D ones have other axes: the general path
        or shape[1] < 2  # vectors of one value: the general path's note
        or shape != pvalues.shape
        or normalize_axis(options.axis, 2) != 1
        or rows_per_array_block(shape, read_options) < shape[0]
        or rows_per_array_block(shape, prediction_read_options) < shape[0]
    ):
        return None
    if needs_only_the_losses(figures, options.normalize):
        plain = plain_rows(lvalues, pvalues, options.eps, figures.reduction)
        if plain is None:
            return None
        if progress is not None:
            progress(shape[0])
        return _plain_result(labels, predictions, shape, plain, figures)
    label_source = small_npy_source(labels, label_file, read_options)
    prediction_source = small_npy_source(predictions, prediction_file, prediction_read_options)
    lblock, pblock = next(label_source.blocks), next(prediction_source.blocks)
    figure_state = FigureState(figures, label_source, options.nan_policy, per_row=True)
    state = _Reduction(label_source, prediction_source, options, 1, figure_state)
    reduced = state.reduce(lblock, pblock)
    if not reduced.sums.plain:
        return None
    state.add(0, lblock, pblock, reduced)
    if progress is not None:
        progress(len(lblock))
    return state.finish()


def _plain_result(
    labels: str, predictions: str, shape: tuple[int, ...], plain: PlainRows, figures: FigureOptions
) -> LossResult:
    """The result of a small pair from :func:`~cosloss_cli.small_pairs.plain_rows`: the general path's fields."""
    losses = plain.losses
    return LossResult(
        labels=labels,
        predictions=predictions,
        axis=1,
        shape=shape,
        losses=losses,
        omitted=np.zeros(losses.shape, dtype=bool),
        summary=plain.summary,
        reduction=figures.reduction,
        loss=plain.loss,
        percentiles=plain.percentiles,
        confidence=float(figures.confidence),
        weighted_sums=plain.weighted_sums,
    )


_small_pair_scratch = threading.local()


def _small_pair_buffers() -> tuple[np.ndarray, np.ndarray]:
    """This thread's two read buffers of :func:`_small_pair`, one per input (pages touched only as used)."""
    from .readers.npy import SMALL_FILE_BYTES

    buffers: tuple[np.ndarray, np.ndarray] | None = getattr(_small_pair_scratch, "buffers", None)
    if buffers is None or buffers[0].size < SMALL_FILE_BYTES:
        buffers = (np.empty(SMALL_FILE_BYTES, dtype=np.uint8), np.empty(SMALL_FILE_BYTES, dtype=np.uint8))
        _small_pair_scratch.buffers = buffers
    return buffers


def _plain_npy(path: str, options: ReadOptions) -> bool:
    """A local file read as NPY with nothing an NPY file cannot have (ids, named columns, weights)."""
    if path == "-" or "://" in path or options.id_column or options.columns or options.weight_column:
        return False
    fmt = options.input_format.lower() if options.input_format else format_extension(path)
    return fmt in ("npy", ".npy")


def compute_opened(
    sources: tuple[Source, Source],
    options: ComputeOptions,
    progress: ProgressCallback | None = None,
    read_options: ReadOptions | None = None,
    prediction_read_options: ReadOptions | None = None,
    figures: FigureOptions | None = None,
) -> LossResult:
    """:func:`compute_sources` on a pair :func:`open_pair` opened with these read options.

    When both files have the same id column and list their rows in different orders,
    the rows are matched by that id instead of refusing (see :func:`_matched_by_id`).
    """
    labels, predictions = sources
    try:
        return compute_sources(labels, predictions, options, progress, read_options, figures)
    except RowIdsDifferError as exc:
        positional_weights = figures is not None and figures.weights is not None
        stdin = "-" in (labels.path, predictions.path)
        if options.join_on is not None or exc.shared_id_column is None or stdin or positional_weights:
            raise
        read_options = read_options or ReadOptions()
        if isinstance(exc, RowsOutOfOrderError):
            return _matched_by_key(
                labels.path, predictions.path, read_options, prediction_read_options, options, figures, exc
            )
        return _matched_by_id(
            labels.path, predictions.path, read_options, prediction_read_options, options, figures, exc
        )


def _matched_by_key(
    labels: str,
    predictions: str,
    read_options: ReadOptions,
    prediction_read_options: ReadOptions | None,
    options: ComputeOptions,
    figures: FigureOptions | None,
    mismatch: RowsOutOfOrderError,
) -> LossResult:
    """A column both files have besides the vectors differs row by row: match the rows by it if it can be.

    Its values must be unique on both sides and every row must find its partner, as
    for a shared id column (:func:`_matched_by_id`); else the refusal names the column
    and the first row where it differs.
    """
    try:
        return _matched_by_id(labels, predictions, read_options, prediction_read_options, options, figures, mismatch)
    except (IdMatchError, UnmatchedRowsError) as exc:
        raise RowsOutOfOrderError(
            f"{mismatch.message}; matching the rows by it fails: {exc.message}",
            path=mismatch.path,
            hint=mismatch.hint,
        ) from None


def _matched_by_id(
    labels: str,
    predictions: str,
    read_options: ReadOptions,
    prediction_read_options: ReadOptions | None,
    options: ComputeOptions,
    figures: FigureOptions | None,
    mismatch: RowIdsDifferError,
) -> LossResult:
    """Both files have the same id column, in different orders: match the rows by it.

    Never a guess: every row must find its partner (``strict``); rows without one are
    an error that says how to leave them out (``--join-on``). Files are read again from
    the start, so stdin (which cannot be) keeps the refusal.
    """
    column = mismatch.shared_id_column
    assert column is not None
    options = options._replace(join_on=column, strict=True)
    read_options, prediction_read_options = join_read_options(read_options, prediction_read_options, options)
    label_source, prediction_source = open_pair(labels, predictions, read_options, prediction_read_options)
    try:
        result = compute_sources(label_source, prediction_source, options, None, read_options, figures)
    except UnmatchedRowsError as exc:
        if isinstance(mismatch, RowsOutOfOrderError):
            raise
        raise DataError(
            f"the files list their rows in different orders ({mismatch.message}), and matching them by "
            f"{column!r} leaves rows without a partner: {exc.message}",
            path=exc.path,
            hint=f"pass --join-on {column} to leave such rows out, or fix the files",
        ) from None
    note = f"rows matched by id (column {column!r}): the two files list them in different orders"
    if isinstance(mismatch, RowsOutOfOrderError):
        note = (
            f"rows matched by column {column!r} (unique in both files, not a vector component): "
            "the two files list them in different orders"
        )
    return result._replace(notes=(*result.notes, note))


def _split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Keyword options of :func:`compute_files`: ReadOptions, ComputeOptions and FigureOptions fields."""
    read: dict[str, Any] = {}
    compute: dict[str, Any] = {}
    figures: dict[str, Any] = {}
    for name, value in settings.items():
        if name in ComputeOptions._fields:
            compute[name] = value
        elif name in FigureOptions._fields:
            figures[name] = value
        elif name in ReadOptions._fields:
            listed = name in ("columns", "exclude_columns")
            if listed and isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            read[name] = list(value) if listed and value is not None else value
        else:
            fields = {*ComputeOptions._fields, *ReadOptions._fields, *FigureOptions._fields}
            known = ", ".join(sorted(fields - {"block_bytes", "decode_threads", "partition_keys"}))
            raise TypeError(f"compute_files() got an unexpected keyword argument {name!r} (options: {known})")
    return read, compute, figures


def join_read_options(
    read_options: ReadOptions, prediction_read_options: ReadOptions | None, options: ComputeOptions
) -> tuple[ReadOptions, ReadOptions | None]:
    """The read options of both sides with ``options.join_on`` as their id column.

    The labels' blocks are at most :data:`~cosloss_cli.join.LABEL_BLOCK_BYTES` then:
    each block's prediction rows are gathered into a copy, and smaller blocks (and the
    smaller record batches the reader decodes for them) keep less in flight: a peak of
    440 MB instead of 540-610 MB at 200,000 x 256, for no measurable time.
    """
    if options.join_on is None:
        return read_options, prediction_read_options
    from .join import LABEL_BLOCK_BYTES
    from .join import join_read_options as with_join_column

    predictions = with_join_column(prediction_read_options or read_options, options.join_on)
    labels = with_join_column(read_options, options.join_on)
    labels = labels._replace(block_bytes=min(labels.block_bytes, LABEL_BLOCK_BYTES), decode_threads=options.threads)
    return labels, predictions


def open_pair(
    labels: str, predictions: str, read_options: ReadOptions, prediction_read_options: ReadOptions | None = None
) -> tuple[Source, Source]:
    """Open both inputs (``-`` for stdin on one side), as :func:`compute_files` reads them."""
    if labels == predictions == "-":
        raise InputUsageError("only one of the two inputs can be stdin ('-')")
    return open_source(labels, read_options), open_source(predictions, prediction_read_options or read_options)


def compute_sources(
    labels: Source,
    predictions: Source,
    options: ComputeOptions,
    progress: ProgressCallback | None = None,
    read_options: ReadOptions | None = None,
    figures: FigureOptions | None = None,
) -> LossResult:
    """Compute the losses between two opened sources, block by block.

    Every option is checked here, before any block is read (a wrong ``nan_policy``
    or ``eps`` is a usage error, not a late surprise on a worker thread). With
    ``options.join_on`` the sources must have been opened with that column as their id
    column (:func:`join_read_options`); rows are then matched by id. ``figures`` say
    what to compute besides the summary (default: the percentiles and the 95% interval
    of the mean); a ``weight_column`` in them must have been given to the labels' reader
    (see :func:`compute_files`).
    """
    check_options(options)
    join = _row_join(labels, predictions, options)
    _check_columns_and_ids(labels, predictions, read_options)
    _check_shapes(labels, predictions, same_rows=join is None)
    labels, predictions = _pair_columns(labels, predictions, read_options)
    file_ndim = 1 if labels.one_vector else labels.ndim
    file_axis = normalize_axis(options.axis, file_ndim)
    axis = 1 if labels.one_vector else file_axis
    width = labels.shape[axis]
    if width == 0:
        raise DataError(f"the vectors along axis {file_axis} have length 0: nothing to compare", path=labels.path)

    figures = figures or FigureOptions()
    per_row_weights = isinstance(figures.weights, str) or np.ndim(figures.weights) > 0
    if join is not None and per_row_weights:
        raise InputUsageError(
            "weights given by position (a weights file, or an array) cannot follow rows matched by id (--join-on)",
            hint="put the weights in a column of the labels file: --weight-column NAME",
        )
    loss_shape = (1,) if labels.one_vector else labels.shape[:axis] + labels.shape[axis + 1 :]
    if 0 in loss_shape:
        if axis != 0 and labels.shape[0] == 0:
            raise DataError("has no rows: nothing to compare", path=labels.path)
        raise DataError(
            f"shape {_shape_text(labels)} holds no vectors along axis {file_axis}: "
            "another axis has size 0, so there is nothing to compare",
            path=labels.path,
        )
    notes = (_LENGTH_ONE_NOTE.format(axis=file_axis),) if width == 1 else ()
    weights = read_weights_for(figures, labels, loss_shape)
    figure_state = FigureState(figures, labels, options.nan_policy, axis != 0, weights, loss_shape)
    state = _Reduction(labels, predictions, options, axis, figure_state)
    if join is not None:
        with join:
            _join_pass(join, state, options, progress)
        join.check()
        return _noted(join.finish(state.finish()), notes)
    slabs = _column_slabs(labels, predictions, axis, read_options)
    if slabs is not None:
        try:
            _slab_pass(slabs, state, progress)
        finally:
            slabs.close()
        return _noted(state.finish(), notes)
    pairs = _aligned(_prefetched(labels.blocks), _prefetched(predictions.blocks), labels, predictions)
    for (offset, (lblock, pblock)), reduced in _map_ordered(
        lambda item: state.reduce(*item[1]), _with_offsets(pairs), options.threads
    ):
        state.add(offset, lblock, pblock, reduced)
        if progress is not None:
            progress(len(lblock))
    return _noted(state.finish(), notes)


#: Vectors of one value: their cosine is their signs' product, which is rarely what was meant.
_LENGTH_ONE_NOTE = (
    "the vectors along axis {axis} have length 1, so each loss is 0, 1 or 2 (same sign, a zero, "
    "opposite signs): to compare the values as one long vector, use --axis 0"
)


def _noted(result: LossResult, notes: tuple[str, ...]) -> LossResult:
    """``result`` with ``notes`` after the readers' own."""
    return result._replace(notes=(*result.notes, *notes)) if notes else result


def _column_slabs(labels: Source, predictions: Source, axis: int, read_options: ReadOptions | None) -> Any:
    """Parquet files with a row group too large to read row-wise in bounded memory, read by columns; else None."""
    if axis != 1 or labels.format != "parquet":
        return None
    from .readers.base import DEFAULT_BLOCK_BYTES
    from .readers.parquet import column_slabs

    return column_slabs(labels, predictions, read_options.block_bytes if read_options else DEFAULT_BLOCK_BYTES)


def _slab_pass(slabs: Any, state: _Reduction, progress: ProgressCallback | None) -> None:
    """Each row group's rows summed a slab of columns at a time (see ``readers.parquet.ColumnSlabs``).

    The sums of a row are added slab by slab as ``axis=0``'s blocks add theirs; its
    first NaN or infinity is the one of the lowest row, then column, over every slab.
    """
    options = state.options
    width = len(state.labels.columns or ())
    offset = 0
    for group, rows in enumerate(slabs.sizes):
        if not rows:
            continue
        merged: Sums | None = None
        found: _Found | None = None
        for first, lvalues, pvalues in slabs.slabs(group):
            sums = block_sums(lvalues, pvalues, 1)
            if options.nan_policy == "raise" and not sums.plain and sums.nonfinite.any():
                row = int(np.argmax(sums.nonfinite))
                here = _first_nonfinite(Block(lvalues[row : row + 1]), Block(pvalues[row : row + 1]))
                candidate = _Found(here.side, (row, first + here.where[1]), here.value, width)
                found = candidate if found is None or candidate.where < found.where else found
            merged = sums if merged is None else merged.merge(sums)
        if found is not None:
            raise _nonfinite_error(found, (state.labels, state.predictions)[found.side], offset + found.where[0])
        assert merged is not None
        losses = losses_from_sums(merged, eps=options.eps, normalize=options.normalize)
        reduced = _ReducedBlock(merged, losses, 0 if merged.plain else int(merged.zero_vectors().sum()))
        label_ids, prediction_ids = slabs.ids(group)
        label_keys, prediction_keys = slabs.keys(group)
        no_values = np.empty((rows, 0))
        lblock, pblock = (
            Block(no_values, label_ids, None, label_keys),
            Block(no_values, prediction_ids, None, prediction_keys),
        )
        state.add(offset, lblock, pblock, reduced)
        offset += rows
        if progress is not None:
            progress(rows)


class _JoinedBlock(NamedTuple):
    """A label block of a join once looked up, gathered and summed (on a worker thread): what the pass keeps.

    Not the vectors: results wait here for the blocks before them, at a few dozen bytes
    a row (see ``readers.parquet._Blocks.map_on_decoders``).
    """

    match: Match
    #: The rows that have a partner: how many, their ids and weights, their results.
    rows: int = 0
    ids: np.ndarray | None = None
    weights: np.ndarray | None = None
    reduced: _ReducedBlock | None = None
    #: The first NaN or infinity when it stops the run (``nan_policy="raise"``).
    found: _Found | None = None

    @property
    def nbytes(self) -> int:
        arrays: list[Any] = [*self.match[1:], self.ids, self.weights]
        if self.reduced is not None:
            arrays += [self.reduced.losses, self.reduced.sums.nonfinite]
        return sum(int(getattr(array, "nbytes", 0)) for array in arrays)


def _joined_block(join: RowJoin, state: _Reduction, block: Block) -> _JoinedBlock:
    """Look a label block up, gather its partners and sum the pairs: all of a block's work, on any thread."""
    match = join.match(block)
    if not match.taken.size:
        return _JoinedBlock(match)
    lblock, vectors, rows = join.partners(block, match)
    reduced = state.reduce(lblock, Block(vectors), rows)
    found = None
    if state.refused(reduced):
        partners = vectors if rows is None else np.take(vectors, rows, axis=0)
        found = _first_nonfinite(lblock, Block(partners))
    return _JoinedBlock(match, len(lblock), lblock.ids, lblock.weights, reduced, found)


def _join_pass(join: RowJoin, state: _Reduction, options: ComputeOptions, progress: ProgressCallback | None) -> None:
    """Keep the predictions, then take the labels' blocks matched by id, in the labels' order.

    Predictions held in memory (Parquet row groups decoded on both cores) leave the
    labels' row groups to be decoded on both cores too, each block's whole work done on
    the thread that decoded it. Else (predictions spilled to a file) the labels are read
    on one thread, for the memory of that case, and their blocks worked on a pool.
    """
    labels, predictions = state.labels, state.predictions
    in_memory = _parallel_blocks(predictions)
    if in_memory is None:
        getattr(labels.blocks, "one_thread", lambda: None)()
    join.keep_predictions(in_memory or _prefetched(predictions.blocks))
    work = functools.partial(_joined_block, join, state)
    map_on_decoders = getattr(labels.blocks, "map_on_decoders", None)
    results = map_on_decoders(work) if map_on_decoders is not None else None
    if results is None:
        results = (result for _, result in _map_ordered(work, _prefetched(labels.blocks), options.threads))
    offset = 0
    for result in results:
        label_rows = join.record(result.match)
        if result.reduced is None:
            continue
        if result.found is not None:
            found = result.found
            position = found.where[0]
            if found.side == 0:
                raise _nonfinite_error(found, labels, int(label_rows[position]))
            raise _nonfinite_error(found, predictions, int(result.match.taken[position]))
        state.take(offset, result.rows, result.ids, result.weights, result.reduced)
        offset += result.rows
        if progress is not None:
            progress(result.rows)


def _parallel_blocks(source: Source) -> Iterator[Block] | None:
    """A join's predictions when they are kept in memory: Parquet row groups decoded on both cores, else None."""
    if source.format != "parquet":
        return None
    from . import join
    from .readers.parquet import row_group_blocks

    all_rows = getattr(source.blocks, "all_rows", None)  # a dataset of Parquet files
    if all_rows is not None:
        blocks: Iterator[Block] | None = all_rows(join.MAPPED_BUDGET_BYTES)
        return blocks
    return row_group_blocks(source, join.MAPPED_BUDGET_BYTES)


def _row_join(labels: Source, predictions: Source, options: ComputeOptions) -> RowJoin | None:
    """The join of the rows by id that ``options.join_on`` asks for (its inputs checked), or None."""
    if options.join_on is None:
        return None
    from .join import RowJoin, check_join_sources

    check_join_sources(labels, predictions, options.join_on)
    return RowJoin(labels, predictions, strict=options.strict, min_matched=options.min_matched)


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


class _ReducedBlock(NamedTuple):
    """What a worker thread makes of one block: its sums, and its losses unless ``axis == 0``."""

    sums: Sums
    losses: Float64Array | None
    zero_vectors: int


class _Reduction:
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
        self.shared_keys = _shared_keys(labels, predictions)

    def reduce(self, lblock: Block, pblock: Block, rows: np.ndarray | None = None) -> _ReducedBlock:
        """The per-block work, run on the worker threads (numpy and the kernel release the GIL).

        ``rows``: label row i is paired with prediction row ``rows[i]`` (see ``core.block_sums``).
        """
        sums = block_sums(lblock.values, pblock.values, self.axis, rows)
        if self.axis == 0:
            return _ReducedBlock(sums, None, 0)
        losses = losses_from_sums(sums, eps=self.options.eps, normalize=self.options.normalize)
        return _ReducedBlock(sums, losses, 0 if sums.plain else int(sums.zero_vectors().sum()))

    def refused(self, reduced: _ReducedBlock) -> bool:
        """Whether a block's NaN or infinity stops the run (``nan_policy="raise"``)."""
        sums = reduced.sums
        return self.options.nan_policy == "raise" and not sums.plain and bool(sums.nonfinite.any())

    def add(self, offset: int, lblock: Block, pblock: Block, reduced: _ReducedBlock) -> None:
        """Take in one block pair's results, in file order (on the calling thread): rows paired by position."""
        if self.refused(reduced):
            found = _first_nonfinite(lblock, pblock)
            raise _nonfinite_error(found, (self.labels, self.predictions)[found.side], offset + found.where[0])
        if lblock.ids is not None and pblock.ids is not None:
            match_rows_by_id(lblock.ids, pblock.ids, self.labels, self.predictions, offset)
        if self.shared_keys and lblock.keys is not None and pblock.keys is not None:
            match_rows_by_keys(lblock, pblock, self.shared_keys, self.labels, self.predictions, offset)
        if pblock.ids is not None and self._keeps_ids():
            self.prediction_ids.append(pblock.ids)
        self.take(offset, len(lblock), lblock.ids, lblock.weights, reduced)

    def take(
        self, offset: int, rows: int, ids: np.ndarray | None, weights: np.ndarray | None, reduced: _ReducedBlock
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
        """From now on, losses go to disk (see :mod:`cosloss_cli.spilled`), those held so far first."""
        from .spilled import SpilledLosses

        self.spilled = SpilledLosses(omit=self.options.nan_policy == "omit")
        for losses, nonfinite in zip(self.loss_blocks, self.nonfinite_blocks, strict=True):
            self.spilled.add(losses, nonfinite)
        self.loss_blocks.clear()
        self.nonfinite_blocks.clear()
        if not self.ranked:
            self.label_ids.clear()
            self.prediction_ids.clear()

    def _finish_spilled(self, spilled: SpilledLosses) -> LossResult:
        """The result of losses spilled to disk: every figure, no loss (see :mod:`cosloss_cli.spilled`)."""
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
            **figures._asdict(),
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
        # Three passes over all the losses, at once on a large input (see cosloss_cli.aside).
        interval = self.figures.start_interval(counted)
        large = counted.size >= BACKGROUND_LOSSES
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
            **figures._asdict(),
        )

    def _file_shape(self) -> tuple[int, ...]:
        rest = tuple(int(n) for n in self.labels.shape[1:] if n is not None)
        if self.labels.one_vector:
            return rest
        return (self.rows, *rest)

    def _ids(self) -> np.ndarray | None:
        label_ids = np.concatenate(self.label_ids) if self.label_ids else None
        prediction_ids = np.concatenate(self.prediction_ids) if self.prediction_ids else None
        ids = label_ids if label_ids is not None else prediction_ids  # equal when both: add() checked
        if ids is not None and self.axis != 1:
            return None  # ids name rows; with a loss per column they do not apply
        return ids


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    """The blocks as one array: the only block itself (a small file's), else a concatenation."""
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def match_rows_by_id(
    label_ids: np.ndarray, prediction_ids: np.ndarray, labels: Source, predictions: Source, offset: int = 0
) -> None:
    """Rows are paired by position: refuse when both inputs have ids and they disagree.

    ``offset`` is the row of the first id given (ids are checked block by block, so a
    disagreement stops the run at the first block that shows it). The error names the
    id column both files share, if any: :func:`compute_files` then matches the rows by
    that id instead (see :func:`_matched_by_id`).
    """
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
    raise RowIdsDifferError(
        f"rows are matched by position, and their ids differ: {labels.where(row)} of labels has id "
        f"{label_ids[at]!r}, {predictions.where(row)} of {predictions.path} has {prediction_ids[at]!r}",
        path=labels.path,
        hint=_join_hint(labels, predictions),
        shared_id_column=_shared_id_column(labels, predictions),
    )


def _shared_keys(labels: Source, predictions: Source) -> list[tuple[str, int, int]]:
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
        from .join import show_id

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


def _pair_columns(labels: Source, predictions: Source, read_options: ReadOptions | None) -> tuple[Source, Source]:
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


class _Reordered:
    """Blocks with their columns put in another order; keeps the reader's length hint."""

    def __init__(self, blocks: Iterator[Block], order: list[int]):
        self._blocks = blocks
        self._order = np.asarray(order, dtype=np.intp)

    def __iter__(self) -> _Reordered:
        return self

    def __next__(self) -> Block:
        block = next(self._blocks)
        return Block(block.values[:, self._order], block.ids, block.weights, block.keys)

    def __length_hint__(self) -> int:
        return operator.length_hint(self._blocks)

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()


def _check_columns_and_ids(labels: Source, predictions: Source, read_options: ReadOptions | None) -> None:
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


def _shape_text(source: Source) -> str:
    return shape_text(source.shape[1:] if source.one_vector else source.shape)


def _check_shapes(labels: Source, predictions: Source, same_rows: bool = True) -> None:
    """Compare what is known before reading: rank, vector shape, row count if known and ``same_rows``."""
    same_rank = labels.ndim == predictions.ndim and labels.one_vector == predictions.one_vector
    same_rest = labels.shape[1:] == predictions.shape[1:]
    rows_known = same_rows and labels.shape[0] is not None and predictions.shape[0] is not None
    if not same_rank or not same_rest or (rows_known and labels.shape[0] != predictions.shape[0]):
        raise ShapeMismatchError(
            f"shapes differ: labels {labels.path} {_shape_text(labels)}, "
            f"predictions {predictions.path} {_shape_text(predictions)}",
            hint=_join_hint(labels, predictions)
            if same_rest and same_rank
            else "both files must hold the same number of vectors of the same length",
        )


class _Found(NamedTuple):
    """The first NaN or infinity of a pair of blocks: which input (0 labels, 1 predictions), where, what."""

    side: int
    where: tuple[int, ...]
    value: float
    width: int | None


def _first_nonfinite(lblock: Block, pblock: Block) -> _Found:
    """Find the first NaN or infinity of a pair of blocks (the labels' first at the same place)."""
    found = []
    for side, block in enumerate((lblock, pblock)):
        bad = np.argwhere(~np.isfinite(np.asarray(block.values, dtype=np.float64)))
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            width = block.values.shape[1] if block.values.ndim == 2 else None
            found.append(_Found(side, where, float(block.values[where]), width))
    return min(found, key=lambda item: item.where)


def _nonfinite_error(found: _Found, source: Source, row: int) -> NonFiniteError:
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


def _aligned(
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


def _with_offsets(pairs: Iterable[tuple[Block, Block]]) -> Iterator[tuple[int, tuple[Block, Block]]]:
    offset = 0
    for pair in pairs:
        yield offset, pair
        offset += len(pair[0])


def _map_ordered(func: Callable[[T], R], items: Iterator[T], threads: int) -> Iterator[tuple[T, R]]:
    """Apply ``func`` on up to ``threads`` threads, yielding results in input order.

    numpy releases the GIL in the conversions and sums, so blocks of a large input are
    reduced on both cores; at most ``2 * threads`` blocks are in flight, so memory
    stays bounded. A single-block input never starts a thread.
    """
    first = next(items, None)
    if first is None:
        return
    second = next(items, None)
    if second is None or threads <= 1:
        yield first, func(first)
        if second is not None:
            yield second, func(second)
            for item in items:
                yield item, func(item)
        return
    from concurrent.futures import ThreadPoolExecutor  # only inputs of several blocks pay for it

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cosloss-block") as pool:
        in_flight: deque[tuple[T, Future[R]]] = deque()
        pending = 0
        for item in _chain_first(first, second, items):
            in_flight.append((item, pool.submit(func, item)))
            pending += 1
            if pending >= 2 * threads:
                done_item, future = in_flight.popleft()
                pending -= 1
                yield done_item, future.result()
        while pending:
            done_item, future = in_flight.popleft()
            pending -= 1
            yield done_item, future.result()


def _chain_first(first: T, second: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield second
    yield from rest


_END = object()


def _prefetched(blocks: Iterator[Block], depth: int = 2) -> Iterator[Block]:
    """Read the next blocks on a background thread while this one is computed.

    Parsing (pyarrow) and decompression release the GIL, so reading both inputs and
    reducing blocks overlap. Errors raised by the reader are re-raised here. An input
    known to be one block (see ``readers.base.CountedBlocks``) is read in place: there
    is nothing to overlap, and a thread would cost more than the read. So is an input of
    memory-mapped blocks (``cheap``): mapping a window costs little, and handing blocks
    over between threads cost CPU time and 50 MB of blocks in flight (profiled on
    2 x 2 GB NPY); and one whose blocks are decoded on threads of their own (Parquet
    row groups, ``ReadOptions.decode_threads``).
    """
    if operator.length_hint(blocks, 2) <= 1 or getattr(blocks, "cheap", False):
        yield from blocks
        return
    import queue  # only inputs of several blocks pay for these
    import threading

    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for block in blocks:
                while not stop.is_set():
                    try:
                        buffer.put(block, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as exc:  # forwarded to the consumer, who re-raises it
            buffer.put(exc)

    thread = threading.Thread(target=produce, name="cosloss-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
