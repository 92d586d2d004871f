"""Statistics of losses: bootstrap confidence intervals of a mean and paired comparisons.

This is what ``cosloss compare`` reports and what ``compute``'s interval of the mean
uses. The tests are scipy's (``ttest_rel``, ``wilcoxon``), so that a reviewer can
reproduce every number with scipy on the same losses, computed by
:mod:`cosloss_cli.stats.paired` on ``scipy.special`` alone; scipy is imported inside the
functions that need it, never at the start of a command.

Three things are written here rather than taken from scipy:

* the bootstrap resamples of the mean of up to :data:`EXACT_BOOTSTRAP_MAX_ROWS` values
  (:func:`exact_bootstrap_means`): the same draws as ``scipy.stats.bootstrap``, without
  importing scipy.stats (0.6 s), since ``compute`` draws this interval by default;
* the bootstrap of the mean of a *large* sample (:func:`mean_ci` above
  :data:`EXACT_BOOTSTRAP_MAX_ROWS` rows), where ``scipy.stats.bootstrap`` would draw
  ``rows * resamples`` indices (1e10 for a million losses) and its BCa jackknife costs
  ``rows**2``; see :func:`grouped_bootstrap_means` for the design;
* Holm's step-down adjustment (:func:`holm`), which scipy does not have.

scipy warns (``RuntimeWarning``, ``DegenerateDataWarning``) on degenerate data; those
warnings are silenced here and the reason a figure is missing is returned as a note
instead, so that nothing reaches stderr from below the CLI.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .distribution import quantiles_by_rank
from .saddlepoint import saddlepoint_mean_ci, smooth_enough

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..core.cosine import Float64Array

#: Fewest bootstrap resamples accepted (``compute`` and ``compare``): below this the
#: interval's ends are mostly noise.
MIN_RESAMPLES = 100

#: Resamples drawn when none are asked for and the bootstrap distribution cannot be
#: computed (values on a lattice, see :func:`cosloss_cli.stats.saddlepoint.smooth_enough`).
DEFAULT_RESAMPLES = 10000

#: Up to this many values :func:`mean_ci` draws scipy's exact resamples (a plain
#: bootstrap costs ``rows * resamples`` draws); above it, the grouped resampler.
EXACT_BOOTSTRAP_MAX_ROWS = 5000

#: Number of groups of the grouped resampler (cost per resample: one multinomial draw
#: over this many groups, about 10 microseconds). 32 of them at each end of the sorted
#: values are single values.
GROUPS = 128
TAIL_SINGLETONS = 32

#: Values drawn at a time (resamples x rows for scipy, resamples x groups for the grouped
#: resampler): what bounds the memory of one batch of resamples.
BATCH_VALUES = 1 << 20

#: Verdict words of a comparison (the confidence interval of the mean difference is
#: below 0, above 0, or contains it).
BETTER = "better"
WORSE = "worse"
NO_CLEAR_DIFFERENCE = "no clear difference"


@contextmanager
def quiet() -> Iterator[None]:
    """No warnings from scipy or numpy: missing figures are explained by notes instead."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def mean_ci(values: ArrayLike, *, confidence: float, resamples: int | None, seed: int) -> tuple[float, float]:
    """BCa bootstrap confidence interval ``(low, high)`` of the mean of ``values``.

    ``resamples`` None (what ``compute`` and ``compare`` do unless told): the bootstrap
    distribution is computed, not drawn (:mod:`cosloss_cli.stats.saddlepoint`), when the values
    are smooth enough; else :data:`DEFAULT_RESAMPLES` are drawn with ``seed``.

    Drawn: up to :data:`EXACT_BOOTSTRAP_MAX_ROWS` values, :func:`exact_bootstrap_means`
    draws the resamples exactly as ``scipy.stats.bootstrap((values,), np.mean,
    method="BCa", n_resamples=resamples, confidence_level=confidence,
    rng=np.random.default_rng(seed))`` does, so the interval is scipy's (to the rounding
    of its jackknife); above, :func:`grouped_bootstrap_means` draws them at a cost that
    does not grow with the rows, within Monte Carlo error of scipy's.
    :func:`bca_interval` turns the means into the interval as scipy does. No scipy
    import: importing ``scipy.stats`` alone takes 0.6 s.

    Fewer than 2 values or a non-finite value give ``(nan, nan)``; values that are all
    equal give ``(value, value)`` (every resample has that mean; scipy would warn and
    give NaN).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if resamples is None:
        if smooth_enough(x):
            return saddlepoint_mean_ci(x, confidence=confidence)
        resamples = DEFAULT_RESAMPLES
    if x.size < 2 or not np.isfinite(x).all():
        return math.nan, math.nan
    if x.min() == x.max():
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    draw = exact_bootstrap_means if x.size <= EXACT_BOOTSTRAP_MAX_ROWS else grouped_bootstrap_means
    return bca_interval(x, draw(x, resamples=resamples, rng=rng), confidence=confidence)


def exact_bootstrap_means(x: ArrayLike, *, resamples: int, rng: np.random.Generator) -> Float64Array:
    """``resamples`` bootstrap means of ``x``, drawn as ``scipy.stats.bootstrap`` draws them.

    The same generator calls in the same order (``rng.integers(0, n, (batch, n))`` per
    batch of resamples, the mean along the last axis), so a seed gives scipy's means bit
    for bit; the batch only bounds the memory (``resamples x n`` indices otherwise).
    """
    values = np.asarray(x, dtype=np.float64).ravel()
    n = values.size
    batch = max(1, BATCH_VALUES // n)
    out = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, batch):
        stop = min(start + batch, resamples)
        out[start:stop] = np.mean(values[rng.integers(0, n, (stop - start, n))], axis=-1)
    return out


def grouped_bootstrap_means(x: ArrayLike, *, resamples: int, rng: np.random.Generator) -> Float64Array:
    """``resamples`` bootstrap means of ``x``, drawn at a cost that does not grow with ``len(x)``.

    Why: a plain bootstrap draws ``len(x)`` indices per resample, 1e10 random numbers for
    a million losses and 10,000 resamples. But a resample's mean only depends on how
    many times each value was drawn, and values that are close can share their draw.

    How: the sorted values are cut into :data:`GROUPS` contiguous groups (the
    :data:`TAIL_SINGLETONS` smallest and largest values each form a group of their own,
    so that outliers, which make a bootstrap distribution lumpy, are resampled exactly;
    the rest are groups of equal size). For each resample:

    1. the number of draws from each group, ``c_g``, is drawn from the multinomial
       distribution that a resample of ``n`` rows induces (exactly the bootstrap's);
    2. given those counts, the sum of the ``c_g`` draws inside group ``g`` has mean
       ``c_g * mean_g``, variance ``c_g * var_g`` and third cumulant ``c_g * mu3_g``
       (population moments of the group). Summed over the groups these are
       ``S = sum c_g mean_g``, ``V = sum c_g var_g`` and ``T = sum c_g mu3_g``, and the
       within-group part is drawn from a gamma distribution shifted and scaled to have
       mean 0, variance ``V`` and third cumulant ``T`` (a normal one when ``T`` is ~0).

    The resample's sum therefore has the exact conditional mean and variance, and the
    exact third cumulant, of a true bootstrap resample; what differs is the shape
    beyond the third cumulant of the small within-group parts, an O(1/n) effect far
    below the Monte Carlo error of the interval (the tests check the intervals against
    scipy's on skewed data). With ``n <= GROUPS`` every value is its own group and the
    draw is an exact bootstrap. Cost: ``resamples * GROUPS`` binomial draws and one
    sort; memory: the groups' moments, one batch of counts and the means returned.
    """
    values = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n = values.size
    sizes, moments = _group_moments(values)
    probabilities = sizes / n
    out = np.empty(resamples, dtype=np.float64)
    batch = max(1, BATCH_VALUES // sizes.size)
    with np.errstate(all="ignore"):
        for start in range(0, resamples, batch):
            stop = min(start + batch, resamples)
            counts = rng.multinomial(n, probabilities, size=stop - start)
            sums, variance, third = (counts @ moments).T  # one (batch x groups) @ (groups x 3) product
            out[start:stop] = (sums + _skewed_noise(variance, third, rng)) / n
    return out


def _group_moments(values: Float64Array) -> tuple[Float64Array, Float64Array]:
    """The groups' sizes, and their means, population variances and third central moments as columns."""
    n = values.size
    if n <= GROUPS:
        starts = np.arange(n)
    else:
        tail = min(TAIL_SINGLETONS, (GROUPS - 1) // 2)
        middle = np.linspace(tail, n - tail, GROUPS - 2 * tail + 1).round().astype(np.int64)[:-1]
        starts = np.concatenate([np.arange(tail), middle, np.arange(n - tail, n)])
    sizes = np.diff(np.append(starts, n)).astype(np.float64)
    means = np.add.reduceat(values, starts) / sizes
    centered = values - np.repeat(means, sizes.astype(np.int64))
    squares = centered * centered  # not ** 2 and ** 3: pow() is several times slower
    variances = np.add.reduceat(squares, starts) / sizes
    third = np.add.reduceat(squares * centered, starts) / sizes
    return sizes, np.column_stack([means, variances, third])


def _skewed_noise(variance: Float64Array, third: Float64Array, rng: np.random.Generator) -> Float64Array:
    """Draws with mean 0, the given variances and third cumulants (shifted gamma or normal)."""
    noise = np.zeros_like(variance)
    positive = variance > 0
    skew = np.zeros_like(variance)
    skew[positive] = third[positive] / variance[positive] ** 1.5
    # A gamma of shape k has skewness 2/sqrt(k); below a skewness of 1e-3 (k > 4e6) it
    # is a normal distribution for every purpose here, and the gamma loses precision.
    gamma = positive & (np.abs(skew) > 1e-3)
    normal = positive & ~gamma
    shape = 4.0 / skew[gamma] ** 2
    standardized = (rng.standard_gamma(shape) - shape) / np.sqrt(shape)
    noise[gamma] = np.sign(skew[gamma]) * standardized * np.sqrt(variance[gamma])
    noise[normal] = rng.standard_normal(int(normal.sum())) * np.sqrt(variance[normal])
    return noise


def bca_interval(x: ArrayLike, bootstrap_means: ArrayLike, *, confidence: float) -> tuple[float, float]:
    """The BCa interval of the mean of ``x`` from its bootstrap means, as scipy forms it.

    Bias correction ``z0 = ndtri(p)`` with ``p`` the fraction of bootstrap means below
    the observed mean (ties counted half, as scipy's ``_percentile_of_score``); the
    acceleration is the jackknife's, which for the mean has the closed form
    ``sum((x - mean)**3) / (6 * sum((x - mean)**2)**1.5)`` (no O(n**2) jackknife); the
    ends are the linear-interpolation quantiles of the bootstrap means at scipy's
    adjusted levels (Efron & Tibshirani, eq. 14.10).
    """
    from statistics import NormalDist  # scipy.special's ndtr/ndtri, without importing scipy

    normal = NormalDist()
    data = np.asarray(x, dtype=np.float64).ravel()
    means = np.asarray(bootstrap_means, dtype=np.float64)
    observed = np.mean(data)
    below = np.count_nonzero(means < observed) + np.count_nonzero(means <= observed)
    share = below / (2 * means.size)
    if not 0 < share < 1:  # every mean on one side: scipy's z0 is infinite and its interval NaN
        return math.nan, math.nan
    z0 = normal.inv_cdf(share)
    with np.errstate(all="ignore"):
        centered = data - observed
        squares = centered * centered
        acceleration = float(np.sum(squares * centered) / (6 * np.sum(squares) ** 1.5))
    z_alpha = normal.inv_cdf((1 - confidence) / 2)
    levels = []
    for z in (z_alpha, -z_alpha):
        shifted = z0 + z
        level = z0 + shifted / (1 - acceleration * shifted) if acceleration * shifted != 1 else math.nan
        levels.append(normal.cdf(level) if math.isfinite(level) else math.nan)
    if not all(math.isfinite(level) for level in levels):
        return math.nan, math.nan
    low, high = quantiles_by_rank(means.size, levels, lambda ranks: np.partition(means, ranks)[ranks])
    return float(low), float(high)


class Comparison(NamedTuple):
    """A candidate's per-row losses against a baseline's on the same rows.

    With ``d = candidate - baseline`` per row (lower loss is better, so a negative
    mean difference favours the candidate): ``mean_difference`` is ``mean(d)`` and
    ``ci_low``/``ci_high`` its BCa bootstrap interval (rows resampled together);
    ``t_ci_low``/``t_ci_high`` the paired t-test's interval; ``better``/``worse``/
    ``ties`` count rows where the candidate's loss is lower/higher/equal (exactly);
    ``effect_size`` is Cohen's d_z, ``mean(d) / std(d, ddof=1)``. A figure that is not
    defined for these rows is None and ``notes`` says why.
    """

    rows: int
    mean_difference: float | None
    ci_low: float | None
    ci_high: float | None
    t_ci_low: float | None
    t_ci_high: float | None
    better: int
    worse: int
    ties: int
    p_value_t: float | None
    p_value_wilcoxon: float | None
    effect_size: float | None
    verdict: str
    notes: tuple[str, ...] = ()


def paired_differences(candidate: ArrayLike, baseline: ArrayLike) -> tuple[Float64Array, Float64Array, Float64Array]:
    """The candidate's and the baseline's losses as flat float64 arrays, and ``d = candidate - baseline``.

    Raises ValueError when they are not aligned (not as many losses on both sides).
    """
    c = np.asarray(candidate, dtype=np.float64).ravel()
    b = np.asarray(baseline, dtype=np.float64).ravel()
    if c.shape != b.shape:
        raise ValueError(f"candidate has {c.size} losses, baseline {b.size}: they must be aligned")
    with np.errstate(all="ignore"):
        d = c - b
    return c, b, d


def paired_comparison(
    candidate: ArrayLike, baseline: ArrayLike, *, confidence: float, resamples: int | None, seed: int
) -> Comparison:
    """Compare two aligned arrays of losses row by row (see :class:`Comparison`)."""
    c, b, d = paired_differences(candidate, baseline)
    with np.errstate(all="ignore"):
        mean = finite_or_none(float(np.mean(d))) if d.size else None
    empty = Comparison(
        rows=d.size,
        mean_difference=mean,
        ci_low=None,
        ci_high=None,
        t_ci_low=None,
        t_ci_high=None,
        better=int(np.count_nonzero(c < b)),
        worse=int(np.count_nonzero(c > b)),
        ties=int(np.count_nonzero(c == b)),
        p_value_t=None,
        p_value_wilcoxon=None,
        effect_size=None,
        verdict=NO_CLEAR_DIFFERENCE,
    )
    if d.size < 2:
        return empty._replace(notes=(f"{d.size} row(s) to compare: at least 2 are needed for the statistics",))
    if not np.isfinite(d).all():
        return empty._replace(notes=("NaN or infinite losses: no statistics",))
    low, high = mean_ci(d, confidence=confidence, resamples=resamples, seed=seed)
    result = empty._replace(ci_low=finite_or_none(low), ci_high=finite_or_none(high))
    result = result._replace(verdict=_verdict(result.ci_low, result.ci_high))
    if result.ci_low is None or result.ci_high is None:
        result = result._replace(notes=("the bootstrap distribution is degenerate (too few distinct differences)",))
    if d.min() == d.max():
        return _constant_difference(result, d)
    return _with_tests(result, d, confidence)


def _constant_difference(result: Comparison, d: Float64Array) -> Comparison:
    """Differences without variance: the t-test and d_z are undefined, the signed-rank test is not.

    When every row is a tie, Wilcoxon has no non-zero difference to rank either, so both
    p-values are None. When every row differs by the same non-zero amount, the signed
    ranks are all on one side and scipy's p-value is well defined: it is reported.
    """
    if d[0] == 0:
        return result._replace(
            notes=("every row is a tie: the differences have no variance, so no p-values or effect size",)
        )
    from .paired import signed_rank_p_value  # compare's tests only: not for a compute's interval

    with quiet():
        p_value = finite_or_none(signed_rank_p_value(d))
    note = (
        f"every row differs by the same {float(d[0])!r}: the differences have no variance, "
        "so no t-test p-value, t interval or effect size"
    )
    return result._replace(p_value_wilcoxon=p_value, notes=(note,))


def _with_tests(result: Comparison, d: Float64Array, confidence: float) -> Comparison:
    """Add the paired t-test, its interval, the Wilcoxon signed-rank test and Cohen's d_z.

    The tests are scipy's (:mod:`cosloss_cli.stats.paired`), without importing scipy.stats.
    """
    from .paired import paired_t_test, signed_rank_p_value  # compare's tests only: not for a compute's interval

    with quiet():
        t_test = paired_t_test(d, confidence)
        p_value_wilcoxon = signed_rank_p_value(d)
        effect = float(np.mean(d) / np.std(d, ddof=1))
    return result._replace(
        t_ci_low=finite_or_none(t_test.low),
        t_ci_high=finite_or_none(t_test.high),
        p_value_t=finite_or_none(t_test.p_value),
        p_value_wilcoxon=finite_or_none(p_value_wilcoxon),
        effect_size=finite_or_none(effect),
    )


def _verdict(low: float | None, high: float | None) -> str:
    if high is not None and high < 0:
        return BETTER
    if low is not None and low > 0:
        return WORSE
    return NO_CLEAR_DIFFERENCE


def finite_or_none(value: float) -> float | None:
    """A figure for results and JSON: NaN and infinities become None."""
    return value if math.isfinite(value) else None


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of p-values for multiple comparisons; None stays None.

    Sorted ascending, the i-th smallest of the m p-values (i from 0) becomes
    ``max over j <= i of min(1, (m - j) * p_j)``; results are in the input order.
    scipy has no Holm (``false_discovery_control`` is Benjamini-Hochberg), and these
    few lines do not justify statsmodels.

    >>> holm([0.01, None, 0.04, 0.03])
    [0.03, None, 0.06, 0.06]
    """
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(present)
    for rank, (p, index) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted
