"""From two files to losses: open both, align their row blocks, reduce them in the core.

:func:`compute_pair` is the one route from two inputs to a :class:`LossResult`:
``compute`` takes it for its pair, ``batch`` for each pair, ``compare`` for each model and
the library's :func:`compute_files` for its keywords. It owns the checks that need both
inputs (shapes, ids, the NaN policy) and the scheduling of blocks onto threads; the
arithmetic is in :mod:`cosloss_cli.core.cosine`, the file formats in :mod:`cosloss_cli.io`,
the figures in :mod:`cosloss_cli.stats`.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..base.aside import aside
from ..core.cosine import Sums, block_sums, losses_from_sums, normalize_axis, summarize
from ..core.params import NAN_POLICIES, NanPolicy, check_axis, check_choice, check_eps, check_flag
from ..errors import (
    DataError,
    IdMatchError,
    InputUsageError,
    NonFiniteError,
    ParameterError,
    RowIdsDifferError,
    RowsOutOfOrderError,
    UnmatchedRowsError,
)
from ..io import Block, ReadOptions, Source, check_distinct, format_extension, open_source
from ..io.base import DEFAULT_BLOCK_BYTES
from ..io.group_columns import excluding_both, key_columns_for
from ..io.npy import SMALL_FILE_BYTES, SmallArray, read_small_npy, rows_per_array_block, small_npy_source
from ..io.parquet import ColumnSlabs, column_slabs
from ..io.weights import weights_for
from ..pairing import join
from ..pairing.align import (
    aligned,
    check_columns_and_ids,
    check_shapes,
    match_rows_by_id,
    match_rows_by_keys,
    pair_columns,
    shared_keys,
    source_shape_text,
)
from ..pairing.join import LABEL_BLOCK_BYTES, Match, RowJoin, check_join_sources
from ..pairing.join import join_read_options as with_join_column
from ..stats.distribution import median_and_percentiles
from ..stats.figures import (
    BACKGROUND_LOSSES,
    FigureOptions,
    Figures,
    FigureState,
    check_figure_options,
)
from ..stats.groups import group_figures, parse_group_by, row_groups
from .result import ComputeOptions, LossResult
from .small_pairs import SmallPairFigures, needs_only_the_losses, small_pair_figures
from .spilled import SPILL_LOSSES, SpilledLosses
from .threads import map_ordered, prefetched

if TYPE_CHECKING:
    from ..core.cosine import BoolArray, Float64Array

__all__ = [
    "NAN_POLICIES",
    "ComputeOptions",
    "LossResult",
    "NanPolicy",
    "compute_files",
    "compute_pair",
    "labels_read_once",
    "open_pair",
]

#: Called after each block with the number of rows (along axis 0) just processed.
ProgressCallback = Callable[[int], None]

#: How a caller watches the route: called once the inputs are open, with the labels' rows
#: (None: not known before the end, as for a CSV) and the bytes of both inputs, so that a
#: bar can be sized; the context it returns lasts while the rows are computed and gives
#: the :data:`ProgressCallback` of each block (None: nothing to report to).
Progress = Callable[[int | None, int], AbstractContextManager[ProgressCallback | None]]


def reporting_to(callback: ProgressCallback | None) -> Progress | None:
    """The :data:`Progress` of a caller that only wants each block's rows (``compute_files``'s ``progress``)."""
    if callback is None:
        return None
    return lambda rows, size_bytes: nullcontext(callback)


def compute_files(
    labels: str,
    predictions: str,
    read_options: ReadOptions | None = None,
    options: ComputeOptions | None = None,
    progress: ProgressCallback | None = None,
    prediction_read_options: ReadOptions | None = None,
    *,
    group_by: str | Sequence[str] | None = None,
    **settings: Any,
) -> LossResult:
    """Compute the losses between two files (``-`` for stdin on one side).

    Options are keywords named as the CLI's: ``axis``, ``eps``, ``normalize``,
    ``nan_policy``, ``threads`` (how to compute) and ``input_format``, ``key``, ``header``,
    ``id_column``, ``columns`` (a list or ``"a,b,c"``), ``delimiter``, ``decimal``,
    ``detect_ids`` (how to read), ``join_on``, ``strict`` (match rows by the id in that
    column, in any order; see :mod:`cosloss_cli.pairing.join`), and the figures of
    :class:`~cosloss_cli.stats.figures.FigureOptions`: ``weights`` (a file, a number or an
    array of one weight per row), ``weight_column`` (a column of the labels file),
    ``reduction``, ``top``, ``best``, ``bins``, ``confidence`` (0: no interval),
    ``resamples``, ``seed``. They override ``read_options`` and ``options``, which stay
    for reuse. ``read_options`` apply to both files unless ``prediction_read_options``
    are given for the predictions; a ``weight_column`` applies to the labels only.
    ``group_by`` (a list of column names or ``"lang,source"``) gives the figures of each
    group of rows in the result's ``groups``, as ``compute --group-by`` does.

    >>> compute_files("sample_data/labels.csv", "sample_data/predictions.csv", axis=1).summary.count
    2
    """
    read_settings, compute_settings, figure_settings = _split_settings(settings)
    read_options = (read_options or ReadOptions())._replace(**read_settings)
    prediction_read_options = (prediction_read_options or read_options)._replace(**read_settings)
    options = (options or ComputeOptions())._replace(**compute_settings)
    figures = FigureOptions(**figure_settings)
    return compute_pair(
        labels,
        predictions,
        read_options,
        options,
        figures,
        prediction_read_options,
        progress=reporting_to(progress),
        group_by=parse_group_by(group_by),
    )


def compute_pair(
    labels: str,
    predictions: str,
    read_options: ReadOptions,
    options: ComputeOptions,
    figures: FigureOptions,
    prediction_read_options: ReadOptions | None = None,
    *,
    progress: Progress | None = None,
    group_by: Sequence[str] = (),
    group_figures: bool = True,
) -> LossResult:
    """The one route from two inputs to a :class:`LossResult`: read, compute, summarize.

    ``compute``, each pair of ``batch``, each model of ``compare`` and :func:`compute_files`
    all come here, with their options as the objects (sorting keywords into options cost a
    small pair of ``batch`` a sixth of its time). What differs between them is given:
    ``progress`` (see :data:`Progress`), and ``group_by``, the names of the columns whose
    values group the rows: they are read first (only those columns, from the labels, else
    the predictions; :mod:`cosloss_cli.io.group_columns`), left out of the vectors; each
    loss's group is in the result's ``grouping``, and each group's figures in its ``groups``
    unless ``group_figures`` is off (``batch`` pools the groups' losses over its pairs instead).

    The inputs are read (:mod:`cosloss_cli.io`) and paired (:mod:`cosloss_cli.pairing`),
    their sums and losses computed (:mod:`cosloss_cli.core`), and the losses summarized
    (:mod:`cosloss_cli.stats`); a small pair of NPY files takes a shorter road to the same
    result (:func:`_small_pair`).
    """
    figures = check_figure_options(figures)
    prediction_read_options = prediction_read_options or read_options
    columns = None
    if group_by:  # read first; a group column is never a vector component
        columns, _ = key_columns_for(
            group_by, labels, [predictions], read_options, prediction_read_options, joined=options.join_on is not None
        )
        read_options, prediction_read_options = excluding_both(read_options, prediction_read_options, group_by)
    read_options, prediction_read_options = _sides(read_options, prediction_read_options, options, figures)
    inputs = _Inputs(labels, predictions, read_options, prediction_read_options, options, figures)
    result = _small_pair(inputs, progress)
    if result is None:
        sources = open_pair(labels, predictions, read_options, prediction_read_options)
        label_source, prediction_source = sources
        size_bytes = (label_source.size_bytes or 0) + (prediction_source.size_bytes or 0)
        with (progress or _unwatched)(label_source.shape[0], size_bytes) as report:
            result = _compute_opened(inputs, sources, report)
    check_distinct(labels, predictions, read_options, prediction_read_options)  # after any error in the data
    if columns is None:
        return result
    return _grouped(result, columns, figures if group_figures else None)


class _Inputs(NamedTuple):
    """What each step of the route is given: both inputs, how each side is read, and the options."""

    labels: str
    predictions: str
    label_options: ReadOptions
    prediction_options: ReadOptions
    options: ComputeOptions
    figures: FigureOptions


def _unwatched(rows: int | None, size_bytes: int) -> AbstractContextManager[ProgressCallback | None]:
    """No progress to report (the :data:`Progress` of a caller that gives none)."""
    return nullcontext()


def _sides(
    read_options: ReadOptions, prediction_read_options: ReadOptions, options: ComputeOptions, figures: FigureOptions
) -> tuple[ReadOptions, ReadOptions]:
    """Each side's read options: the weights are a column of the labels only, and the join's id column on both."""
    if figures.weight_column:
        read_options = read_options._replace(weight_column=figures.weight_column)
    if prediction_read_options.weight_column is not None:
        prediction_read_options = prediction_read_options._replace(weight_column=None)
    if options.join_on is None:
        return read_options, prediction_read_options
    labels, predictions = join_read_options(read_options, prediction_read_options, options)
    return labels, predictions or labels


def _grouped(result: LossResult, columns: dict[str, np.ndarray], figures: FigureOptions | None) -> LossResult:
    """``result`` with each loss's group, and given ``figures`` each group's (each mean's interval as the whole's)."""
    grouping = row_groups(result.losses, result.label_rows, result.axis, columns)
    if figures is None:
        return result._replace(grouping=grouping)
    confidence = float(result.figures.confidence or 0.0)
    found, notes = group_figures(
        result.losses, result.omitted, grouping, confidence=confidence, resamples=figures.resamples, seed=figures.seed
    )
    return result._replace(groups=tuple(found), grouping=grouping, notes=(*result.notes, *notes))


def _small_pair(inputs: _Inputs, progress: Progress | None) -> LossResult | None:
    """Two small simple 2-D NPY files of one block each, without the block pipeline; None: any other pair.

    Why: ``batch`` over thousands of 256 KB pairs spent more of a pair in the general
    path's steps (format detection, the checks of named columns and ids, the
    generators that prefetch, align and schedule blocks) than in reading and summing
    it. This reads both files as :func:`open_pair` would (the same small-file reader);
    when no figure needs more than the losses, :func:`~cosloss_cli.pipeline.small_pairs.small_pair_figures`
    computes them, else their only block goes to the same :class:`_BlockReducer` and figures.
    Either way the result is the general path's to the bit (tested). Anything else returns None
    before any work is repeated: other formats or options, vectors that are not rows
    (``axis`` 0, N-D, 1-D), several blocks, and sums that are not in range (a NaN, an
    infinity, a zero or extreme vector: the general path words their errors).
    """
    labels, predictions, read_options, prediction_read_options, options, figures = inputs
    if (
        options.join_on is not None
        or figures.weights is not None
        or figures.weight_column is not None
        or not _simple_npy(labels, read_options)
        or not _simple_npy(predictions, prediction_read_options)
    ):
        return None
    label_scratch, prediction_scratch = _small_pair_buffers()  # nothing read into them outlives this call
    label_file = _labels_file(labels, label_scratch)
    prediction_file = read_small_npy(predictions, prediction_scratch) if label_file is not None else None
    if label_file is None or prediction_file is None:
        return None
    check_options(options)  # before the shape checks, as _compute_sources orders them
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
        found = small_pair_figures(lvalues, pvalues, options.eps, figures.reduction)
        if found is None:
            return None
        _report_at_once(progress, shape[0], label_file.size + prediction_file.size)
        return _small_pair_result(labels, predictions, shape, found, figures)
    label_source = small_npy_source(labels, label_file, read_options)
    prediction_source = small_npy_source(predictions, prediction_file, prediction_read_options)
    lblock, pblock = next(label_source.blocks), next(prediction_source.blocks)
    figure_state = FigureState(figures, options.nan_policy, per_row=True, labels_path=labels)
    state = _BlockReducer(label_source, prediction_source, options, 1, figure_state)
    reduced = state.reduce(lblock, pblock)
    if not reduced.sums.in_range:
        return None
    state.add(0, lblock, pblock, reduced)
    _report_at_once(progress, shape[0], label_file.size + prediction_file.size)
    return state.finish()


def _report_at_once(progress: Progress | None, rows: int, size_bytes: int) -> None:
    """Tell ``progress`` of a small pair's rows, all computed at once."""
    if progress is not None:
        with progress(rows, size_bytes) as report:
            if report is not None:
                report(rows)


