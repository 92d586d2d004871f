"""Inputs: turn an input file into a :class:`Source` that yields blocks of rows.

One module per format, with the datasets, object storage, weights and frames they
serve. May import :mod:`cosloss_cli.core` and the base, never a layer above.

Each format lives in its own module, registered in :data:`READERS` (formats.py), and
imports its heavy dependency (pyarrow, h5py) only when a file of that format is opened.
This package itself imports no numpy: every ``--help`` loads it (the option groups of
:mod:`cosloss_cli.cli.options` read its formats), so the dataset reader is imported
when a folder, a glob or a URL is opened.
"""

from __future__ import annotations

import os

from ..errors import InputUsageError
from .base import DEFAULT_BLOCK_BYTES, Block, Blocks, BlockStream, ReadOptions, Source
from .formats import FORMATS, READERS, detect_format, format_extension, is_glob, reader, strip_format_extension
from .sniff import check_signature, peek

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "FORMATS",
    "READERS",
    "Block",
    "BlockStream",
    "Blocks",
    "ReadOptions",
    "Source",
    "check_distinct",
    "detect_format",
    "format_extension",
    "is_glob",
    "open_file",
    "open_pair",
    "open_source",
    "reader",
    "strip_format_extension",
]


def open_source(path: str, options: ReadOptions) -> Source:
    """Open ``path`` (``-`` for stdin): one file with the reader its format needs, or a dataset.

    A folder, a glob or an object-storage prefix is a dataset: its files read one after
    the other as one table (see :mod:`cosloss_cli.io.dataset`).
    """
    if path != "-" and (os.path.isdir(path) or "://" in path or is_glob(path)):
        from .dataset import dataset_of, open_dataset

        dataset = dataset_of(path, options)
        if dataset is not None:
            return open_dataset(dataset, options, open_file)
    return open_file(path, options)


def open_pair(
    labels: str, predictions: str, read_options: ReadOptions, prediction_read_options: ReadOptions | None = None
) -> tuple[Source, Source]:
    """Open both inputs (``-`` for stdin on one side), as ``compute_files`` reads them."""
    if labels == predictions == "-":
        raise InputUsageError("only one of the two inputs can be stdin ('-')")
    return open_source(labels, read_options), open_source(predictions, prediction_read_options or read_options)


def open_file(path: str, options: ReadOptions) -> Source:
    """Open the single file ``path`` (``-`` for stdin) with the reader its format needs."""
    if path != "-" and os.path.isdir(path):  # before the format: a folder's name says nothing of it
        raise InputUsageError("is a directory: use cosloss batch to compare folders of files", path=path)
    fmt = detect_format(path, options.input_format)
    if options.weight_column is not None and not READERS[fmt].columns:
        raise InputUsageError(
            f"an {READERS[fmt].label} file has no columns: --weight-column needs labels with columns"
            " (CSV, TSV, Parquet, JSON Lines, JSON, Arrow)",
            path=path,
            hint="pass the weights as a file of their own with --weights",
        )
    check_signature(path, fmt, peek(path), forced=bool(options.input_format))
    return reader(fmt)(path, options)


#: Formats of one table whose key (``--key``, ``--labels-key``...) names a list column.
_KEYED_TABLES = ("parquet", "jsonl", "json", "arrow")


def check_distinct(
    labels: str, predictions: str, labels_options: ReadOptions, predictions_options: ReadOptions
) -> None:
    """Refuse labels and predictions that are the same array of the same file (exit 2).

    ``compute eval.npz eval.npz --key labels`` compared the labels with themselves: a
    mean of 0 with exit 0. For the formats whose files hold several arrays chosen by a
    key (NPZ, HDF5, safetensors), the same file (the same device and inode: a link or
    another spelling of the path counts) with the same key and format on both sides is
    that mistake. So is a table (Parquet, JSON Lines, Arrow) against itself with the same
    key on both sides: a key names one of its list columns (``io.parquet.key_as_column``).
    A file of one table (CSV, Parquet...) against itself without a key is a sanity check
    users run on purpose, and stays allowed.
    """
    if labels == "-" or predictions == "-" or "://" in labels or "://" in predictions:
        return
    if labels_options.key != predictions_options.key:
        return
    if labels_options.input_format != predictions_options.input_format:
        return
    try:
        fmt = detect_format(labels, labels_options.input_format)
    except InputUsageError:
        return  # the readers report it
    if not (READERS[fmt].keyed or (labels_options.key is not None and fmt in _KEYED_TABLES)):
        return
    try:
        first, second = os.stat(labels), os.stat(predictions)
    except OSError:
        return  # the readers report it
    if not os.access(labels, os.R_OK):
        return  # as above: "permission denied" says more
    if (first.st_dev, first.st_ino) != (second.st_dev, second.st_ino):
        return
    hint = "choose each side's array with --labels-key and --predictions-key"
    raise InputUsageError("labels and predictions are the same array", path=predictions, hint=hint)
