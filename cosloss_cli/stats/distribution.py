"""The distribution of the losses, not just their mean: percentiles, worst rows, histogram.

Pure numpy: no files; rich only inside :func:`sparkline`, which draws for the table view.

- :func:`percentiles`: p05, p25, p75, p95 and p99 by numpy's default (linear) method;
  :func:`pooled_percentiles` gives them for several pairs' losses together, exactly.
- :class:`TopK`: the K largest (or, ``best=True``, smallest) losses and their indices in
  one pass over blocks, with memory bounded by K plus one block.
- :func:`histogram` and :func:`sparkline`: counts over [0, 2], or over the losses'
  own range when it is narrow, drawn as one row of block characters.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import InputUsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from numpy.typing import ArrayLike

    from ..core.cosine import Float64Array

#: Summary key -> percentile, in the order the table and JSON show them.
PERCENTILES: dict[str, float] = {"p05": 5.0, "p25": 25.0, "p75": 75.0, "p95": 95.0, "p99": 99.0}


def percentiles(losses: ArrayLike) -> dict[str, float]:
    """p05 p25 p75 p95 p99 of the losses, equal to ``np.percentile``'s default (linear) method.

    Pass the kept losses (omitted ones removed), as :func:`cosloss_cli.core.cosine.summarize`
    gets them; like the summary, a NaN among them (``--nan-policy propagate``) makes
    every percentile NaN, and no losses give NaN. Computed from the one partition
    that also gives the median (:func:`median_and_percentiles`), not ``np.percentile``,
    which imports ``numpy.ma`` (measured: bench/RESULTS.md, round 10).

    Examples
    --------
    >>> percentiles([0.0, 1.0, 2.0, 3.0, 4.0])
    {'p05': 0.2, 'p25': 1.0, 'p75': 3.0, 'p95': 3.8, 'p99': 3.96}
    """
    return median_and_percentiles(losses)[1]


#: Up to this many losses :func:`median_and_percentiles` sorts them rather than partitioning:
#: numpy's (SIMD) sort beats a partition at a dozen ranks on few values (it pays on the
#: batch row: bench/RESULTS.md, round 10). Either gives the same order statistics.
SORT_MAX_VALUES = 2048


def median_and_percentiles(losses: ArrayLike) -> tuple[float, dict[str, float]]:
    """The median (as ``np.median``) and :func:`percentiles`, from one partition of one copy.

    What ``compute`` reports of every input: separately they cost two copies and two
    partitions of all the losses (0.16 s for 2 million), the largest serial step after
    the last block. A NaN among the losses makes both NaN, as each does alone. The
    ranks for a size are worked out once (``batch`` asks for thousands of pairs of the
    same size) and interpolated in Python floats (see :func:`_interpolated`).

    >>> median_and_percentiles([3.0, 0.0, 1.0, 2.0])[0]
    1.5
    """
    figures = order_figures(losses, extremes=False)
    return figures.median, figures.percentiles


class OrderFigures(NamedTuple):
    """The figures of a set of losses that their order gives (NaN: unknown or not asked for)."""

    min: float
    median: float
    max: float
    percentiles: dict[str, float]


def order_figures(losses: ArrayLike, known_finite: bool = False, extremes: bool = True) -> OrderFigures:
    """:func:`median_and_percentiles`, and with ``extremes`` the min and max as well.

    The extremes are the order statistics of ranks 0 and n - 1, taken from the same sort
    or partition as the others: a small pair of ``batch`` then needs no reductions for
    them (the same values as ``np.min`` and ``np.max`` when there is no NaN).

    >>> order_figures([3.0, 0.0, 1.0, 2.0])[:3]
    (0.0, 1.5, 3.0)
    """
    flat = np.asarray(losses, dtype=np.float64).ravel()
    if flat.size == 0 or (not known_finite and np.isnan(flat).any()):
        return OrderFigures(math.nan, math.nan, math.nan, dict.fromkeys(PERCENTILES, math.nan))
    size = flat.size
    middle = size // 2
    wanted: tuple[int, ...] = (middle,) if size % 2 else (middle - 1, middle)
    if extremes:
        wanted += (0, size - 1)
    ranks, picks = _plan(size, _PERCENTILE_FRACTIONS, wanted)
    if size <= SORT_MAX_VALUES:
        found = np.sort(flat)[ranks].tolist()
    else:
        found = np.partition(flat, ranks)[ranks].tolist()
    by_rank = dict(zip(ranks, found, strict=True))
    median = by_rank[middle] if size % 2 else (by_rank[middle - 1] + by_rank[middle]) / 2  # np.median's mean
    low, high = (by_rank[0], by_rank[size - 1]) if extremes else (math.nan, math.nan)
    return OrderFigures(low, median, high, dict(zip(PERCENTILES, _interpolated(found, picks), strict=True)))


def percentiles_by_rank(size: int, order_statistics: Callable[[list[int]], ArrayLike]) -> dict[str, float]:
    """The percentiles of ``size`` values from their order statistics (linear method, as numpy).

    ``order_statistics(ranks)`` returns the values of 0-based ranks ``ranks`` (sorted,
    distinct) in the sorted values: a partition of an array in memory, or a selection
    over values on disk (:mod:`cosloss_cli.stats.pooled`). ``size`` must be > 0.
    """
    values = quantiles_by_rank(size, _PERCENTILE_FRACTIONS, order_statistics)
    return {key: float(value) for key, value in zip(PERCENTILES, values, strict=True)}


def quantiles_by_rank(
    size: int, quantiles: ArrayLike, order_statistics: Callable[[list[int]], ArrayLike]
) -> Float64Array:
    """``np.quantile(values, quantiles)`` (linear method) from the order statistics it needs.

    The order statistics come from wherever the values are: a partition, or the pooled
    selection over the workers' files (:mod:`cosloss_cli.stats.pooled`); also what
    :mod:`cosloss_cli.stats.intervals` takes the ends of a bootstrap interval with
    (``np.quantile`` would import ``numpy.ma``).
    """
    ranks, picks = _plan(size, tuple(np.asarray(quantiles, dtype=np.float64).reshape(-1).tolist()))
    found = np.asarray(order_statistics(list(ranks)), dtype=np.float64).tolist()
    return np.array(_interpolated(found, picks), dtype=np.float64)


#: The fractions of :data:`PERCENTILES` (5.0 / 100 ... as numpy divides them).
_PERCENTILE_FRACTIONS: tuple[float, ...] = tuple((np.array(list(PERCENTILES.values())) / 100).tolist())


@functools.lru_cache(maxsize=256)
def _plan(
    size: int, quantiles: tuple[float, ...], extra_ranks: tuple[int, ...] = ()
) -> tuple[list[int], tuple[tuple[int, int, float], ...]]:
    """The sorted distinct ranks the quantiles of ``size`` values need (and ``extra_ranks``),
    and for each quantile (position of its lower rank in them, of its upper one, fraction).

    Cached: a batch asks the same question for every pair of the same size, and working
    it out in numpy cost more than the partition it serves.
    """
    virtual = (size - 1) * np.asarray(quantiles, dtype=np.float64)
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, size - 1)
    ranks = sorted({*below.tolist(), *above.tolist(), *extra_ranks})
    position = {rank: i for i, rank in enumerate(ranks)}
    fractions = (virtual - below).tolist()
    picks = tuple(
        (position[low], position[high], fraction)
        for low, high, fraction in zip(below.tolist(), above.tolist(), fractions, strict=True)
    )
    return ranks, picks


def _interpolated(found: list[float], picks: tuple[tuple[int, int, float], ...]) -> list[float]:
    """numpy's interpolation between neighbours, formula for formula, so the results are its bits.

    In Python floats, which round every step as float64 numpy does (no fused multiply-add).
    """
    values = []
    for low_at, high_at, fraction in picks:
        low, high = found[low_at], found[high_at]
        step = high - low
        values.append(high - step * (1 - fraction) if fraction >= 0.5 else low + step * fraction)
    return values


def pooled_percentiles(loss_arrays: Iterable[ArrayLike]) -> dict[str, float]:
    """The percentiles of several pairs' losses taken together (``batch``'s pooled row).

    Exact: computed on all the losses at once, not averaged from the pairs' percentiles.
    """
    flats = [np.asarray(losses, dtype=np.float64).ravel() for losses in loss_arrays]
    return percentiles(np.concatenate(flats) if flats else np.empty(0))


class TopK:
    """The K largest losses with their indices, selected one block at a time.

    ``best=True`` keeps the K smallest instead (``--best K``). Equal losses are ranked
    by index, lower first, so the result is exactly the first K rows of a stable sort
    (descending for the worst, ascending for the best). NaN losses are never ranked.
    Memory stays at K candidates plus one block; each block costs a partition, not a sort.

    Examples
    --------
    >>> top = TopK(2)
    >>> top.update([0.5, 1.5, 0.25], offset=0)
    >>> top.update([1.5, 2.0], offset=3)
    >>> top.result()
    [(4, 2.0), (1, 1.5)]
    """

    def __init__(self, k: int, *, best: bool = False):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise InputUsageError(f"the number of rows to keep must be a whole number >= 0, not {k!r}")
        self.k = int(k)
        self.best = best
        # Candidates: sort keys (smaller is kept first) and their indices.
        self._keys: Float64Array = np.empty(0, dtype=np.float64)
        self._indices = np.empty(0, dtype=np.int64)

    def update(self, block_losses: ArrayLike, offset: int) -> None:
        """Take in a block of losses whose first one has index ``offset`` (flattened order)."""
        losses = np.asarray(block_losses, dtype=np.float64).ravel()
        if self.k == 0 or losses.size == 0:
            return
        keys = losses if self.best else -losses
        indices = np.arange(offset, offset + losses.size, dtype=np.int64)
        keep = ~np.isnan(keys)
        if self._keys.size == self.k:
            keep &= keys <= self._keys.max()  # cannot displace a candidate: skip before concatenating
        self._keys = np.concatenate([self._keys, keys[keep]])
        self._indices = np.concatenate([self._indices, indices[keep]])
        if self._keys.size > self.k:
            self._select()

    def _select(self) -> None:
        """Keep the K smallest keys, the lower index first among equal keys at the cut."""
        kth = np.partition(self._keys, self.k - 1)[self.k - 1]
        inside = np.flatnonzero(self._keys < kth)
        tied = np.flatnonzero(self._keys == kth)
        tied = tied[np.argsort(self._indices[tied], kind="stable")[: self.k - inside.size]]
        chosen = np.concatenate([inside, tied])
        self._keys = self._keys[chosen]
        self._indices = self._indices[chosen]

    def result(self) -> list[tuple[int, float]]:
        """(index, loss) of the kept rows, worst first (best first for ``best=True``)."""
        order = np.lexsort((self._indices, self._keys))
        sign = 1.0 if self.best else -1.0
        return [(int(self._indices[i]), float(sign * self._keys[i]) + 0.0) for i in order]


#: Losses whose range (max - min) is below this are binned over [min, max] instead of
#: [0, 2]: 20 bins over [0, 2] are 0.1 wide, so such losses would fill one or two bins.
NARROW_RANGE = 0.2

#: The range of the loss of normalized vectors.
LOSS_RANGE = (0.0, 2.0)


def histogram(losses: ArrayLike, bins: int = 20) -> tuple[Float64Array, np.ndarray]:
    """(edges, counts) of the finite losses in ``bins`` equal bins.

    The range is [0, 2], the range of the loss, so that runs are comparable; it is
    [min, max] instead when that range is *narrow*: ``0 < max - min < NARROW_RANGE``
    (0.2, two of the default 20 bins). Raw losses (``--no-normalize``) may fall outside
    [0, 2]: then the range is widened to take them. Bins are half-open except the
    last, as in ``np.histogram``; the counts sum to the number of finite losses (NaN
    losses are not binned).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InputUsageError(f"the number of bins must be a whole number >= 1, not {bins!r}")
    flat = np.asarray(losses, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    low, high = histogram_range(finite)
    counts, edges = np.histogram(finite, bins=int(bins), range=(low, high))
    return edges, counts


def histogram_range(finite: Float64Array) -> tuple[float, float]:
    """[0, 2], or [min, max] when that is narrow, or wider to hold raw losses (see :func:`histogram`)."""
    if finite.size == 0:
        return LOSS_RANGE
    low, high = float(finite.min()), float(finite.max())
    if 0 < high - low < NARROW_RANGE:
        return low, high
    return min(low, LOSS_RANGE[0]), max(high, LOSS_RANGE[1])


#: Eighths of a character cell, from one eighth to full.
BARS = "▁▂▃▄▅▆▇█"


def sparkline(counts: ArrayLike, edges: ArrayLike, width: int | None = None, *, color: bool = True) -> Any:
    """A histogram as one row of bars with the first, middle and last bin edges under it.

    Each bin is ``width // bins`` characters wide (one when ``width`` is None or
    smaller than the number of bins); a bar's height is its count relative to the
    largest, rounded up to the next eighth so that any non-empty bin shows, and an empty
    bin is a space. With ``color`` the result is a rich ``Text`` (bars in cyan, edges
    dimmed) for the table view; without it, the same two lines as plain text.

    Examples
    --------
    >>> print(sparkline([0, 1, 4, 8, 3, 2, 1, 1], np.linspace(0, 2, 9), width=16, color=False))
      ▁▁▄▄██▃▃▂▂▁▁▁▁
    0.00  1.00  2.00
    """
    heights = np.asarray(counts, dtype=np.int64)
    bounds = np.asarray(edges, dtype=np.float64)
    if heights.ndim != 1 or bounds.shape != (heights.size + 1,) or heights.size == 0:
        raise ValueError(f"need n counts and n + 1 edges, not {heights.shape} and {bounds.shape}")
    cell = max(1, (width or 0) // heights.size)
    bars = "".join(_bar(count, int(heights.max())) * cell for count in heights)
    labels = _edge_labels(bounds, cell)
    if not color:
        return f"{bars}\n{labels}"
    from rich.text import Text

    text = Text()
    text.append(bars, style="cyan")
    text.append("\n" + labels, style="dim")
    return text


def _bar(count: int, largest: int) -> str:
    if count <= 0 or largest <= 0:
        return " "
    return BARS[max(1, math.ceil(8 * count / largest)) - 1]


def _edge_labels(edges: Float64Array, cell: int) -> str:
    """The first, middle and last edges under their places in the row of bars.

    The first starts under the first bar, the last ends under the last bar, the middle
    is centred on the middle edge; when the row is too short for that, the three are
    written one space apart. Decimals: enough to tell the edges of a narrow range apart.
    """
    bins = edges.size - 1
    span = float(edges[-1] - edges[0])
    decimals = 2 if span <= 0 else min(15, max(2, math.ceil(-math.log10(span)) + 2))
    first, last = f"{edges[0]:.{decimals}f}", f"{edges[-1]:.{decimals}f}"
    total = bins * cell
    if bins == 1:
        return f"{first}{' ' * max(1, total - len(first) - len(last))}{last}"
    middle = f"{edges[bins // 2]:.{decimals}f}"
    middle_start = bins // 2 * cell - len(middle) // 2
    last_start = total - len(last)
    if middle_start <= len(first) or last_start <= middle_start + len(middle):
        return f"{first} {middle} {last}"
    return first + " " * (middle_start - len(first)) + middle + " " * (last_start - middle_start - len(middle)) + last