def _small_pair_result(
    labels: str, predictions: str, shape: tuple[int, ...], found: SmallPairFigures, figures: FigureOptions
) -> LossResult:
    """The result of a small pair from :func:`~.small_pairs.small_pair_figures`: the general path's fields."""
    losses = found.losses
    return LossResult(
        labels=labels,
        predictions=predictions,
        axis=1,
        shape=shape,
        losses=losses,
        omitted=np.zeros(losses.shape, dtype=bool),
        summary=found.summary,
        figures=Figures(
            reduction=figures.reduction,
            loss=found.loss,
            percentiles=found.percentiles,
            confidence=float(figures.confidence),
            weighted_sums=found.weighted_sums,
        ),
    )


_small_pair_scratch = threading.local()


@contextmanager
def labels_read_once() -> Iterator[None]:
    """Within the block, a small NPY labels file is read by this thread's first pair only.

    ``compare`` computes each model against the same labels, one after the other on one
    thread: their first read stays in this thread's labels buffer (which no other pair
    uses meanwhile) and the later models use it, so the models are compared with one
    reading of the labels rather than one each. Outside the block every pair reads its
    files.
    """
    _small_pair_scratch.kept = None
    try:
        yield
    finally:
        del _small_pair_scratch.kept


def _labels_file(labels: str, scratch: np.ndarray) -> SmallArray | None:
    """The labels of a small pair: read into ``scratch``, or as read already within :func:`labels_read_once`."""
    keeping = hasattr(_small_pair_scratch, "kept")
    kept: tuple[str, SmallArray | None] | None = getattr(_small_pair_scratch, "kept", None)
    if kept is not None and kept[0] == labels:
        return kept[1]
    found = read_small_npy(labels, scratch)
    if keeping:
        _small_pair_scratch.kept = (labels, found)
    return found


