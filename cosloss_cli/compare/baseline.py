"""A saved baseline: the per-row losses an earlier ``compute -o`` or ``compare -o`` wrote.

Comparing with yesterday should not need yesterday's prediction vectors (gigabytes):
the per-row losses (8 bytes a row) carry everything the paired statistics use. A loss
file has a key column, ``id`` (rows matched by id) or ``index`` (the row's position in
the labels), and a loss column: ``loss`` from ``compute``, or one column per model from
``compare`` (choose one with ``column``). It is read through the same readers as any
input (CSV/TSV, Parquet, JSON Lines where available), so its errors read the same.

The losses are then aligned to a candidate's rows: by id when the file has ids, by
position otherwise. A candidate row without a saved loss is left out of the
comparison for every model (as a NaN row is under ``--nan-policy omit``), and counted.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..base.values import python_scalar
from ..errors import DataError, InputUsageError
from ..io import ReadOptions, open_source

#: Key columns of a loss file, in the order they are looked for.
KEY_COLUMNS = ("id", "index")


class SavedLosses(NamedTuple):
    """One model's saved per-row losses: ``keys`` (ids or positions) and their ``losses``."""

    path: str
    key: str
    keys: np.ndarray
    losses: np.ndarray
    column: str


def read_saved_losses(path: str, column: str | None = None, read_options: ReadOptions | None = None) -> SavedLosses:
    """Read a loss file written by ``cosloss compute -o`` or ``compare -o`` (see the module docstring)."""
    base = (read_options or ReadOptions())._replace(
        id_column=None, columns=None, detect_ids=False, weight_column=None, key=None, header=None
    )
    found = open_source(path, base._replace(detect_ids=True))  # the header or schema: its column names
    names = list(found.file_columns or found.columns or [])
    found.blocks.close()
    key = next((name for name in KEY_COLUMNS if name in names), None)
    if key is None:
        raise DataError(
            f"a saved loss file needs an 'id' or 'index' column; it has {_listed(names)}",
            path=path,
            hint="write it with cosloss compute -o FILE.csv (or .parquet, .jsonl)",
        )
    others = [name for name in names if name != key and not name.startswith("index_")]
    if column is None:
        column = "loss" if "loss" in others else (others[0] if len(others) == 1 else None)
        if column is None:
            raise InputUsageError(
                f"which model's losses are the baseline? the file has columns {_listed(others)}",
                path=path,
                hint="name one with --baseline-column",
            )
    elif column not in others:
        raise InputUsageError(f"no loss column {column!r}; it has {_listed(others)}", path=path)
    source = open_source(path, base._replace(id_column=key, columns=[column]))
    values, keys = [], []
    for block in source.blocks:
        values.append(np.asarray(block.values, dtype=np.float64).reshape(len(block), -1)[:, 0])
        keys.append(np.asarray(block.ids))
    losses = np.concatenate(values) if values else np.empty(0)
    all_keys = np.concatenate(keys) if keys else np.empty(0, dtype=object)
    return SavedLosses(path, key, all_keys, losses, column)


def align(saved: SavedLosses, ids: np.ndarray | None, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The saved losses on a candidate's rows, and a mask of the rows that have none.

    By id when the file has ids (the candidate must have ids too), else by position.
    A key saved twice is an error: the file cannot say which loss is the row's.
    """
    import pandas as pd

    if saved.key == "id":
        if ids is None:
            raise DataError(
                "the saved losses are keyed by id, but the labels have no ids to match them with",
                path=saved.path,
                hint="pass --id-column NAME (or --join-on NAME) so that the labels' rows have ids",
            )
        wanted = ids
    else:
        wanted = positions
    left, right = _comparable(np.asarray(saved.keys), np.asarray(wanted))
    index = pd.Index(left)
    if not index.is_unique:
        repeated = index[index.duplicated()][0]
        raise DataError(f"{saved.key} {python_scalar(repeated)!r} appears more than once", path=saved.path)
    found = index.get_indexer(right)
    missing = found < 0
    aligned = np.full(len(found), np.nan)
    aligned[~missing] = saved.losses[found[~missing]]
    return aligned, missing


def _comparable(saved: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys of the same kind on both sides: text where either side is text (a CSV may read ``7`` as a number)."""
    if saved.dtype.kind in "iu" and wanted.dtype.kind in "iu":
        return saved.astype(np.int64, copy=False), wanted.astype(np.int64, copy=False)
    if saved.dtype.kind in "iuf" and wanted.dtype.kind in "iuf":
        return saved, wanted
    return _texts(saved), _texts(wanted)


def _texts(keys: np.ndarray) -> np.ndarray:
    return np.array([key if isinstance(key, str) else str(key) for key in keys.tolist()], dtype=object)


def _listed(names: list[str], limit: int = 100) -> str:
    text = ", ".join(names) or "none"
    return text if len(text) <= limit else text[: limit - 3] + "..."
