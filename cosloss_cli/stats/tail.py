"""Tail risk of a comparison: how the paired differences are spread, not only their mean.

A candidate can improve the mean loss while a few rows get much worse; a team gating a
release needs to see those rows. From ``d = candidate - baseline`` per row (lower loss
is better, so a positive difference is a row the candidate made worse):

- the percentiles p01, p05, p50, p95 and p99 of ``d`` (numpy's default, linear method);
- how many rows are worse by more than ``worse_by`` (``--worse-by``, 0.1 by default),
  and their share of the compared rows;
- the rows with the largest differences (``--top K``);
- a histogram of the differences (``--bins N``) over their own range.

Pure numpy: no files, no printing (the renderers draw these figures).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .distribution import quantiles_by_rank
from .intervals import paired_differences

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..core.cosine import Float64Array

#: Percentiles of the paired differences, in the order the table and JSON show them.
DIFFERENCE_PERCENTILES: dict[str, float] = {"p01": 1.0, "p05": 5.0, "p50": 50.0, "p95": 95.0, "p99": 99.0}

#: ``--worse-by``: a row counts as worse when its loss grew by more than this.
DEFAULT_WORSE_BY = 0.1

#: A candidate whose mean improves while more than this share of its rows are worse by
#: more than ``worse_by`` gets a note: the improvement hides a tail.
TAIL_NOTE_SHARE = 0.01


class TailRisk(NamedTuple):
    """The spread of one candidate's differences from the baseline (see the module docstring).

    ``worst`` holds indices into the compared rows (largest difference first, ties by
    row); ``edges``/``counts`` are the histogram, empty without one. A figure that is
    not defined (no rows, or NaN differences under ``--nan-policy propagate``) is None.
    """

    percentiles: dict[str, float | None]
    worse_by: float
    worse_count: int
    worse_share: float | None
    worst: tuple[int, ...] = ()
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()


def tail_risk(
    candidate: ArrayLike, baseline: ArrayLike, *, worse_by: float = DEFAULT_WORSE_BY, top: int = 0, bins: int = 0
) -> TailRisk:
    """The tail risk of ``candidate`` against ``baseline`` (aligned per-row losses).

    >>> risk = tail_risk([0.1, 0.2, 0.9, 0.3], [0.2, 0.2, 0.3, 0.3], worse_by=0.1, top=1)
    >>> risk.worse_count, risk.worse_share, risk.worst
    (1, 0.25, (2,))
    >>> round(risk.percentiles["p99"], 6)
    0.582
    """
    _, _, d = paired_differences(candidate, baseline)
    finite = bool(np.isfinite(d).all())
    worse_count = int(np.count_nonzero(d > worse_by))
    if d.size == 0 or not finite:
        shown: dict[str, float | None] = {key: None for key in DIFFERENCE_PERCENTILES}
        share = None
    else:
        fractions = [value / 100 for value in DIFFERENCE_PERCENTILES.values()]
        values = quantiles_by_rank(d.size, fractions, lambda ranks: np.partition(d, ranks)[ranks])
        shown = {key: float(value) for key, value in zip(DIFFERENCE_PERCENTILES, values.tolist(), strict=True)}
        share = worse_count / d.size
    edges, counts = _histogram(d, bins)
    return TailRisk(
        percentiles=shown,
        worse_by=float(worse_by),
        worse_count=worse_count,
        worse_share=share,
        worst=largest(d, top),
        edges=edges,
        counts=counts,
    )


def largest(d: Float64Array, top: int) -> tuple[int, ...]:
    """Indices of the ``top`` largest finite values of ``d``, largest first, ties by index.

    >>> largest(np.array([0.1, 0.5, np.nan, 0.5, -1.0]), 2)
    (1, 3)
    """
    if top <= 0 or d.size == 0:
        return ()
    index = np.nonzero(np.isfinite(d))[0]
    values = d[index]
    if top < values.size:
        keep = np.argpartition(-values, top - 1)[:top]
        threshold = values[keep].min()
        # every value tied with the smallest kept one competes, so ties resolve by index
        candidates = np.nonzero(values >= threshold)[0]
        index, values = index[candidates], values[candidates]
    order = np.lexsort((index, -values))[:top]
    return tuple(int(i) for i in index[order])


def _histogram(d: Float64Array, bins: int) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Counts of the finite differences in ``bins`` equal bins over their own range.

    The range is symmetric around 0 (``[-m, m]`` with ``m`` the largest absolute
    difference), so that the bar at the middle edge marks "no change" and a tail on
    the right is a tail of rows made worse. All-zero differences get ``[-1e-12, 1e-12]``.
    """
    if bins <= 0:
        return (), ()
    finite = d[np.isfinite(d)]
    reach = float(np.abs(finite).max()) if finite.size else 0.0
    reach = reach if reach > 0 and math.isfinite(reach) else 1e-12
    counts, edges = np.histogram(finite, bins=int(bins), range=(-reach, reach))
    return tuple(float(x) for x in edges), tuple(int(x) for x in counts)