def _small_pair_buffers() -> tuple[np.ndarray, np.ndarray]:
    """This thread's two read buffers of :func:`_small_pair`, one per input (pages touched only as used)."""
    buffers: tuple[np.ndarray, np.ndarray] | None = getattr(_small_pair_scratch, "buffers", None)
    if buffers is None or buffers[0].size < SMALL_FILE_BYTES:
        buffers = (np.empty(SMALL_FILE_BYTES, dtype=np.uint8), np.empty(SMALL_FILE_BYTES, dtype=np.uint8))
        _small_pair_scratch.buffers = buffers
    return buffers


def _simple_npy(path: str, options: ReadOptions) -> bool:
    """A local file read as NPY with nothing an NPY file cannot have (ids, named columns, weights)."""
    if path == "-" or "://" in path or options.id_column or options.columns or options.weight_column:
        return False
    fmt = options.input_format.lower() if options.input_format else format_extension(path)
    return fmt in ("npy", ".npy")


def _compute_opened(inputs: _Inputs, sources: tuple[Source, Source], progress: ProgressCallback | None) -> LossResult:
    """:func:`_compute_sources` on the pair :func:`open_pair` opened as ``inputs`` say.

    When both files have the same id column and list their rows in different orders,
    the rows are matched by that id instead of refusing (see :func:`_matched_by_id`).
    """
    labels, predictions = sources
    options, figures = inputs.options, inputs.figures
    try:
        return _compute_sources(labels, predictions, options, progress, inputs.label_options, figures)
    except RowIdsDifferError as exc:
        stdin = "-" in (labels.path, predictions.path)
        if options.join_on is not None or exc.shared_id_column is None or stdin or figures.weights is not None:
            raise
        inputs = inputs._replace(labels=labels.path, predictions=predictions.path)
        if isinstance(exc, RowsOutOfOrderError):
            return _matched_by_key(inputs, exc)
        return _matched_by_id(inputs, exc)


