"""Merging the pairs of a batch into its report: the pooled figures over every ok pair.

Every number is formed from per-pair results with exact sums (``math.fsum``) in
natural name order, so the report is identical for any number of jobs and any order
in which the pairs finished.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from ..io.formats import natural_key
from .pair import PairResult
from .pairing import Discovery, Pair

if TYPE_CHECKING:
    from ..stats.figures import Figures


class Overall(NamedTuple):
    """Totals over a batch: the pooled mean is over every loss of every ok pair.

    ``count`` is the number of losses; as a field it hides ``tuple.count``.
    """

    pairs: int
    ok: int
    failed: int
    skipped: int
    count: int  # type: ignore[assignment]
    mean: float
    mean_of_means: float
    zero_vectors: int
    omitted: int
    #: The pooled figures: ``percentiles`` of every loss of every ok pair together (exact, not
    #: averaged), TF's ``reduction`` and ``loss`` of all their weighted losses (the pairs'
    #: sums merged), and their ``worst`` rows, each with its pair's name (``--top``).
    figures: Figures
    #: Rows matched by id (``--join-on``), over every pair that joined (failed ones too):
    #: ``matched`` of ``join_rows``; None without a join.
    matched: int | None = None
    join_rows: int | None = None
    #: ``--group-by``: the figures of each group over every ok pair's rows (pooled; see
    #: :class:`~cosloss_cli.batch.groups.PooledGroups`).
    groups: tuple[dict[str, Any], ...] | None = None

    def with_percentiles(self, percentiles: dict[str, float]) -> Overall:
        """These totals with the pooled percentiles, worked out after them (see :class:`Report`)."""
        return self._replace(figures=self.figures._replace(percentiles=percentiles))


def overall(
    results: Iterable[PairResult],
    total_pairs: int,
    percentiles: dict[str, float] | None = None,
    top: int = 0,
    groups: tuple[dict[str, Any], ...] | None = None,
) -> Overall:
    """Pooled mean (sum of pair sums / total count) and mean of pair means, in name order.

    ``percentiles`` are the pooled ones (:class:`~cosloss_cli.stats.pooled.PooledLosses`);
    ``top`` is how many of the pairs' worst rows to keep, the largest first (equal
    losses in name order, then row order). ``groups``: the pooled groups' figures
    (``--group-by``; :class:`~cosloss_cli.batch.groups.PooledGroups`).
    """
    done = in_name_order(results)
    good = [result for result in done if result.ok and result.summary is not None]
    count = sum(result.summary.count for result in good if result.summary is not None)
    means = [result.summary.mean for result in good if result.summary is not None and result.summary.count]
    pooled = math.fsum(result.total for result in good) / count if count else math.nan
    return Overall(
        pairs=total_pairs,
        ok=len(good),
        failed=len(done) - len(good),
        skipped=total_pairs - len(done),
        count=count,
        mean=pooled,
        mean_of_means=math.fsum(means) / len(means) if means else math.nan,
        zero_vectors=sum(result.summary.zero_vectors for result in good if result.summary is not None),
        omitted=sum(result.summary.omitted for result in good if result.summary is not None),
        figures=_pooled_figures(good, percentiles, top),
        **_matched(done),
        groups=groups,
    )


def _matched(done: list[PairResult]) -> dict[str, Any]:
    """``matched`` of ``join_rows`` over the pairs that joined rows by id (none: no fields)."""
    joined = [result.unmatched for result in done if result.unmatched is not None]
    if not joined:
        return {}
    return {"matched": sum(u.matched for u in joined), "join_rows": sum(u.rows for u in joined)}


def _pooled_figures(good: list[PairResult], percentiles: dict[str, float] | None, top: int) -> Figures:
    """The figures of every ok pair's losses together, in name order.

    The reduction of all weighted losses is the pairs' four sums added; the worst rows
    are the pairs' own, the largest first (ties in name, then row, order).
    """
    from ..core.reduction import NO_LOSSES
    from ..stats.figures import Figures, PairRanked

    pairs = [(result.name, result.figures) for result in good if result.figures is not None]
    if not pairs:
        return Figures(percentiles=percentiles)

    reduction, sums = pairs[0][1].reduction, NO_LOSSES
    for _, figures in pairs:
        if figures.weighted_sums is not None:
            sums = sums.merge(figures.weighted_sums)
    ranked = [PairRanked(name, *item) for name, figures in pairs for item in figures.worst]
    ranked.sort(key=lambda item: -item.loss)  # stable: ties stay in name, then row, order
    return Figures(
        reduction=reduction,
        weighted=any(figures.weighted for _, figures in pairs),
        loss=math.nan if reduction == "none" else sums.reduce(reduction),
        percentiles=percentiles,
        worst=tuple(ranked[:top]),
        weighted_sums=sums,
    )


def in_name_order(results: Iterable[PairResult]) -> list[PairResult]:
    """Results in the natural order of their pair names (the order of every report)."""
    return sorted(results, key=lambda result: natural_key(result.name))


class Report(NamedTuple):
    """A finished batch, as the writers of :data:`~cosloss_cli.render.output.BATCH_WRITERS` take it.

    ``pending``: the pooled percentiles, still being computed on a thread when the report
    is handed over (``overall`` has none yet); writers ask :meth:`final` for them as late
    as they can, so the pair objects are written meanwhile. ``encoded``: the pairs' JSON
    objects, encoded as each pair finished (while the workers were busy with the next).
    """

    results: list[PairResult]
    overall: Overall
    discovery: Discovery
    pending: Callable[[], dict[str, float]] | None = None
    encoded: dict[Pair, str] | None = None

    def final(self) -> Overall:
        """``overall`` with the pooled percentiles (waited for, if they are still being computed)."""
        return self.overall if self.pending is None else self.overall.with_percentiles(self.pending())
