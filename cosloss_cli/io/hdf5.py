"""HDF5 reader: one dataset (``--key``), read through h5py a block of rows at a time.

h5py is an optional dependency (``pip install 'cosloss[hdf5]'``), imported only when an
HDF5 file is opened. Only the rows of the block being read are in memory; chunked and
compressed datasets are decompressed by HDF5 as their rows are read.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Generator
from typing import Any

import numpy as np

from ..core.cosine import check_dtype
from ..errors import DataError, InputUsageError
from .base import Block, CountedBlocks, ReadOptions, Source, block_count
from .formats import listing
from .npy import array_layout
from .storage import open_input
from .streams import check_readable, file_size

#: The install command a missing h5py is reported with.
INSTALL = "pip install 'cosloss[hdf5]'"


def open_hdf5(path: str, options: ReadOptions) -> Source:
    """Open the dataset ``--key`` names (a path inside the file; or the only one)."""
    try:
        import h5py
    except ImportError:
        raise InputUsageError("reading HDF5 files needs h5py", path=path, hint=f"install it: {INSTALL}") from None
    check_readable(path, options.storage_options)
    try:
        if path == "-":
            handle = h5py.File(io.BytesIO(sys.stdin.buffer.read()), "r")
        elif "://" in path:
            handle = h5py.File(open_input(path, options.storage_options, random_access=True), "r")
        else:
            handle = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise DataError(f"not a readable HDF5 file: {exc}", path=path, hint="was it fully written?") from None
    try:
        dataset = _choose(handle, options.key, path, h5py)
        dtype = dataset.dtype
        if dtype.names is not None or dtype.hasobject or dtype.kind in "SUOV":
            raise DataError(f"dataset {dataset.name!r} holds {dtype}, not numbers", path=path)
        try:
            check_dtype(dtype, f"dataset {dataset.name!r}")
        except DataError as exc:
            raise DataError(exc.message, path=path) from None
        file_shape = tuple(int(n) for n in dataset.shape)
        if not file_shape:
            raise DataError(f"dataset {dataset.name!r} is a single number; it needs at least one vector", path=path)
    except BaseException:
        handle.close()
        raise
    shape, one_vector, _, step = array_layout(file_shape, options)

    def blocks() -> Generator[Block, None, None]:
        try:
            for start in range(0, shape[0], step):
                if one_vector:
                    values = np.asarray(dataset[()]).reshape(shape)
                else:
                    values = np.asarray(dataset[start : start + step])
                yield Block(values)
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"cannot read dataset {dataset.name!r}: {exc}", path=path) from None
        finally:
            handle.close()

    counted = CountedBlocks(blocks(), block_count(shape[0], step))
    return Source(path, "hdf5", shape, counted, dtype=dtype, size_bytes=file_size(path), one_vector=one_vector)


def _choose(handle: Any, key: str | None, path: str, h5py: Any) -> Any:
    """The dataset named ``key``, or the file's only dataset; a usage error lists them otherwise."""
    names: list[str] = []
    handle.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    if key is None:
        if len(names) != 1:
            listed = listing(names) if names else "none"
            raise InputUsageError(
                f"the file holds {len(names)} datasets ({listed})", path=path, hint="choose one with --key NAME"
            )
        key = names[0]
    item = handle.get(key)
    if not isinstance(item, h5py.Dataset):
        raise InputUsageError(f"no dataset named {key!r}", path=path, hint=f"datasets: {listing(names)}")
    return item