def _matched_by_key(inputs: _Inputs, mismatch: RowsOutOfOrderError) -> LossResult:
    """A column both files have besides the vectors differs row by row: match the rows by it if it can be.

    Its values must be unique on both sides and every row must find its partner, as
    for a shared id column (:func:`_matched_by_id`); else the refusal names the column
    and the first row where it differs.
    """
    try:
        return _matched_by_id(inputs, mismatch)
    except (IdMatchError, UnmatchedRowsError) as exc:
        raise RowsOutOfOrderError(
            f"{mismatch.message}; matching the rows by it fails: {exc.message}",
            path=mismatch.path,
            hint=mismatch.hint,
        ) from None


def _matched_by_id(inputs: _Inputs, mismatch: RowIdsDifferError) -> LossResult:
    """Both files have the same id column, in different orders: match the rows by it.

    Never a guess: every row must find its partner (``strict``); rows without one are
    an error that says how to leave them out (``--join-on``). Files are read again from
    the start, so stdin (which cannot be) keeps the refusal.
    """
    column = mismatch.shared_id_column
    assert column is not None
    options = inputs.options._replace(join_on=column, strict=True)
    read_options, prediction_read_options = join_read_options(inputs.label_options, inputs.prediction_options, options)
    sources = open_pair(inputs.labels, inputs.predictions, read_options, prediction_read_options)
    try:
        result = _compute_sources(*sources, options, None, read_options, inputs.figures)
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
            known = ", ".join(sorted({*fields, "group_by"} - {"block_bytes", "decode_threads", "partition_keys"}))
            raise TypeError(f"compute_files() got an unexpected keyword argument {name!r} (options: {known})")
    return read, compute, figures


