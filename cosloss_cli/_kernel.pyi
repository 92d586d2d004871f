"""Types of the optional C kernel (``_kernel.c``); see :mod:`cosloss_cli.core`."""

import numpy as np

def row_sums(labels: np.ndarray, predictions: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray) -> None:
    """Write each row's dot product and squared norms (float64) into ``dot``, ``ll`` and ``pp``."""

def column_sums(labels: np.ndarray, predictions: np.ndarray, dot: np.ndarray, ll: np.ndarray, pp: np.ndarray) -> None:
    """Add each column's dot product and squared norms (float64) to ``dot``, ``ll`` and ``pp``."""
