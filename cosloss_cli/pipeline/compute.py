"""From two files to losses: open both, align their row blocks, reduce them in the core.

:func:`compute_pair` is the one route from two inputs to a :class:`LossResult`:
``compute`` takes it for its pair, ``batch`` for each pair, ``compare`` for each model and
the library's :func:`compute_files` for its keywords. A small pair of NPY files takes
the short road here; every other pair the block route of :mod:`cosloss_cli.pipeline.blocks`
(the checks that need both inputs, the scheduling of blocks onto threads), imported only
then. The arithmetic is in :mod:`cosloss_cli.core.cosine`, the file formats in
:mod:`cosloss_cli.io`, the figures in :mod:`cosloss_cli.stats`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

from ..core.cosine import normalize_axis
from ..core.params import NAN_POLICIES, NanPolicy, parse_group_by
from ..io import ReadOptions, check_distinct, format_extension, open_pair
from ..io.npy import SMALL_FILE_BYTES, SmallArray, read_small_npy, rows_per_array_block, small_npy_source
from ..stats.figures import FigureOptions, Figures, FigureState, check_figure_options
from .reducer import BlockReducer, PairInputs, Progress, ProgressCallback, check_options
from .result import ComputeOptions, LossResult
from .small_pairs import SmallPairFigures, needs_only_the_losses, small_pair_figures

__all__ = [
    "NAN_POLICIES",
    "ComputeOptions",
    "LossResult",
    "NanPolicy",
    "Progress",
    "ProgressCallback",
    "check_options",
    "compute_files",
    "compute_pair",
    "labels_read_once",
    "open_pair",
]


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
    result (:func:`_small_pair`), every other pair :func:`~cosloss_cli.pipeline.blocks.compute_blocks`.
    """
    figures = check_figure_options(figures)
    prediction_read_options = prediction_read_options or read_options
    read_options, prediction_read_options = _weight_sides(read_options, prediction_read_options, figures)
    inputs = PairInputs(labels, predictions, read_options, prediction_read_options, options, figures)
    result = _small_pair(inputs, progress, grouped=bool(group_by))
    if result is not None:
        check_distinct(labels, predictions, read_options, prediction_read_options)
        return result
    from .blocks import compute_blocks  # any other pair: the readers, joins and groups, loaded only then

    return compute_blocks(inputs, progress, group_by, group_figures)


def _weight_sides(
    read_options: ReadOptions, prediction_read_options: ReadOptions, figures: FigureOptions
) -> tuple[ReadOptions, ReadOptions]:
    """Each side's read options: the weights are a column of the labels only."""
    if figures.weight_column:
        read_options = read_options._replace(weight_column=figures.weight_column)
    if prediction_read_options.weight_column is not None:
        prediction_read_options = prediction_read_options._replace(weight_column=None)
    return read_options, prediction_read_options


def _small_pair(inputs: PairInputs, progress: Progress | None, grouped: bool = False) -> LossResult | None:
    """Two small simple 2-D NPY files of one block each, without the block pipeline; None: any other pair.

    Why: ``batch`` over thousands of 256 KB pairs spent more of a pair in the general
    path's steps (format detection, the checks of named columns and ids, the
    generators that prefetch, align and schedule blocks) than in reading and summing
    it. This reads both files as :func:`open_pair` would (the same small-file reader);
    when no figure needs more than the losses, :func:`~cosloss_cli.pipeline.small_pairs.small_pair_figures`
    computes them, else their only block goes to the same :class:`BlockReducer` and figures.
    Either way the result is the general path's to the bit (tested). Anything else returns None
    before any work is repeated: other formats or options (``grouped``: ``--group-by``), vectors that are not rows
    (``axis`` 0, N-D, 1-D), several blocks, and sums that are not in range (a NaN, an
    infinity, a zero or extreme vector: the general path words their errors).
    """
    labels, predictions, read_options, prediction_read_options, options, figures = inputs
    if (
        grouped
        or options.join_on is not None
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
    state = BlockReducer(label_source, prediction_source, options, 1, figure_state)
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