def join_read_options(
    read_options: ReadOptions, prediction_read_options: ReadOptions | None, options: ComputeOptions
) -> tuple[ReadOptions, ReadOptions | None]:
    """The read options of both sides with ``options.join_on`` as their id column.

    The labels' blocks are at most :data:`~cosloss_cli.pairing.join.LABEL_BLOCK_BYTES` then:
    each block's prediction rows are gathered into a copy, and smaller blocks (and the
    smaller record batches the reader decodes for them) keep less in flight: a peak of
    440 MB instead of 540-610 MB at 200,000 x 256, for no measurable time.
    """
    if options.join_on is None:
        return read_options, prediction_read_options
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


def _compute_sources(
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
    check_columns_and_ids(labels, predictions, read_options)
    check_shapes(labels, predictions, same_rows=join is None)
    labels, predictions = pair_columns(labels, predictions, read_options)
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
            f"shape {source_shape_text(labels)} holds no vectors along axis {file_axis}: "
            "another axis has size 0, so there is nothing to compare",
            path=labels.path,
        )
    notes = (_LENGTH_ONE_NOTE.format(axis=file_axis),) if width == 1 else ()
    weights = weights_for(figures.weights, labels, loss_shape)
    figure_state = FigureState(
        figures,
        options.nan_policy,
        axis != 0,
        weights,
        loss_shape,
        labels_path=labels.path,
        column=labels.has_weights,
        line_of=labels.line_of,
    )
    state = _BlockReducer(labels, predictions, options, axis, figure_state)
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
    pairs = aligned(prefetched(labels.blocks), prefetched(predictions.blocks), labels, predictions)
    for (offset, (lblock, pblock)), reduced in map_ordered(
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


def _column_slabs(
    labels: Source, predictions: Source, axis: int, read_options: ReadOptions | None
) -> ColumnSlabs | None:
    """Parquet files with a row group too large to read row-wise in bounded memory, read by columns; else None."""
    if axis != 1 or labels.format != "parquet":
        return None
    return column_slabs(labels, predictions, read_options.block_bytes if read_options else DEFAULT_BLOCK_BYTES)


def _slab_pass(slabs: ColumnSlabs, state: _BlockReducer, progress: ProgressCallback | None) -> None:
    """Each row group's rows summed a slab of columns at a time (see ``io.parquet.ColumnSlabs``).

    The slabs are read and summed on ``options.threads`` threads, each slab on one of
    them (pyarrow decodes, and the kernel sums, without the GIL); their sums are added
    in column order, as ``axis=0``'s blocks add theirs. A row's first NaN or infinity
    is the one of the lowest row, then column, over every slab.
    """
    options = state.options
    width = len(state.labels.columns or ())
    offset = 0
    for group, rows in enumerate(slabs.sizes):
        if not rows:
            continue

        def summed(first: int, group: int = group) -> tuple[Sums, _Found | None]:
            lvalues, pvalues = slabs.read(group, first)
            sums = block_sums(lvalues, pvalues, 1)
            if options.nan_policy != "raise" or sums.in_range or not sums.nonfinite.any():
                return sums, None
            row = int(np.argmax(sums.nonfinite))
            here = _first_nonfinite(Block(lvalues[row : row + 1]), Block(pvalues[row : row + 1]))
            return sums, _Found(here.side, (row, first + here.where[1]), here.value, width)

        merged: Sums | None = None
        found: _Found | None = None
        firsts = slabs.firsts()
        for _, (sums, candidate) in map_ordered(summed, iter(firsts), options.threads):
            if candidate is not None and (found is None or candidate.where < found.where):
                found = candidate
            merged = _added(merged, sums)
        if found is not None:
            raise _nonfinite_error(found, (state.labels, state.predictions)[found.side], offset + found.where[0])
        assert merged is not None
        merged = _slabs_total(merged, len(firsts))
        losses = losses_from_sums(merged, eps=options.eps, normalize=options.normalize)
        reduced = _ReducedBlock(merged, losses, 0 if merged.in_range else int(merged.zero_vectors().sum()))
        label_ids, prediction_ids = slabs.ids(group)
        label_keys, prediction_keys = slabs.keys(group)
        slabs.release()
        no_values = np.empty((rows, 0))
        lblock, pblock = (
            Block(no_values, label_ids, None, label_keys),
            Block(no_values, prediction_ids, None, prediction_keys),
        )
        state.add(offset, lblock, pblock, reduced)
        offset += rows
        if progress is not None:
            progress(rows)


def _added(merged: Sums | None, sums: Sums) -> Sums:
    """``merged.merge(sums)`` (``sums`` alone at first), added in place while every slab so far is ``in_range``.

    In-range sums have every scale 1 and nothing nonfinite, so their merge is the three
    sums added, bit for bit; ``Sums.merge`` made a dozen passes over fresh arrays per
    slab (a tenth of the pass). The first slab's arrays are its own (``block_sums`` made
    them) and take the others' in place; its ``in_range`` then only says that the sums were
    added that way: :func:`_slabs_total` clears it, as ``Sums.merge`` would have.
    """
    if merged is None:
        return sums
    if merged.in_range and sums.in_range:
        for total, part in ((merged.dot, sums.dot), (merged.ll, sums.ll), (merged.pp, sums.pp)):
            np.add(total, part, out=total)
        return merged
    return merged.merge(sums)


def _slabs_total(merged: Sums, slabs: int) -> Sums:
    """The sums of a row group's ``slabs`` slabs as :func:`_added` left them: not ``in_range`` once added to.

    A row's squared norms added over slabs may leave the range that ``in_range`` promises.
    """
    return merged._replace(in_range=False) if slabs > 1 and merged.in_range else merged


class _JoinedBlock(NamedTuple):
    """A label block of a join once looked up, gathered and summed (on a worker thread): what the pass keeps.

    Not the vectors: results wait here for the blocks before them, at a few dozen bytes
    a row (see ``io.parquet._Blocks.map_on_decoders``).
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


def _joined_block(join: RowJoin, state: _BlockReducer, block: Block) -> _JoinedBlock:
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


def _join_pass(join: RowJoin, state: _BlockReducer, options: ComputeOptions, progress: ProgressCallback | None) -> None:
    """Keep the predictions, then take the labels' blocks matched by id, in the labels' order.

    Predictions held in memory (Parquet row groups decoded on both cores) leave the
    labels' row groups to be decoded on both cores too, each block's whole work done on
    the thread that decoded it. Else (predictions spilled to a file) the labels are read
    on one thread, for the memory of that case, and their blocks worked on a pool.
    """
    labels, predictions = state.labels, state.predictions
    in_memory = _parallel_blocks(predictions)
    if in_memory is None:
        labels.blocks.one_thread()
    join.keep_predictions(in_memory or prefetched(predictions.blocks))
    work = functools.partial(_joined_block, join, state)
    results = labels.blocks.map_on_decoders(work)
    if results is None:
        results = (result for _, result in map_ordered(work, prefetched(labels.blocks), options.threads))
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
    return source.blocks.all_rows(join.MAPPED_BUDGET_BYTES)


def _row_join(labels: Source, predictions: Source, options: ComputeOptions) -> RowJoin | None:
    """The join of the rows by id that ``options.join_on`` asks for (its inputs checked), or None."""
    if options.join_on is None:
        return None
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


class _BlockReducer:
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

    def reduce(self, lblock: Block, pblock: Block, rows: np.ndarray | None = None) -> _ReducedBlock:
        """The per-block work, run on the worker threads (numpy and the kernel release the GIL).

        ``rows``: label row i is paired with prediction row ``rows[i]`` (see ``core.block_sums``).
        """
        sums = block_sums(lblock.values, pblock.values, self.axis, rows)
        if self.axis == 0:
            return _ReducedBlock(sums, None, 0)
        losses = losses_from_sums(sums, eps=self.options.eps, normalize=self.options.normalize)
        return _ReducedBlock(sums, losses, 0 if sums.in_range else int(sums.zero_vectors().sum()))

    def refused(self, reduced: _ReducedBlock) -> bool:
        """Whether a block's NaN or infinity stops the run (``nan_policy="raise"``)."""
        sums = reduced.sums
        return self.options.nan_policy == "raise" and not sums.in_range and bool(sums.nonfinite.any())

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
        """From now on, losses go to disk (see :mod:`cosloss_cli.pipeline.spilled`), those held so far first."""
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
            figures=figures,
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


def _with_offsets(pairs: Iterable[tuple[Block, Block]]) -> Iterator[tuple[int, tuple[Block, Block]]]:
    offset = 0
    for pair in pairs:
        yield offset, pair
        offset += len(pair[0])
