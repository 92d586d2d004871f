"""Readers: turn an input file into a :class:`Source` that yields blocks of rows.

Each format lives in its own module and imports its heavy dependency (pyarrow) only
when a file of that format is opened.
"""

from __future__ import annotations

import os

from ..errors import InputUsageError
from .base import DEFAULT_BLOCK_BYTES, Block, ReadOptions, Source
from .formats import FORMATS, detect_format, format_extension, strip_format_extension

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "FORMATS",
    "Block",
    "ReadOptions",
    "Source",
    "detect_format",
    "format_extension",
    "is_glob",
    "open_file",
    "open_source",
    "strip_format_extension",
]


def open_source(path: str, options: ReadOptions) -> Source:
    """Open ``path`` (``-`` for stdin): one file with the reader its format needs, or a dataset.

    A folder, a glob or an object-storage prefix is a dataset: its files read one after
    the other as one table (see :mod:`cosloss_cli.readers.dataset`).
    """
    if path != "-" and (os.path.isdir(path) or "://" in path or is_glob(path)):
        from .dataset import dataset_of, open_dataset

        dataset = dataset_of(path, options)
        if dataset is not None:
            return open_dataset(dataset, options, open_file)
    return open_file(path, options)


def open_file(path: str, options: ReadOptions) -> Source:
    """Open the single file ``path`` (``-`` for stdin) with the reader its format needs."""
    if path != "-" and os.path.isdir(path):  # before the format: a folder's name says nothing of it
        raise InputUsageError("is a directory: use cosloss batch to compare folders of files", path=path)
    fmt = detect_format(path, options.input_format)
    if options.weight_column is not None and fmt in ("npy", "npz"):
        raise InputUsageError(
            f"an {fmt.upper()} file has no columns: --weight-column needs CSV, TSV or Parquet labels",
            path=path,
            hint="pass the weights as a file of their own with --weights",
        )
    if fmt in ("csv", "tsv"):
        from .delimited import open_delimited

        return open_delimited(path, fmt, options)
    if fmt == "npy":
        from .npy import open_npy

        return open_npy(path, options)
    if fmt == "npz":
        from .npy import open_npz

        return open_npz(path, options)
    from .parquet import open_parquet

    return open_parquet(path, options)


def is_glob(path: str) -> bool:
    """Whether ``path`` holds a wildcard (``*``, ``?``, ``[``): a glob of files when no file has that name."""
    return "*" in path or "?" in path or "[" in path
