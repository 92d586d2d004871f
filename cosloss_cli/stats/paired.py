"""The paired t-test and the Wilcoxon signed-rank test of ``compare``, without ``scipy.stats``.

``compare`` reports scipy's numbers (``scipy.stats.ttest_rel(c, b)`` with its
confidence interval, ``scipy.stats.wilcoxon(c - b)``), so that a reviewer can reproduce
them with scipy. But importing scipy.stats takes longer than comparing a run of a few
thousand rows, and ``scipy.special``, which holds the distributions those tests end in
(``stdtr``, ``stdtrit``, ``ndtr``), imports in a fraction of that time (bench/RESULTS.md).
So the tests are written here with numpy and ``scipy.special``, in scipy 1.17's own
arithmetic (the same expressions, in the same order), which gives scipy's figures to the
last bit (the tests compare every branch with scipy.stats to 1e-12):

* the t-test (``ttest_1samp`` of the differences, ``_t_confidence_interval``): the mean,
  the variance with ``ddof=1`` as ``mean((d - mean)**2) * (n / (n - 1))``, the standard
  error ``sqrt(var / n)``, the two-sided p-value ``2 * stdtr(n - 1, -|t|)`` and the
  interval ``mean + stdtrit(n - 1, [(1 - c) / 2, 1 - (1 - c) / 2]) * se``;
* Wilcoxon's test with scipy's defaults (zeros dropped, ``correction=False``,
  ``method="auto"``), which chooses among three methods by the data:

  - more than :data:`EXACT_MAX_ROWS` differences, or ties or zeros among more than
    :data:`PERMUTATION_MAX_ROWS`: the normal approximation, with average ranks and the
    tie correction of the variance (``_wilcoxon_statistic``), ``p = 2 * ndtr(-|z|)``;
  - up to :data:`EXACT_MAX_ROWS` differences without ties or zeros: the exact null
    distribution of the positive rank sum (``_get_wilcoxon_distr``), two-sided as
    ``2 * min(sf, cdf)``;
  - ties or zeros among at most :data:`PERMUTATION_MAX_ROWS` differences: scipy's
    exact permutation test, every one of the ``2**n`` sign flips (below 9,999, so
    scipy enumerates them all rather than drawing), counted here.

Only the p-value is kept: ``compare`` reports no statistic of Wilcoxon's test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ..core.cosine import Float64Array

#: Above this many differences scipy's ``wilcoxon(method="auto")`` uses the normal
#: approximation whatever the data (scipy >= 1.13; the threshold is scipy's).
EXACT_MAX_ROWS = 50

#: Up to this many differences with ties or zeros, ``method="auto"`` runs an exact
#: permutation test (2**13 sign flips is under its default of 9,999 resamples).
PERMUTATION_MAX_ROWS = 13


class TTest(NamedTuple):
    """The paired t-test of the differences: its statistic, two-sided p-value and interval of the mean."""

    statistic: float
    p_value: float
    low: float
    high: float


def paired_t_test(d: Float64Array, confidence: float) -> TTest:
    """``scipy.stats.ttest_rel(c, b)`` and its ``confidence_interval(confidence)``, for ``d = c - b``.

    Degenerate data give scipy's NaN or infinities (no variance: an infinite or NaN
    statistic); the caller turns them into missing figures.
    """
    from scipy.special import stdtr, stdtrit

    n = d.size
    with np.errstate(all="ignore"):
        mean = np.mean(d)
        centered = d - mean
        variance = np.mean(centered**2) * (np.float64(n) / (np.float64(n) - 1))
        error = np.sqrt(variance / n)
        statistic = np.divide(mean, error)
        df = np.float64(n - 1)
        p_value = 2 * stdtr(df, -np.abs(statistic))
        tail = (1 - np.float64(confidence)) / 2
        low, high = stdtrit(df, np.stack((tail, 1 - tail)))
        return TTest(float(statistic), float(p_value), float(low * error + mean), float(high * error + mean))


def signed_rank_p_value(d: Float64Array) -> float:
    """The p-value of ``scipy.stats.wilcoxon(d)`` (two-sided, zeros dropped, no continuity correction).

    NaN when there is nothing to rank (no differences), as scipy's.
    """
    if d.size == 0:
        return float("nan")
    nonzero = np.where(d == 0, np.nan, d)
    ranks, ties = _average_ranks(np.abs(nonzero))
    positive = np.sum((nonzero > 0).astype(np.float64) * ranks)
    zeros = d.size - np.count_nonzero(d)
    tied = bool(np.any(ties == 0))
    if d.size > EXACT_MAX_ROWS or ((tied or zeros) and d.size > PERMUTATION_MAX_ROWS):
        return _normal_p_value(positive, float(d.size - zeros), ties)
    if tied or zeros:
        return _permutation_p_value(nonzero, ranks)
    return _exact_p_value(int(positive), d.size)


def _average_ranks(x: Float64Array) -> tuple[Float64Array, Float64Array]:
    """Average ranks of ``x`` (NaN last, each its own rank) and the sizes of its runs of ties.

    scipy's ``_rankdata(x, "average", return_ties=True)``: ``ties`` holds, in sorted
    order, the size of each run of equal values at the run's first place and 0 elsewhere.
    """
    n = x.size
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    first = np.concatenate([[True], ordered[:-1] != ordered[1:]])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=n)
    ordinal = np.arange(1, n + 1, dtype=np.float64)
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(ordinal[first] + (counts.astype(np.float64) - 1) / 2, counts)
    ties = np.zeros(n, dtype=np.float64)
    ties[first] = counts
    return ranks, ties


def _normal_p_value(positive: float, count: float, ties: Float64Array) -> float:
    """The normal approximation of the positive rank sum, with the tie correction of its variance."""
    from scipy.special import ndtr

    mean = count * (count + 1.0) * 0.25
    spread = count * (count + 1.0) * (2.0 * count + 1.0)
    with np.errstate(all="ignore"):
        error = np.sqrt((spread - np.sum(ties**3 - ties) / 2) / 24)
        z = (positive - mean) / error
        return float(2 * ndtr(-np.abs(z)))


def wilcoxon_distribution(n: int) -> Float64Array:
    """The probabilities of the positive rank sum ``0 .. n(n+1)/2`` of ``n`` differences without ties.

    scipy's ``_get_wilcoxon_distr``: each rank ``k`` is positive or negative with
    probability 1/2, so the distribution of ``n`` ranks is that of ``n - 1`` ranks, halved,
    plus itself shifted by ``k``. Every probability is a count over ``2**n``, exact in
    float64 for the sizes it is used for.
    """
    c = np.ones(1, dtype=np.float64)
    for k in range(1, n + 1):
        previous = c
        c = np.zeros(k * (k + 1) // 2 + 1, dtype=np.float64)
        m = len(previous)
        c[:m] = previous * 0.5
        c[-m:] += previous * 0.5
    return c


def _exact_p_value(positive: int, n: int) -> float:
    """Two-sided p-value of a positive rank sum under the exact distribution, summed as scipy sums it."""
    pmf = wilcoxon_distribution(n)
    middle = n * (n + 1) / 4

    def cdf(k: int) -> float:
        return float(pmf[: k + 1].sum()) if k <= middle else float(1 - pmf[k + 1 :].sum())

    def sf(k: int) -> float:
        return float(pmf[k:].sum()) if k <= middle else float(1 - pmf[:k].sum())

    return float(np.clip(2 * min(sf(positive), cdf(positive)), 0, 1))


def _permutation_p_value(nonzero: Float64Array, ranks: Float64Array) -> float:
    """scipy's exact permutation test: the positive rank sum under every one of the ``2**n`` sign flips.

    A zero (NaN here) keeps its rank out of the sum whatever its sign, so it counts
    twice as many flips with the same sum, as in scipy's enumeration. The sums are of
    half-integers, exact in float64, so counting ``<=`` and ``>=`` needs no tolerance.
    """
    n = nonzero.size
    kept = np.where(np.isnan(nonzero), 0.0, ranks)
    signs = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
    null = signs @ kept
    observed = float(np.sum((nonzero > 0) * kept))
    below = np.count_nonzero(null <= observed) / (1 << n)
    above = np.count_nonzero(null >= observed) / (1 << n)
    return float(np.clip(min(below, above) * 2, 0.0, 1.0))
