"""The losses of a ``compute`` that does not report them one by one, kept on disk beyond a bound.

``compute --json --no-losses`` reports the summary, percentiles, interval, histogram and
worst rows, but not the losses: past :data:`~cosloss_cli.pipeline.reducer.SPILL_LOSSES` of them, they go to the
store ``batch`` pools its pairs' losses in (:class:`~cosloss_cli.stats.pooled.PooledLosses`: a
temporary file beyond its memory bound, exact percentiles by a radix selection over
it), and what needs every loss is found from that file a chunk at a time. Memory is
then a fixed working set whatever the rows: no loss, mask or id is kept per row.

The figures are those of the losses held in memory, with two differences of rounding
and method, documented: the sums of the mean and deviation are added a block (then a
chunk) at a time instead of in one pairwise sum; the interval of the mean is the
normal one, ``mean ± z s / sqrt(n)``, which the bootstrap's BCa interval equals to a
relative 1/n at millions of losses, instead of the bootstrap's (which would need all
of them in memory).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..core.cosine import Summary
from ..stats.distribution import PERCENTILES, histogram_range
from ..stats.pooled import PooledLosses

if TYPE_CHECKING:
    from ..core.cosine import BoolArray, Float64Array, Summary


class SpilledLosses:
    """Counted losses added block by block; the summary and figures of them all, in bounded memory."""

    def __init__(self, omit: bool) -> None:
        self.omit = omit
        self.pooled = PooledLosses(memory_values=0)
        self.count = 0
        self.omitted = 0
        self.has_nan = False
        self._parts: list[float] = []
        self._low = math.inf
        self._high = -math.inf
        #: (min, max) of the finite losses, the range of the histogram.
        self._finite = (math.inf, -math.inf)

    def add(self, losses: Float64Array, nonfinite: BoolArray) -> None:
        """Take a block's losses; under ``omit``, those of its non-finite vectors are left out and counted."""
        counted = losses.ravel()
        if self.omit and nonfinite.any():
            counted = losses[~nonfinite].ravel()
            self.omitted += losses.size - counted.size
        if not counted.size:
            return
        self.count += counted.size
        self._parts.append(float(np.sum(counted)))
        low, high = float(counted.min()), float(counted.max())
        if math.isnan(low) or math.isnan(high):
            self.has_nan = True  # (--nan-policy propagate) every statistic is NaN, as numpy's are
        else:
            self._low, self._high = min(self._low, low), max(self._high, high)
        finite = counted if math.isfinite(low) and math.isfinite(high) else counted[np.isfinite(counted)]
        if finite.size:
            self._finite = (min(self._finite[0], float(finite.min())), max(self._finite[1], float(finite.max())))
        self.pooled.add(counted)

    def summary(self, zero_vectors: int) -> tuple[Summary, dict[str, float]]:
        """The summary of every counted loss, and their percentiles (p05 ... p99)."""
        nan = math.nan
        if self.count == 0 or self.has_nan:
            summary = Summary(self.count, nan, nan, nan, nan, nan, zero_vectors, self.omitted)
            return summary, dict.fromkeys(PERCENTILES, nan)
        fractions = [0.5, *(q / 100 for q in PERCENTILES.values())]
        if self._low == self._high:  # one value (a file of copies, say): no pass over them is needed
            found, mean, deviations = [self._low] * len(fractions), self._low, 0.0
        else:
            mean = math.fsum(self._parts) / self.count
            deviations = math.fsum(float(np.sum(np.square(chunk - mean))) for chunk in self.chunks())
            found = self.pooled.quantiles(fractions)
        summary = Summary(
            count=self.count,
            mean=mean,
            std=math.sqrt(deviations / self.count),
            min=self._low,
            median=found[0],
            max=self._high,
            zero_vectors=zero_vectors,
            omitted=self.omitted,
        )
        return summary, dict(zip(PERCENTILES, found[1:], strict=True))

    def interval(self, summary: Summary, confidence: float) -> tuple[float, float]:
        """The normal interval of the mean at ``confidence`` (see the module); NaN if it cannot be formed."""
        if not confidence or summary.count < 2 or not math.isfinite(summary.mean) or not math.isfinite(summary.std):
            return math.nan, math.nan
        from statistics import NormalDist

        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        half = z * summary.std * math.sqrt(summary.count / (summary.count - 1)) / math.sqrt(summary.count)
        return summary.mean - half, summary.mean + half

    def histogram(self, bins: int) -> tuple[Float64Array, np.ndarray]:
        """(edges, counts) of the finite losses, as :func:`~cosloss_cli.stats.distribution.histogram` bins them."""
        finite = np.array(self._finite) if self._finite[0] <= self._finite[1] else np.empty(0)
        low, high = histogram_range(finite)
        counts = np.zeros(bins, dtype=np.int64)
        edges = np.histogram(np.empty(0), bins=bins, range=(low, high))[1]
        for chunk in self.chunks():
            counts += np.histogram(chunk[np.isfinite(chunk)], bins=bins, range=(low, high))[0]
        return edges, counts

    def chunks(self) -> Iterator[np.ndarray]:
        return self.pooled.chunks()

    def close(self) -> None:
        self.pooled.close()


if TYPE_CHECKING:
    from collections.abc import Iterator
