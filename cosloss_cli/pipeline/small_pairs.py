"""A small pair of NPY files of row vectors: what ``batch`` computes thousands of times.

``batch`` over 2,000 pairs of 256 KB files spent more of each pair in the general path's
steps (format detection, the block pipeline, the figures' state) than in reading and
summing it. ``pipeline.compute._small_pair`` reads such a pair with one open and one read per
file, and when its sums are in range and no figure needs more than the losses, :func:`small_pair_figures`
gives its losses and figures in a few calls. Both call the same functions as the general
path (the kernel, :func:`~cosloss_cli.core.cosine.summarize`,
:func:`~cosloss_cli.stats.distribution.order_figures`, the weighted sums), so every
value is the general path's to the bit, which ``tests/test_small_pairs.py`` checks.

Pure numpy, as :mod:`cosloss_cli.core.cosine`: no files, no click.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..core.cosine import Summary, in_range_row_losses, summarize
from ..core.reduction import NO_LOSSES, WeightedSums
from ..stats.distribution import order_figures

if TYPE_CHECKING:
    from ..core.cosine import Float64Array
    from ..stats.figures import FigureOptions


class SmallPairFigures(NamedTuple):
    """The losses of a small pair's rows and every figure a result without options has."""

    losses: Float64Array
    summary: Summary
    percentiles: dict[str, float]
    weighted_sums: WeightedSums
    #: The reduced loss (NaN for reduction ``none``, which has none).
    loss: float


def needs_only_the_losses(figures: FigureOptions, normalize: bool) -> bool:
    """Figures :func:`small_pair_figures` gives: no weights, worst or best rows, histogram or interval.

    And normalized losses: TF's raw ``1 - dot`` takes the general steps.
    """
    return (
        normalize
        and figures.weights is None
        and figures.weight_column is None
        and not figures.top
        and not figures.best
        and not figures.bins
        and not figures.confidence
    )


def small_pair_figures(
    labels: np.ndarray, predictions: np.ndarray, eps: float, reduction: str
) -> SmallPairFigures | None:
    """The losses and figures of the rows of two 2-D arrays of one block, or None if a sum is not in range.

    One block: the weighted sums of several blocks are added block by block in the general
    path, a different rounding than one sum over all the losses.
    """
    losses = in_range_row_losses(labels, predictions, eps)
    if losses is None:
        return None
    order = order_figures(losses, known_finite=True)  # in-range sums give finite losses
    summary = summarize(losses, median=order.median, extremes=(order.min, order.max))
    sums = NO_LOSSES.merge(WeightedSums.of(losses))  # as the figures add a block to no losses
    loss = math.nan if reduction == "none" else sums.reduce(reduction)
    return SmallPairFigures(losses, summary, order.percentiles, sums, loss)
