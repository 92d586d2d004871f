"""One pair of a batch: what it is computed with, how, and what comes back.

Each pair goes through the same :func:`~cosloss_cli.pipeline.compute.compute_pair` as
``compute``; a pair that fails becomes an ``error`` result with its message, so the
other pairs still run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..base.spool import Span, spool
from ..errors import CoslossError, OutputError, UnmatchedRowsError
from ..render.output import OUTPUT_DIR_FORMATS
from .pairing import Pair, check_inside, is_remote, output_path
from .stop import stop_check

if TYPE_CHECKING:
    import numpy as np

    from ..core.cosine import Summary
    from ..io import ReadOptions
    from ..pairing.join import Unmatched
    from ..pipeline.result import ComputeOptions, LossResult
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
    (:class:`~cosloss_cli.batch.groups.PooledGroups`).
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


def run_pair(task: PairTask, pair: Pair) -> PairResult:
    """Compute one pair (and write its losses file); failures become an ``error`` result."""
    try:
        from ..core.cosine import exact_sum
        from ..pipeline.compute import compute_pair

        result = compute_pair(
            pair.labels,
            pair.predictions,
            task.label_options,
            task.compute,
            _figures(task),
            task.prediction_options,
            group_by=task.group_by,
            group_figures=False,  # the batch's groups pool every pair's losses
        )
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
        groups=None if result.grouping is None else _pair_groups(result),
    )


def _pair_groups(result: LossResult) -> PairGroups:
    """Each kept loss's group in the pair, as the route grouped the pair's rows."""
    import numpy as np

    grouping = result.grouping
    assert grouping is not None
    keep = ~np.asarray(result.omitted, dtype=bool)
    losses = np.asarray(result.losses, dtype=np.float64)[keep]
    return PairGroups(grouping.names, grouping.keys, grouping.codes[keep], losses)


def run_pairs(task: PairTask, pairs: list[Pair]) -> list[PairResult]:
    """Several pairs in one task, one after the other (small pairs share a task's fixed cost).

    Each pair is computed exactly as alone, so grouping never changes a result. With a
    ``spool_dir``, the task's kept losses are written there together, and each result
    says where its own are.
    """
    results = [run_pair(task, pair) for pair in pairs]
    kept = [result.kept for result in results if result.kept is not None]
    if task.spool_dir is None or not kept:
        return results
    try:
        spans = iter(spool(task.spool_dir, kept))
    except OSError:  # a full disk: sent back after all
        return results
    return [result if result.kept is None else result._replace(kept=None, span=next(spans)) for result in results]


def _figures(task: PairTask) -> FigureOptions:
    """The figures a task asks of each pair (none besides the summary when it says nothing)."""
    from ..stats.figures import FigureOptions

    return task.figures if task.figures is not None else FigureOptions(confidence=0)


def _write_output(task: PairTask, target: str, result: LossResult) -> None:
    """Write a pair's losses file whole or not at all; a URL needs no folders created."""
    from ..render.writers import write_losses_file

    assert task.output_dir is not None
    fmt = OUTPUT_DIR_FORMATS[task.output_format]
    stopped = None
    if task.stop_event is not None:
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
