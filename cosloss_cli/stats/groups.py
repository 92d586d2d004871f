"""``--group-by``: the figures of each group of rows (slices), as the overall summary has them.

An evaluation team wants the loss per language, per source or per bucket, not only
overall. The group keys arrive as arrays, in the order the rows were read
(:mod:`cosloss_cli.io.group_columns` reads them); the losses are then grouped with numpy
in one pass over a sort: memory grows with the rows and the groups, never with Python
objects per row.

Keys may be numbers, text or booleans; a null is a group of its own. Several names make
the key a tuple. Up to :data:`MAX_GROUPS` groups; the interval of each group's mean (the
same BCa interval as the overall one) is computed for up to :data:`MAX_GROUPS_WITH_CI`
groups, else it is null and a note says so.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..base.values import python_value
from ..errors import DataError, InputUsageError
from .distribution import PERCENTILES
from .intervals import finite_or_none, mean_ci

#: More groups than this are refused: a slice per row is not a breakdown.
MAX_GROUPS = 1_000_000

#: Groups whose mean gets its interval (one interval costs about a millisecond).
MAX_GROUPS_WITH_CI = 100


class Groups(NamedTuple):
    """Each row's group (``codes``, 0-based) and each group's key values, groups in key order."""

    names: tuple[str, ...]
    codes: np.ndarray
    keys: list[tuple[Any, ...]]

    def key_dict(self, group: int) -> dict[str, Any]:
        return dict(zip(self.names, self.keys[group], strict=True))


def group_rows(columns: dict[str, np.ndarray]) -> Groups:
    """Each row's group and each group's key, groups in sorted key order, nulls last (as pandas sorts).

    One column of numbers or booleans without NaN is grouped by ``np.unique`` (the same
    order as pandas', without importing it); other keys by pandas' ``groupby``.
    """
    names = tuple(columns)
    if len(names) == 1 and columns[names[0]].dtype.kind in "biu":
        found = _dense_integers(columns[names[0]])
        if found is not None:
            uniques, codes = found
            if uniques.size > MAX_GROUPS:
                raise DataError(f"--group-by {names[0]} makes {uniques.size:,} groups: more than {MAX_GROUPS:,}")
            return Groups(names, codes, [(python_value(value),) for value in uniques])
    if len(names) == 1 and _numbers_without_nan(columns[names[0]]):
        uniques, codes = np.unique(columns[names[0]], return_inverse=True)
        if uniques.size > MAX_GROUPS:
            raise DataError(f"--group-by {names[0]} makes {uniques.size:,} groups: more than {MAX_GROUPS:,}")
        return Groups(names, codes.reshape(-1).astype(np.int64), [(python_value(value),) for value in uniques])
    import pandas as pd

    frame = pd.DataFrame({name: columns[name] for name in names})
    grouped = frame.groupby(list(names), dropna=False, sort=True)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    count = int(codes.max()) + 1 if codes.size else 0
    if count > MAX_GROUPS:
        raise DataError(f"--group-by {','.join(names)} makes {count:,} groups: more than {MAX_GROUPS:,}")
    first = np.full(count, -1, dtype=np.int64)
    order = np.arange(codes.size)[::-1]
    first[codes[order]] = order  # the first row of each group
    keys = [tuple(python_value(columns[name][row]) for name in names) for row in first.tolist()]
    return Groups(names, codes, keys)


def _dense_integers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``np.unique(values, return_inverse=True)`` of integers or booleans whose range is at most the rows.

    Without a sort: the values present are marked in a table over their range, and a
    value's group is the count of values present below it. None when the range is wider
    (then ``np.unique`` sorts).
    """
    if values.size == 0:
        return None
    numbers = values.view(np.uint8) if values.dtype.kind == "b" else values
    low, high = int(numbers.min()), int(numbers.max())
    span = high - low + 1
    if span > max(values.size, 1 << 16):
        return None
    offsets = np.arange(span, dtype=np.int64)
    if numbers.dtype.kind == "u":  # subtracted in their own type: a uint64 may not fit an int64
        base = numbers.dtype.type(low)
        shifted = (numbers - base).astype(np.int64)
        every = offsets.astype(numbers.dtype) + base
    else:
        shifted = numbers.astype(np.int64) - low
        every = offsets + low
    present = np.zeros(span, dtype=bool)
    present[shifted] = True
    groups = np.cumsum(present, dtype=np.int64) - 1
    return every[present].astype(values.dtype), groups[shifted]


def _numbers_without_nan(values: np.ndarray) -> bool:
    """Whether ``values`` are integers, booleans, or floats without NaN (no object, no null)."""
    if values.dtype.kind in "biu":
        return True
    return values.dtype.kind == "f" and not bool(np.isnan(values).any())


def aligned(columns: dict[str, np.ndarray], rows: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """The key columns on the result's rows (``rows``: the file row of each result row)."""
    out = {}
    for name, values in columns.items():
        if values.shape[0] != size:
            raise DataError(
                f"the --group-by column {name!r} has {values.shape[0]} rows, the vectors {size}",
                hint="group by a column of the file whose rows the losses are",
            )
        out[name] = values[rows]
    return out


def summaries(
    losses: np.ndarray,
    groups: Groups,
    *,
    confidence: float,
    resamples: int | None,
    seed: int,
    intervals: bool | None = None,
) -> list[dict[str, Any]]:
    """Per group: count, mean, std (ddof=0), min, median, max, p05..p99, and the interval of the mean.

    ``losses`` are the result's losses in row order (NaN where omitted: left out of
    their group's figures). Equal to pandas' ``groupby`` (mean, ``std(ddof=0)``,
    ``quantile`` with linear interpolation) to rounding. Each group's figures depend on
    its losses alone, whatever their order and the other groups. ``intervals``: whether
    to draw them (None: with ``confidence``, for up to :data:`MAX_GROUPS_WITH_CI` groups);
    a caller summarizing some of many groups at a time decides for all of them.
    """
    count = len(groups.keys)
    keep = ~np.isnan(losses)
    codes, values = groups.codes[keep], losses[keep]
    # By group, then by value: a sort of the values (equal values are alike, so an unstable
    # sort orders them as well), then a stable sort of the group codes (a radix sort when
    # they fit 16 bits), as np.lexsort orders them but faster.
    order = np.argsort(values)
    narrow = np.int16 if count <= np.iinfo(np.int16).max else np.int32 if count <= np.iinfo(np.int32).max else np.int64
    order = order[np.argsort(codes[order].astype(narrow), kind="stable")]
    codes, values = codes[order], values[order]
    sizes = np.bincount(codes, minlength=count)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    with np.errstate(all="ignore"):
        sums = np.bincount(codes, weights=values, minlength=count)
        means = sums / sizes
        deviations = values - means[codes]
        stds = np.sqrt(np.bincount(codes, weights=deviations * deviations, minlength=count) / sizes)
    figures = {
        "min": _at(values, starts, sizes, 0.0),
        "median": _quantile(values, starts, sizes, 0.5),
        "max": _at(values, starts, sizes, 1.0),
        **{key: _quantile(values, starts, sizes, q / 100) for key, q in PERCENTILES.items()},
    }
    with_ci = confidence > 0 and (count <= MAX_GROUPS_WITH_CI if intervals is None else intervals)
    out = []
    for group in range(count):
        n = int(sizes[group])
        entry: dict[str, Any] = {"key": groups.key_dict(group), "count": n}
        entry["mean"] = finite_or_none(float(means[group])) if n else None
        entry["std"] = finite_or_none(float(stds[group])) if n else None
        for key, column in figures.items():
            entry[key] = finite_or_none(float(column[group])) if n else None
        if with_ci and n:
            segment = values[starts[group] : starts[group] + n]
            low, high = mean_ci(segment, confidence=confidence, resamples=resamples, seed=seed)
            entry["ci_low"], entry["ci_high"] = finite_or_none(low), finite_or_none(high)
        else:
            entry["ci_low"] = entry["ci_high"] = None
        out.append(entry)
    return out


def _at(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray, where: float) -> np.ndarray:
    """The first (0.0) or last (1.0) sorted value of each group (NaN for an empty group)."""
    index = starts + np.where(where == 0.0, 0, np.maximum(sizes - 1, 0))
    return np.where(sizes > 0, values[np.minimum(index, max(values.size - 1, 0))] if values.size else np.nan, np.nan)


def _quantile(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray, q: float) -> np.ndarray:
    """Each group's ``q`` quantile of its sorted values, numpy's (and pandas') linear method."""
    if values.size == 0:
        return np.full(sizes.shape, np.nan)
    virtual = (np.maximum(sizes, 1) - 1) * q
    below = np.floor(virtual).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(sizes - 1, 0))
    fraction = virtual - below
    low = values[np.minimum(starts + below, values.size - 1)]
    high = values[np.minimum(starts + above, values.size - 1)]
    step = high - low
    result = np.where(fraction >= 0.5, high - step * (1 - fraction), low + step * fraction)
    return np.where(sizes > 0, result, np.nan)


def too_many_for_intervals(groups: Groups, confidence: float) -> str | None:
    """The note when groups are too many for an interval each."""
    if confidence > 0 and len(groups.keys) > MAX_GROUPS_WITH_CI:
        return (
            f"{len(groups.keys):,} groups: the interval of each group's mean is computed for up to "
            f"{MAX_GROUPS_WITH_CI} groups (null here)"
        )
    return None


# ----------------------------------------------------------------------------- on results


def result_rows(losses: np.ndarray, label_rows: np.ndarray | None, axis: int) -> np.ndarray:
    """The file row of each loss: its own position, or with rows matched by id the labels' row."""
    if losses.ndim != 1 or axis != 1:
        raise InputUsageError("--group-by needs a loss per row (2-D inputs, --axis 1)")
    if label_rows is not None and label_rows.shape[0] == losses.shape[0]:
        return np.asarray(label_rows, dtype=np.int64)
    return np.arange(losses.shape[0], dtype=np.int64)


def row_groups(losses: np.ndarray, label_rows: np.ndarray | None, axis: int, columns: dict[str, np.ndarray]) -> Groups:
    """Each loss's group: the key columns (in file row order) on the rows the losses are of.

    The rows are the losses' own positions, or with rows matched by id the labels' rows
    (``label_rows``). Key columns that do not cover those rows are refused, never cut short.
    """
    rows = result_rows(losses, label_rows, axis)
    size = next(iter(columns.values())).shape[0]
    if (label_rows is None and size != rows.size) or (rows.size and int(rows.max()) >= size):
        raise DataError(f"the --group-by columns have {size} rows, the vectors {losses.shape[0]}")
    return group_rows(aligned(columns, rows, size))


def group_figures(
    losses: np.ndarray, omitted: np.ndarray, groups: Groups, *, confidence: float, resamples: int | None, seed: int
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The figures of each group of ``losses`` (those ``omitted`` left out), and the notes about them.

    The interval of each group's mean is drawn as the whole's is (``confidence``; none when 0).
    """
    counted = np.where(omitted, np.nan, losses).astype(np.float64)
    found = summaries(counted, groups, confidence=confidence, resamples=resamples, seed=seed)
    note = too_many_for_intervals(groups, confidence)
    return found, (note,) if note else ()
