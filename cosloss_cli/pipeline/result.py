"""The records of a computation: how to compute (:class:`ComputeOptions`) and what came out."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..core.cosine import DEFAULT_EPS, Summary
from ..core.params import NanPolicy
from ..stats.figures import Figures

if TYPE_CHECKING:
    from ..core.cosine import BoolArray, Float64Array
    from ..pairing.join import Unmatched
    from ..stats.groups import Groups


class ComputeOptions(NamedTuple):
    """How to turn vectors into losses (the options every command shares)."""

    axis: int = -1
    eps: float = DEFAULT_EPS
    normalize: bool = True
    nan_policy: NanPolicy = "raise"
    threads: int = min(2, os.cpu_count() or 1)
    #: Match rows by the value of this column (any order, unmatched rows left out) instead of by position.
    join_on: str | None = None
    #: With ``join_on``: a row whose id has no partner is an error instead of being left out.
    strict: bool = False
    #: With ``join_on``: the least share of rows that must find their partner, from 0 (leave
    #: any number out) to 1 (none); below it, an :class:`UnmatchedRowsError`. ``batch`` uses 1.
    min_matched: float = 0.0
    #: Whether the result must hold every loss (``losses``, ``omitted``, ``ids``). Off (the
    #: CLI's ``--json --no-losses``), losses beyond a bound are spilled to disk and the
    #: result's ``losses`` is empty: memory stays bounded whatever the rows (see ``spilled``).
    keep_losses: bool = True


class LossResult(NamedTuple):
    """Per-vector losses of one pair of inputs, their summary and their figures.

    ``losses`` has the input shape without ``axis``; entries that were omitted under
    ``nan_policy="omit"`` are NaN there and True in ``omitted``. The figures beyond the
    summary are one :class:`~cosloss_cli.stats.figures.Figures` record, ``figures``
    (``result.figures.loss``, ``result.figures.percentiles``...); the names they had as
    fields of the result (``result.loss``) still read them, for code written before.
    """

    labels: str
    predictions: str
    axis: int
    shape: tuple[int, ...]
    losses: Float64Array
    omitted: BoolArray
    summary: Summary
    ids: np.ndarray | None = None
    #: What was decided on the user's behalf (id columns, headers, column order): one line each.
    notes: tuple[str, ...] = ()
    #: The name of the column the ids came from, if any (the index name of :meth:`to_frame`).
    id_column: str | None = None
    #: Rows matched by id (``join_on``): those left out for want of a partner, else None.
    unmatched: Unmatched | None = None
    #: Rows matched by id: the 0-based row in the labels file of each row of ``losses``.
    label_rows: np.ndarray | None = None
    #: Rows matched by id: every unmatched id of the labels and of the predictions (``batch``
    #: looks for them in its other pairs).
    unmatched_keys: tuple[np.ndarray, np.ndarray] | None = None
    #: What was computed beyond the summary: TF's weighted reduction and loss, percentiles,
    #: the interval of the mean, the worst and best rows, the histogram (see
    #: :class:`~cosloss_cli.stats.figures.Figures`); ``summary.mean`` stays unweighted, and
    #: for reduction ``none`` the weighted losses are ``losses``.
    figures: Figures = Figures()
    #: ``--group-by``: the figures of each group of rows (see :mod:`cosloss_cli.stats.groups`).
    groups: tuple[dict[str, Any], ...] | None = None
    #: ``--group-by``: each loss's group (``codes``, aligned with ``losses``) and the groups' keys.
    grouping: Groups | None = None

    # No field is called ``index`` or ``count``: they would hide the tuple methods of that name.

    def kept(self) -> Float64Array:
        """The losses that count (omitted ones removed), flattened."""
        if not self.omitted.any():  # the common case: no copy, no mask
            return np.ravel(self.losses)
        kept: Float64Array = self.losses[~self.omitted]
        return kept

    def to_frame(self) -> Any:
        """The losses as a pandas DataFrame with a ``loss`` column, indexed by the row ids if any.

        Omitted vectors (``nan_policy="omit"``) are kept, with NaN losses, so rows line up
        with the inputs. pandas is imported only here.
        """
        import pandas as pd

        losses = self.losses.reshape(-1) if self.losses.ndim != 1 else self.losses
        index = None
        if self.ids is not None and len(self.ids) == len(losses):
            index = pd.Index(self.ids, name=self.id_column or "id")
        return pd.DataFrame({"loss": losses}, index=index)


def _figure(result: LossResult, name: str) -> Any:
    """``result.loss`` and every other figure, read from ``result.figures`` as before they moved there.

    Why this way: the figures are one record (:class:`Figures`), so a new figure is added
    in one place; a property per figure would list them all again on
    :class:`LossResult`. It is set apart from the class, out of type checkers' sight on
    purpose: typed code reads ``result.figures.loss``, and a misspelt name stays an error.
    """
    if name in Figures._fields:
        return getattr(result.figures, name)
    raise AttributeError(f"{type(result).__name__!r} object has no attribute {name!r}")


LossResult.__getattr__ = _figure  # type: ignore[attr-defined]
