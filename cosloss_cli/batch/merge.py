"""Merging the pairs of a batch into its report: the pooled figures over every ok pair.

Every number is formed from per-pair results with exact sums (``math.fsum``) in
natural name order, so the report is identical for any number of jobs and any order
in which the pairs finished.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from .pair import PairResult
from .pairing import Discovery, natural_key


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


def overall(results: Iterable[PairResult], total_pairs: int) -> Overall:
    """Pooled mean (sum of pair sums / total count) and mean of pair means, in name order."""
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
    )


def in_name_order(results: Iterable[PairResult]) -> list[PairResult]:
    """Results in the natural order of their pair names (the order of every report)."""
    return sorted(results, key=lambda result: natural_key(result.name))


class Report(NamedTuple):
    """A finished batch, as the writers of :data:`~cosloss_cli.output.BATCH_WRITERS` take it."""

    results: list[PairResult]
    overall: Overall
    discovery: Discovery
