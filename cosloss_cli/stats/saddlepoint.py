"""The BCa bootstrap interval of a mean, with the bootstrap distribution computed, not sampled.

Why: ``compute`` gives the 95% interval of the mean loss by default, and a bootstrap
that draws 10,000 resamples costs ``10,000 * rows`` random indices: 0.07 s for 1,000
losses, more than everything else the command does, and still Monte Carlo noise (two
seeds move the ends by a few hundredths of a standard error).

How: the bootstrap distribution of a mean is the distribution of the mean of ``n``
draws from the losses, whose cumulant generating function is known exactly:
``n * kappa(s / n)`` with ``kappa(s) = log(mean(exp(s * (x - mean(x)))))``. Daniels'
saddlepoint approximation with the Lugannani-Rice formula turns it into the
distribution function (Davison & Hinkley, *Bootstrap Methods and their Application*,
section 9.5; relative error O(n**-1.5), far below the Monte Carlo error of 10,000
resamples). The BCa interval (Efron & Tibshirani, eq. 14.10) then needs three things,
all without random numbers:

* the bias correction ``z0``: the bootstrap distribution at the observed mean, which
  the formula's limit at ``s = 0`` gives as ``1/2 + skewness / (6 * sqrt(2 * pi * n))``;
* the acceleration: the jackknife's, in closed form for the mean (as in
  :func:`cosloss_cli.stats.intervals.bca_interval`);
* the quantiles of the bootstrap distribution at the adjusted levels, found by a
  safeguarded Newton search over ``s``.

Above :data:`BINNED_ABOVE` values, ``kappa`` is evaluated on the values' means within
:data:`BINS` equal-width bins rather than on every value: one pass over the data, then
each evaluation costs the same whatever the rows. Replacing values by their bin's mean
changes ``log(mean(exp(s * x)))`` by at most ``(s * width)**2 / 8``, below 1e-12 at the
``s`` of any usual interval.

A lattice (a handful of rows, or values on a few levels, such as losses that are all
0 or 1) has a bootstrap distribution of steps that no smooth formula follows, and
scipy's interval then jumps between the steps: :func:`smooth_enough` says when the
values are too few or too coarse, and the caller draws resamples instead
(:func:`cosloss_cli.stats.intervals.mean_ci`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..core.cosine import Float64Array

#: Fewest distinct values for the computed distribution (:func:`smooth_enough`), counted
#: on at most :data:`DISTINCT_SAMPLE` values taken at equal steps.
MIN_DISTINCT = 100
DISTINCT_SAMPLE = 5000

#: Above this many values, kappa is evaluated on the means of :data:`BINS` bins.
BINNED_ABOVE = 1 << 16
BINS = 1 << 16

#: Newton steps at most per quantile (each one evaluation of kappa); 3 to 6 are typical.
MAX_STEPS = 200

#: The search stops when a step moves ``s`` by less than this fraction: the quantile is
#: then known to about 1e-10 of a standard error, and the Lugannani-Rice sum itself is
#: only good to about 1e-11 (it subtracts two terms of order 1/w).
STEP_TOLERANCE = 1e-10


class _Points(NamedTuple):
    """The centred values (or the bins' centred means) and their weights, summing to 1."""

    values: Float64Array
    weights: Float64Array


class _Cumulants(NamedTuple):
    """kappa and its first two derivatives at one ``s``."""

    k0: float
    k1: float
    k2: float


def smooth_enough(values: Float64Array) -> bool:
    """Whether the bootstrap distribution of the mean is smooth enough to be computed.

    It is a lattice when the values take few levels; with :data:`MIN_DISTINCT` levels or
    more (in a sample of :data:`DISTINCT_SAMPLE` values at equal steps, which costs
    nothing next to the losses) the steps lie far below a standard error.
    """
    x = np.asarray(values).ravel()
    if x.size < MIN_DISTINCT:
        return False
    sample = np.sort(x[:: max(1, x.size // DISTINCT_SAMPLE)])  # not np.unique: it imports numpy.ma
    return 1 + int(np.count_nonzero(sample[1:] != sample[:-1])) >= MIN_DISTINCT


def saddlepoint_mean_ci(values: ArrayLike, *, confidence: float) -> tuple[float, float]:
    """The BCa interval ``(low, high)`` of the mean of ``values``: the limit of scipy's as resamples grow.

    ``scipy.stats.bootstrap((values,), np.mean, method="BCa", confidence_level=confidence)``
    estimates the same interval from random resamples; the tests check that its ends lie
    within its Monte Carlo error of these, for values that are :func:`smooth_enough`.
    Fewer than 2 values or a non-finite one give ``(nan, nan)``; values all equal give
    ``(value, value)``; the ends never leave ``[min, max]``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size < 2 or not np.isfinite(x).all():
        return math.nan, math.nan
    if x.min() == x.max():
        return float(x[0]), float(x[0])
    n = x.size
    mean = float(np.mean(x))
    centred = x - mean
    squares = centred * centred
    variance = float(np.mean(squares))
    third = float(np.mean(squares * centred))
    if variance <= 0:  # rounding: every value equal to the mean
        return mean, mean
    skewness = third / variance**1.5
    z0 = normal_ppf(0.5 + skewness / (6 * math.sqrt(2 * math.pi * n)))
    acceleration = skewness / (6 * math.sqrt(n))  # sum(d**3) / (6 * sum(d**2)**1.5)
    points = _points(centred, x.min() - mean, x.max() - mean)
    ends = []
    for z in (normal_ppf((1 - confidence) / 2), normal_ppf((1 + confidence) / 2)):
        shifted = z0 + z
        if acceleration * shifted >= 1:  # past the pole of BCa's adjustment: no level
            return math.nan, math.nan
        level = normal_cdf(z0 + shifted / (1 - acceleration * shifted))
        ends.append(mean + _quantile(points, n, level, variance))
    low, high = (min(max(end, float(x.min())), float(x.max())) for end in ends)
    return low, high


def _points(centred: Float64Array, low: float, high: float) -> _Points:
    """Every centred value with weight 1/n, or above :data:`BINNED_ABOVE` the bins' means."""
    n = centred.size
    if n <= BINNED_ABOVE:
        return _Points(centred, np.full(n, 1.0 / n))
    width = (high - low) / BINS
    index = ((centred - low) / width).astype(np.int64)
    np.clip(index, 0, BINS - 1, out=index)
    counts = np.bincount(index, minlength=BINS).astype(np.float64)
    sums = np.bincount(index, weights=centred, minlength=BINS)
    filled = counts > 0
    return _Points(sums[filled] / counts[filled], counts[filled] / n)


def _cumulants(points: _Points, s: float) -> _Cumulants:
    """kappa(s) = log(sum(w * exp(s * d))) and its derivatives, shifted so exp never overflows."""
    exponents = s * points.values
    top = float(exponents.max())
    scaled = points.weights * np.exp(exponents - top)
    total = float(scaled.sum())
    k1 = float(np.dot(points.values, scaled)) / total
    k2 = float(np.dot(points.values * points.values, scaled)) / total - k1 * k1
    return _Cumulants(top + math.log(total), k1, max(k2, 0.0))


def _distribution(points: _Points, n: int, s: float) -> tuple[float, float, float]:
    """At saddlepoint ``s``: P(mean* - mean <= q) (Lugannani-Rice), q, and dP/ds."""
    k = _cumulants(points, s)
    w_squared = max(2 * n * (s * k.k1 - k.k0), 0.0)
    w = math.copysign(math.sqrt(w_squared), s)
    v = s * math.sqrt(n * k.k2)
    if k.k2 <= 0 or w == 0 or v == 0:  # at the mean, or pushed onto the largest/smallest value
        return (0.5 if s == 0 else (1.0 if s > 0 else 0.0)), k.k1, 0.0
    probability = normal_cdf(w) + normal_pdf(w) * (1 / w - 1 / v)
    density = math.sqrt(n / (2 * math.pi * k.k2)) * math.exp(-w_squared / 2)  # of the mean, at q
    return min(max(probability, 0.0), 1.0), k.k1, density * k.k2  # dq/ds = kappa''(s)


def _quantile(points: _Points, n: int, level: float, variance: float) -> float:
    """The ``level`` quantile of mean* - mean: Newton over ``s``, kept inside a bracket once one is known."""
    unit = 1 / math.sqrt(n * variance)  # the saddlepoint of one standard error
    s = normal_ppf(level) * unit  # where the normal approximation puts it
    low = -math.inf
    high = math.inf
    q = 0.0
    for _ in range(MAX_STEPS):
        probability, q, slope = _distribution(points, n, s)
        if probability == level:
            return q
        if probability < level:
            low = s
        else:
            high = s
        following = s - (probability - level) / slope if slope > 0 else math.nan
        if not low < following < high:  # Newton left the bracket: bisect, or widen the search
            if math.isfinite(low) and math.isfinite(high):
                following = (low + high) / 2
            elif math.isfinite(low):
                following = low + max(abs(low), unit)
            else:
                following = high - max(abs(high), unit)
        if abs(following - s) <= STEP_TOLERANCE * abs(s):
            return q
        s = following
    return q


def normal_cdf(x: float) -> float:
    """The standard normal distribution function, by ``erfc``: ``NormalDist().cdf`` loses the lower tail."""
    return 0.5 * math.erfc(-x / math.sqrt(2))


def normal_pdf(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def normal_ppf(p: float) -> float:
    """The standard normal quantile: Newton's method on :func:`normal_cdf`, to the last bits.

    The lower tail is solved directly (``erfc`` keeps its relative precision there) and
    the upper one by symmetry; from a start within a few percent (the logistic curve, or
    the tail's asymptote) Newton's steps converge in 3 to 6 steps; 60 bound them.
    """
    if not 0 < p < 1:
        return -math.inf if p == 0 else (math.inf if p == 1 else math.nan)
    if p > 0.5:
        return -normal_ppf(1 - p)
    if p > 0.01:
        x = math.log(p / (1 - p)) / 1.702  # logistic approximation of the normal
    else:  # the tail's asymptote: p ~ pdf(x) / -x
        t = -2 * math.log(p)
        x = -math.sqrt(t - math.log(t) - math.log(2 * math.pi))
    for _ in range(60):
        density = normal_pdf(x)
        if density == 0:  # p below what a float's pdf can show: the start is as good as it gets
            break
        step = (normal_cdf(x) - p) / density
        x -= step
        if abs(step) <= 1e-15 * max(1.0, abs(x)):
            break
    return x
