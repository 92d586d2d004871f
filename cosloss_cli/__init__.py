"""cosloss: TensorFlow's cosine distance loss between label and prediction files.

The library API, imported lazily so that ``cosloss --help`` does not pay for numpy:

:func:`cosine_loss` (arrays or pandas objects in, losses out)
    ``cosine_loss(labels, predictions, axis=-1, *, eps=1e-12, normalize=True,
    reduction="none")``: a float64 array of losses, or their mean with
    ``reduction="mean"``; pandas inputs give a Series keeping the labels' index.
    Raises ``ShapeMismatchError``, ``DataError`` (not real numbers),
    ``InputUsageError`` (an axis out of range) and ``ParameterError`` (a parameter
    outside its allowed values), all from :mod:`cosloss_cli.errors`.

    >>> from cosloss_cli import cosine_loss
    >>> cosine_loss([[1, 4, 5], [5, 5, 7]], [[3, 2, 5], [3, 2, 7]], axis=1)
    array([0.09887289, 0.05546452])

:func:`compute_files` (two files in, a :class:`LossResult` out)
    ``compute_files(labels, predictions, read_options=None, options=None,
    progress=None, prediction_read_options=None, **settings)`` streams both files
    (CSV/TSV, NPY/NPZ, Parquet; ``-`` for stdin) with the same numbers as ``cosloss
    compute``; the CLI's options can be given as keywords (``axis=1``,
    ``id_column="id"``...). Raises the same errors, plus ``DataError`` for unreadable
    files and ``TypeError`` for an unknown keyword.

    >>> import os, tempfile
    >>> import numpy as np
    >>> from cosloss_cli import ComputeOptions, ReadOptions, compute_files
    >>> folder = tempfile.mkdtemp()
    >>> labels, predictions = os.path.join(folder, "l.npy"), os.path.join(folder, "p.npy")
    >>> np.save(labels, [[1.0, 4, 5], [5, 5, 7]]); np.save(predictions, [[3.0, 2, 5], [3, 2, 7]])
    >>> result = compute_files(labels, predictions, ReadOptions(), ComputeOptions(axis=1))
    >>> result.losses
    array([0.09887289, 0.05546452])

:class:`LossResult`
    A NamedTuple: ``labels`` and ``predictions`` (the paths), ``axis``, ``shape`` (of
    the input), ``losses`` (the input shape without ``axis``), ``omitted`` (a boolean
    mask, under ``nan_policy="omit"``), ``summary`` and ``ids`` (or None).

    >>> result.shape, result.axis, result.ids is None
    ((2, 3), 1, True)
    >>> round(result.summary.mean, 9), result.summary.count
    (0.077168701, 2)

:class:`ComputeOptions`
    The math: ``axis=-1``, ``eps=1e-12``, ``normalize=True``,
    ``nan_policy="raise"`` (or ``"omit"``, ``"propagate"``) and ``threads``; rows
    matched by id: ``join_on``, ``strict`` and ``min_matched`` (0 to 1: the least share
    of rows that must find their partner). Checked when a computation starts: a value
    outside these is a ``ParameterError``.

    >>> compute_files(labels, predictions, None, ComputeOptions(nan_policy="bogus"))
    Traceback (most recent call last):
    ...
    cosloss_cli.errors.ParameterError: nan_policy must be one of 'raise', 'omit', 'propagate', not 'bogus'

:class:`ReadOptions`
    How a file is read: ``input_format`` (instead of the extension), ``key`` (of an
    NPZ archive), ``header`` (CSV: None detects), ``columns`` (their order),
    ``id_column`` (row ids carried into the result) and ``block_bytes``.

    >>> ReadOptions(columns=["f0", "f1"]).columns
    ['f0', 'f1']

:func:`compare_files` and :class:`CompareResult`
    One labels file against several models' predictions, the first as baseline: the
    paired statistics of :mod:`cosloss_cli.compare.models` (see :func:`compare_files`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "cosine_loss",
    "compute_files",
    "compare_files",
    "ComputeOptions",
    "CompareResult",
    "ReadOptions",
    "LossResult",
]


def __getattr__(name: str) -> Any:
    if name == "cosine_loss":
        from .io.frames import cosine_loss

        return cosine_loss
    if name in ("compute_files", "ComputeOptions", "LossResult"):
        from .pipeline import compute as pipeline

        return getattr(pipeline, name)
    if name in ("compare_files", "CompareResult"):
        from .compare import models as compare

        return getattr(compare, name)
    if name == "ReadOptions":
        from .io import ReadOptions

        return ReadOptions
    raise AttributeError(f"module 'cosloss_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazily loaded API too, so IPython and Jupyter complete it (PEP 562)."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
