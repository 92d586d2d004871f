"""cosloss: TensorFlow's cosine distance loss between label and prediction files.

The library API is :func:`cosine_loss` (numpy arrays or pandas objects in, losses
out), :func:`compute_files` (two files and the CLI's options as keywords in, a
:class:`LossResult` out) and :func:`compare_files` (one labels file, several models'
predictions, a :class:`CompareResult` of paired statistics). They are imported lazily
so that ``cosloss --help`` does not pay for numpy.
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
        from .core import cosine_loss

        return cosine_loss
    if name in ("compute_files", "ComputeOptions", "LossResult"):
        from . import pipeline

        return getattr(pipeline, name)
    if name in ("compare_files", "CompareResult"):
        from . import compare

        return getattr(compare, name)
    if name == "ReadOptions":
        from .readers import ReadOptions

        return ReadOptions
    raise AttributeError(f"module 'cosloss_cli' has no attribute {name!r}")
