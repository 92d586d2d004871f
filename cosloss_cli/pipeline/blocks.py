"""The block route: every pair of inputs the small road of :mod:`~cosloss_cli.pipeline.compute` does not take.

Any format, folder or URL, rows matched by id (``--join-on``), weights, the ``--group-by``
columns: the inputs are opened (:mod:`cosloss_cli.io`), their blocks aligned or joined
(:mod:`cosloss_cli.pairing`), reduced on threads and gathered in a
:class:`~cosloss_cli.pipeline.reducer.BlockReducer`. :func:`compute_pair` imports this
module only for such a pair, so that a small ``compute`` of two NPY files loads none of
the readers, joins and groups it needs (bench/RESULTS.md, round 10). In turn, the join
(:mod:`cosloss_cli.pairing.join`) and the ``--group-by`` columns and figures are imported
by the functions that use them, so that a pair read by position (two Arrow files) loads
neither, nor the dataset reader the groups need (bench/RESULTS.md, round 11).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..core.cosine import Sums, block_sums, losses_from_sums, normalize_axis
from ..errors import (
    DataError,
    IdMatchError,
    InputUsageError,
    RowIdsDifferError,
    RowsOutOfOrderError,
    UnmatchedRowsError,
)
from ..io import Block, ReadOptions, Source, check_distinct, open_pair
from ..io.base import DEFAULT_BLOCK_BYTES
from ..io.parquet import ColumnSlabs, column_slabs
from ..io.weights import weights_for
from ..pairing.align import aligned, check_columns_and_ids, check_shapes, pair_columns, source_shape_text
from ..stats.figures import FigureOptions, FigureState
from .reducer import (
    BlockReducer,
    Found,
    PairInputs,
    Progress,
    ProgressCallback,
    ReducedBlock,
    check_options,
    first_nonfinite,
    nonfinite_error,
)
from .result import ComputeOptions, LossResult
from .threads import map_ordered, prefetched

if TYPE_CHECKING:
    from ..pairing.join import Match, RowJoin


def compute_blocks(
    inputs: PairInputs, progress: Progress | None, group_by: Sequence[str], group_figures: bool
) -> LossResult:
    """What :func:`~cosloss_cli.pipeline.compute.compute_pair` does with a pair its small road does not take.

    The ``group_by`` columns are read first (only those columns, from the labels, else the
    predictions; :mod:`cosloss_cli.io.group_columns`) and left out of the vectors; each
    loss's group is in the result's ``grouping``, and each group's figures in its
    ``groups`` unless ``group_figures`` is off.
    """
    labels, predictions, read_options, prediction_read_options, options, figures = inputs
    columns = None
    if group_by:  # read first; a group column is never a vector component
        from ..io.group_columns import excluding_both, key_columns_for  # --group-by only (and datasets)

        columns, _ = key_columns_for(
            group_by, labels, [predictions], read_options, prediction_read_options, joined=options.join_on is not None
        )
        read_options, prediction_read_options = excluding_both(read_options, prediction_read_options, group_by)
    read_options, prediction_read_options = _joined_sides(read_options, prediction_read_options, options)
    inputs = PairInputs(labels, predictions, read_options, prediction_read_options, options, figures)
    sources = open_pair(labels, predictions, read_options, prediction_read_options)
    label_source, prediction_source = sources
    size_bytes = (label_source.size_bytes or 0) + (prediction_source.size_bytes or 0)
    with (progress or _unwatched)(label_source.shape[0], size_bytes) as report:
        result = _compute_opened(inputs, sources, report)
    check_distinct(labels, predictions, read_options, prediction_read_options)  # after any error in the data
    if columns is None:
        return result
    return _grouped(result, columns, figures if group_figures else None)


def _unwatched(rows: int | None, size_bytes: int) -> AbstractContextManager[ProgressCallback | None]:
    """No progress to report (the :data:`Progress` of a caller that gives none)."""
    return nullcontext()


def _joined_sides(
    read_options: ReadOptions, prediction_read_options: ReadOptions, options: ComputeOptions
) -> tuple[ReadOptions, ReadOptions]:
    """Each side's read options with the join's id column on both (``options.join_on``)."""
    if options.join_on is None:
        return read_options, prediction_read_options
    labels, predictions = join_read_options(read_options, prediction_read_options, options)
    return labels, predictions or labels


def _grouped(result: LossResult, columns: dict[str, np.ndarray], figures: FigureOptions | None) -> LossResult:
    """``result`` with each loss's group, and given ``figures`` each group's (each mean's interval as the whole's)."""
    from ..stats.groups import group_figures, row_groups  # --group-by only

    grouping = row_groups(result.losses, result.label_rows, result.axis, columns)
    if figures is None:
        return result._replace(grouping=grouping)
    confidence = float(result.figures.confidence or 0.0)
    found, notes = group_figures(
        result.losses, result.omitted, grouping, confidence=confidence, resamples=figures.resamples, seed=figures.seed
    )
    return result._replace(groups=tuple(found), grouping=grouping, notes=(*result.notes, *notes))


def _compute_opened(
    inputs: PairInputs, sources: tuple[Source, Source], progress: ProgressCallback | None
) -> LossResult:
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


def _matched_by_key(inputs: PairInputs, mismatch: RowsOutOfOrderError) -> LossResult:
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


def _matched_by_id(inputs: PairInputs, mismatch: RowIdsDifferError) -> LossResult:
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
    from ..pairing.join import LABEL_BLOCK_BYTES  # rows matched by id only
    from ..pairing.join import join_read_options as with_join_column

    predictions = with_join_column(prediction_read_options or read_options, options.join_on)
    labels = with_join_column(read_options, options.join_on)
    labels = labels._replace(block_bytes=min(labels.block_bytes, LABEL_BLOCK_BYTES), decode_threads=options.threads)
    return labels, predictions


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
    state = BlockReducer(labels, predictions, options, axis, figure_state)
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


def _slab_pass(slabs: ColumnSlabs, state: BlockReducer, progress: ProgressCallback | None) -> None:
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

        def summed(first: int, group: int = group) -> tuple[Sums, Found | None]:
            lvalues, pvalues = slabs.read(group, first)
            sums = block_sums(lvalues, pvalues, 1)
            if options.nan_policy != "raise" or sums.in_range or not sums.nonfinite.any():
                return sums, None
            row = int(np.argmax(sums.nonfinite))
            here = first_nonfinite(Block(lvalues[row : row + 1]), Block(pvalues[row : row + 1]))
            return sums, Found(here.side, (row, first + here.where[1]), here.value, width)

        merged: Sums | None = None
        found: Found | None = None
        firsts = slabs.firsts()
        for _, (sums, candidate) in map_ordered(summed, iter(firsts), options.threads):
            if candidate is not None and (found is None or candidate.where < found.where):
                found = candidate
            merged = _added(merged, sums)
        if found is not None:
            raise nonfinite_error(found, (state.labels, state.predictions)[found.side], offset + found.where[0])
        assert merged is not None
        merged = _slabs_total(merged, len(firsts))
        losses = losses_from_sums(merged, eps=options.eps, normalize=options.normalize)
        reduced = ReducedBlock(merged, losses, 0 if merged.in_range else int(merged.zero_vectors().sum()))
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
    reduced: ReducedBlock | None = None
    #: The first NaN or infinity when it stops the run (``nan_policy="raise"``).
    found: Found | None = None

    @property
    def nbytes(self) -> int:
        arrays: list[Any] = [*self.match[1:], self.ids, self.weights]
        if self.reduced is not None:
            arrays += [self.reduced.losses, self.reduced.sums.nonfinite]
        return sum(int(getattr(array, "nbytes", 0)) for array in arrays)


def _joined_block(join: RowJoin, state: BlockReducer, block: Block) -> _JoinedBlock:
    """Look a label block up, gather its partners and sum the pairs: all of a block's work, on any thread."""
    match = join.match(block)
    if not match.taken.size:
        return _JoinedBlock(match)
    lblock, vectors, rows = join.partners(block, match)
    reduced = state.reduce(lblock, Block(vectors), rows)
    found = None
    if state.refused(reduced):
        partners = vectors if rows is None else np.take(vectors, rows, axis=0)
        found = first_nonfinite(lblock, Block(partners))
    return _JoinedBlock(match, len(lblock), lblock.ids, lblock.weights, reduced, found)


