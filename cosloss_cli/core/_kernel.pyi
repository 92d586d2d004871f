"""Types of the C kernel (``_kernel.c``) and of its numpy twin (``_fallback.py``), which match."""

import numpy as np

#: SHA-256 of the ``_kernel.c`` it was built from ("unknown" when built without setup.py).
SOURCE: str

def row_sums(labels: np.ndarray, predictions: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray) -> None:
    """Write each row's dot product and squared norms (float64) into ``dot``, ``ll`` and ``pp``."""

def row_sums_at(
    labels: np.ndarray, predictions: np.ndarray, rows: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray
) -> None:
    """``row_sums(labels, predictions[rows], dot, ll, pp)`` without copying the rows."""

def column_sums(labels: np.ndarray, predictions: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray) -> None:
    """Add each column's dot product and squared norms (float64) to ``dot``, ``ll`` and ``pp``."""

def in_range(dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, tiny: float, huge: float) -> bool:
    """Whether every squared norm is in (tiny, huge) and every dot product finite."""

def in_range_losses(dot: np.ndarray, ll: np.ndarray, pp: np.ndarray, root_eps: float, out: np.ndarray) -> None:
    """Write the clipped losses of in-range sums to ``out``."""

def fsum(values: np.ndarray) -> float | None:
    """``math.fsum`` of a contiguous float64 buffer, or None for NaN, infinities and overflow."""
