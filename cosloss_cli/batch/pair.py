"""One pair of a batch: what it is computed with, how, and what comes back.

Each pair goes through the same :func:`~cosloss_cli.pipeline.compute.compute_files` as
``compute``; a pair that fails becomes an ``error`` result with its message, so the
other pairs still run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..base.spool import spool
from ..errors import CoslossError, DataError, OutputError, UnmatchedRowsError
from ..render.output import OUTPUT_DIR_FORMATS
from .pairing import Pair, check_inside, is_remote, output_path

if TYPE_CHECKING:  # numpy and the pipeline load when a pair runs
    import numpy as np

    from ..base.spool import Span
    from ..core.cosine import Summary
    from ..io import ReadOptions
    from ..pairing.join import Unmatched
    from ..pipeline.result import ComputeOptions
    from ..stats.figures import FigureOptions, Figures


class PairTask(NamedTuple):
    """What every pair is computed with (picklable, sent to the workers)."""

    label_options: ReadOptions
    prediction_options: ReadOptions
    compute: ComputeOptions
    keep_losses: bool = False
    output_dir: str | None = None
    output_format: str = "csv"
    #: fsspec options of an ``output_dir`` URL (the inputs carry theirs in their ReadOptions).
    storage_options: dict[str, Any] | None = None
    #: Weights (a column of each labels file), reduction, ``top``; None: ``compute``'s defaults
    #: without the interval of the mean.
    figures: FigureOptions | None = None
    #: Send the kept losses back for the pooled percentiles (:class:`~cosloss_cli.stats.pooled.PooledLosses`).
    pool_losses: bool = False
    #: With ``pool_losses``: a folder of this machine where each worker writes them instead
    #: (:mod:`~cosloss_cli.base.spool`); the result says where. None: in the result.
    spool_dir: str | None = None
    #: On a Dask cluster: the name of the event the client sets when it stops (Ctrl-C,
    #: SIGTERM, --fail-fast). A task still running then writes no output file: checked
    #: once the file is written, just before it replaces any older one.
    stop_event: str | None = None
    #: ``--group-by``: columns of each pair's labels (else predictions) whose values group its rows.
    group_by: tuple[str, ...] = ()


class PairGroups(NamedTuple):
    """One pair's groups (``--group-by``): each kept loss's group and each group's key.

    ``codes`` and ``losses`` are aligned (the pair's kept losses, in row order); ``keys``
    are the pair's own groups, in its key order. The batch pools them over every pair
    (:func:`~cosloss_cli.batch.merge.pooled_groups`).
    """

    names: tuple[str, ...]
    keys: list[tuple[Any, ...]]
    codes: np.ndarray
    losses: np.ndarray


class PairResult(NamedTuple):
    """The outcome of one pair: ``ok`` with its summary, or ``error`` with a message.

    ``total`` is the correctly rounded sum of the pair's losses that count, so pooled
    means can be formed exactly from ``count`` and ``total``. ``losses`` (and
    ``omitted``, ``ids``) are kept only when the task asks for them.
    """

    pair: Pair
    status: Literal["ok", "error"]
    error: str | None = None
    summary: Summary | None = None
    total: float = 0.0
    rows: int = 0
    output: str | None = None
    losses: np.ndarray | None = None
    omitted: np.ndarray | None = None
    ids: np.ndarray | None = None
    #: Rows matched by id (``--join-on``): those left out for want of a partner.
    unmatched: Unmatched | None = None
    #: Every unmatched id of the labels and of the predictions (also of a pair that failed
    #: for them); the runner takes them out into :class:`~cosloss_cli.batch.split.SplitRows`.
    unmatched_keys: tuple[np.ndarray, np.ndarray] | None = None
    #: The pair's figures, its result's own (None for a pair that failed).
    figures: Figures | None = None
    #: The kept losses, when the task pools them; the runner takes them out as it pools them.
    kept: np.ndarray | None = None
    #: Where the worker wrote them instead, with a ``spool_dir``.
    span: Span | None = None
    #: ``--group-by``: the pair's groups and their losses.
    groups: PairGroups | None = None

    @property
    def name(self) -> str:
        return self.pair.name

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run_pair(task: PairTask, pair: Pair, checked: bool = False) -> PairResult:
    """Compute one pair (and write its losses file); failures become an ``error`` result.

    ``checked``: the task's options are known to pass their checks (:func:`_options_hold`).
    """
    try:
        from ..core.cosine import exact_sum
        from ..pipeline.compute import compute_pair

        label_options, prediction_options, columns = _group_columns(task, pair)
        result = compute_pair(
            pair.labels,
            pair.predictions,
            label_options,
            task.compute,
            _figures(task),
            prediction_options,
            checked=checked,
        )
        groups = None if columns is None else _pair_groups(result, columns)
        output = None
        if task.output_dir is not None:
            output = output_path(task.output_dir, pair.name, task.output_format)
            _write_output(task, output, result)
    except UnmatchedRowsError as exc:  # the counts and ids still tell whether another pair holds the partners
        return PairResult(pair, "error", error=str(exc), unmatched=exc.unmatched, unmatched_keys=exc.keys)
    except CoslossError as exc:
        return PairResult(pair, "error", error=str(exc))
    except MemoryError:
        return PairResult(pair, "error", error="out of memory (use fewer --jobs)")
    except Exception as exc:  # a bug or an unexpected library error: keep the batch going
        return PairResult(pair, "error", error=f"internal error: {type(exc).__name__}: {exc}")
    kept = result.kept()
    return PairResult(
        pair,
        "ok",
        summary=result.summary,
        total=exact_sum(kept) if kept.size else 0.0,
        rows=int(result.shape[0]) if result.shape else 1,
        output=output,
        losses=result.losses if task.keep_losses else None,
        omitted=result.omitted if task.keep_losses else None,
        ids=result.ids if task.keep_losses else None,
        unmatched=result.unmatched,
        unmatched_keys=result.unmatched_keys,
        figures=result.figures,
        kept=kept if task.pool_losses else None,
        groups=groups,
    )


def _group_columns(task: PairTask, pair: Pair) -> tuple[ReadOptions, ReadOptions, dict[str, np.ndarray] | None]:
    """The read options without the group columns, and those columns (None without ``group_by``)."""
    if not task.group_by:
        return task.label_options, task.prediction_options, None
    from ..stats.groups import excluding_both, key_columns_for

    columns, _ = key_columns_for(
        task.group_by,
        pair.labels,
        [pair.predictions],
        task.label_options,
        task.prediction_options,
        joined=bool(task.compute.join_on),
    )
    return (*excluding_both(task.label_options, task.prediction_options, task.group_by), columns)


def _pair_groups(result: Any, columns: dict[str, np.ndarray]) -> PairGroups:
    """Each kept loss's group in the pair (rows as ``compute --group-by`` aligns them)."""
    import numpy as np

    from ..stats.groups import aligned, group_rows, result_rows

    rows = result_rows(result.losses, result.label_rows, result.axis)
    size = next(iter(columns.values())).shape[0]
    if (result.label_rows is None and size != rows.size) or (rows.size and int(rows.max()) >= size):
        raise DataError(f"the --group-by columns have {size} rows, the vectors {result.losses.shape[0]}")
    groups = group_rows(aligned(columns, rows, size))
    keep = ~np.asarray(result.omitted, dtype=bool)
    return PairGroups(groups.names, groups.keys, groups.codes[keep], np.asarray(result.losses, dtype=np.float64)[keep])


def run_pairs(task: PairTask, pairs: list[Pair]) -> list[PairResult]:
    """Several pairs in one task, one after the other (small pairs share a task's fixed cost).

    Each pair is computed exactly as alone, so grouping never changes a result. With a
    ``spool_dir``, the task's kept losses are written there together, and each result
    says where its own are.
    """
    checked = _options_hold(task)
    results = [run_pair(task, pair, checked) for pair in pairs]
    kept = [result.kept for result in results if result.kept is not None]
    if task.spool_dir is None or not kept:
        return results
    try:
        spans = iter(spool(task.spool_dir, kept))
    except OSError:  # a full disk: sent back after all
        return results
    return [result if result.kept is None else result._replace(kept=None, span=next(spans)) for result in results]


def _options_hold(task: PairTask) -> bool:
    """Whether the task's options pass their checks, done once for a task's pairs.

    A small pair spent 3 % of its time checking the same options again. When they do
    not pass, each pair is computed unchecked and reports the error as it would alone.
    """
    from ..pipeline.compute import check_options
    from ..stats.figures import check_figure_options

    try:
        check_figure_options(_figures(task))
        check_options(task.compute)
    except CoslossError:
        return False
    return True


def _figures(task: PairTask) -> FigureOptions:
    """The figures a task asks of each pair (none besides the summary when it says nothing)."""
    from ..stats.figures import FigureOptions

    return task.figures if task.figures is not None else FigureOptions(confidence=0)


def _write_output(task: PairTask, target: str, result: Any) -> None:
    """Write a pair's losses file whole or not at all; a URL needs no folders created."""
    from ..render.writers import write_losses_file

    assert task.output_dir is not None
    fmt = OUTPUT_DIR_FORMATS[task.output_format]
    stopped = None
    if task.stop_event is not None:
        from .stop import stop_check

        stopped = stop_check(task.stop_event)
    if is_remote(target):
        write_losses_file(target, result, fmt, task.storage_options, before_replace=stopped)
        return
    output_dir = task.output_dir
    folder = os.path.dirname(target)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder: {exc.strerror or exc}", path=folder) from None
    check_inside(output_dir, target)  # again, now that the folders exist
    write_losses_file(target, result, fmt, before_replace=stopped)
