"""Scalars as JSON values: NaN and infinities as null, numpy scalars as Python ones."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .shown import clip


def number(value: float) -> float | None:
    """A float for JSON: NaN and infinities become None (null)."""
    return value if math.isfinite(value) else None


def python_scalar(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (anything else as it is): what a message shows.

    >>> python_scalar(np.int64(7)), python_scalar("a")
    (7, 'a')
    """
    return value.item() if isinstance(value, np.generic) else value


def show_id(value: Any) -> str:
    """An id for a message, as the user wrote it: ``'doc-1'`` or ``7``, not ``np.int64(7)``."""
    return clip(python_scalar(value))


def python_value(value: Any) -> Any:
    """numpy scalars as Python values, and a NaN as None: an id or a key that is missing.

    >>> python_value(np.int64(3)), python_value(np.float64("nan")), python_value("a")
    (3, None, 'a')
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def json_value(value: Any) -> Any:
    """An id or other scalar as a JSON-safe value."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, float):
        return number(value)
    return str(value)
