"""The public parameters' allowed values, and their checks: validated once, at each entry point.

Numpy-free, so ``--nan-policy`` takes its choices from here at start. The choice lists
are derived from the ``Literal`` types the signatures use, so the two cannot differ.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Literal, get_args

from ..errors import InputUsageError, ParameterError

NanPolicy = Literal["raise", "omit", "propagate"]
#: ``nan_policy`` values: raise an error, omit the vectors, or propagate NaN losses.
NAN_POLICIES: tuple[str, ...] = get_args(NanPolicy)

Reduction = Literal["none", "mean"]
#: ``reduction`` values of :func:`~cosloss_cli.io.frames.cosine_loss`.
REDUCTIONS: tuple[str, ...] = get_args(Reduction)

WeightedReduction = Literal["none", "sum", "mean", "sum_over_batch_size", "sum_by_nonzero_weights"]
#: TF's reductions of weighted losses (``--reduction``): its ``Reduction`` constants in lower case.
WEIGHTED_REDUCTIONS: tuple[str, ...] = get_args(WeightedReduction)


def check_choice(name: str, value: object, choices: Collection[str]) -> None:
    """Refuse a value that is not one of ``choices``.

    >>> check_choice("nan_policy", "bogus", NAN_POLICIES)
    Traceback (most recent call last):
    ...
    cosloss_cli.errors.ParameterError: nan_policy must be one of 'raise', 'omit', 'propagate', not 'bogus'
    """
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ParameterError(f"{name} must be one of {listed}, not {value!r}")


def check_eps(eps: float) -> None:
    """``eps`` is a squared-norm floor: a finite number >= 0."""
    try:
        value = float(eps)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(eps, (bool, str, bytes)) or not (math.isfinite(value) and value >= 0):
        raise ParameterError(f"eps must be a finite number >= 0, not {eps!r}")


def check_axis(axis: object) -> None:
    """``axis`` is an integer (its range is checked against the data's rank later)."""
    if isinstance(axis, bool) or not hasattr(axis, "__index__"):
        raise ParameterError(f"axis must be an integer, not {axis!r}")


def check_flag(name: str, value: object) -> None:
    """A yes/no parameter is a bool (a string such as 'false' would be true)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ParameterError(f"{name} must be True or False, not {value!r}")


def parse_group_by(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"lang,source"`` or a list -> names; empty parts are refused."""
    if value is None:
        return ()
    names = [part.strip() for part in (value.split(",") if isinstance(value, str) else value)]
    if not names or any(not name for name in names):
        raise InputUsageError("--group-by needs column names separated by commas")
    return tuple(dict.fromkeys(names))