def _join_pass(join: RowJoin, state: BlockReducer, options: ComputeOptions, progress: ProgressCallback | None) -> None:
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
                raise nonfinite_error(found, labels, int(label_rows[position]))
            raise nonfinite_error(found, predictions, int(result.match.taken[position]))
        state.take(offset, result.rows, result.ids, result.weights, result.reduced)
        offset += result.rows
        if progress is not None:
            progress(result.rows)


def _parallel_blocks(source: Source) -> Iterator[Block] | None:
    """A join's predictions when they are kept in memory: Parquet row groups decoded on both cores, else None."""
    from ..pairing.join import MAPPED_BUDGET_BYTES  # rows matched by id only

    return source.blocks.all_rows(MAPPED_BUDGET_BYTES)


def _row_join(labels: Source, predictions: Source, options: ComputeOptions) -> RowJoin | None:
    """The join of the rows by id that ``options.join_on`` asks for (its inputs checked), or None."""
    if options.join_on is None:
        return None
    from ..pairing.join import RowJoin, check_join_sources  # rows matched by id only

    check_join_sources(labels, predictions, options.join_on)
    return RowJoin(labels, predictions, strict=options.strict, min_matched=options.min_matched)


def _with_offsets(pairs: Iterable[tuple[Block, Block]]) -> Iterator[tuple[int, tuple[Block, Block]]]:
    offset = 0
    for pair in pairs:
        yield offset, pair
        offset += len(pair[0])
