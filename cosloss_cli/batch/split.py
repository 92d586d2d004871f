"""Rows that a batch's joins left out although their partner is in another pair's files.

``batch --join-on`` joins each pair of files within itself. When the labels and the
predictions were cut into files at different rows (3 files of 1,000 rows against 4 of
750), each pair matches only the ids its two files share: the other rows are left out
although their partner exists, in another pair. The result would be the mean of part of
the rows, so such a batch is refused.

Every pair sends back the ids it left without a partner, one array per side (also a
pair that failed for them), and :class:`SplitRows` keeps them until the end: an id left
out among the labels of one pair and among the predictions of another is the sign. The
ids of a file that found no partner file count as left out too (it is read for them).
The memory is that of those ids only (8 bytes an integer id), whatever the number of
rows matched.
"""

from __future__ import annotations

import numpy as np

from ..base.values import show_id
from ..errors import CoslossError, DataError
from ..io import ReadOptions, open_source
from ..pairing.join import join_read_options

#: Formats of ids that compare as numbers; any other kind on either side compares as text.
_NUMERIC = "iuf"


class SplitRows:
    """The unmatched ids of every pair of a batch, per side, checked across pairs at the end."""

    def __init__(self) -> None:
        self._labels: list[tuple[str, np.ndarray]] = []
        self._predictions: list[tuple[str, np.ndarray]] = []

    def add(self, name: str, keys: tuple[np.ndarray, np.ndarray]) -> None:
        """Keep the unmatched label and prediction ids of pair ``name`` (missing ids left out already)."""
        self._add(f"pair {name!r}", keys)

    def add_unpaired(self, path: str, side: str, options: ReadOptions, join_on: str) -> None:
        """Keep the ids of a file that found no partner file: none of its rows was compared.

        A file that cannot be read, or has no column ``join_on``, adds nothing: it is
        reported as a file without a partner all the same.
        """
        ids: list[np.ndarray] = []
        try:
            source = open_source(path, join_read_options(options, join_on))
            try:
                if source.id_column == join_on:
                    ids = [np.asarray(block.ids) for block in source.blocks if block.ids is not None]
            finally:
                source.blocks.close()
        except (CoslossError, OSError):
            return
        if not ids:
            return
        if len({part.dtype for part in ids}) > 1:  # int64 blocks and a block with a missing id
            ids = [part.astype(object) for part in ids]
        keys = np.concatenate(ids)
        if keys.dtype == object:  # missing ids (None, NaN) match nothing
            keys = keys[np.fromiter((v is not None and v == v for v in keys), dtype=bool, count=len(keys))]
        elif keys.dtype.kind == "f":
            keys = keys[~np.isnan(keys)]
        empty = keys[:0]
        what = f"file {path} (no {'predictions' if side == 'labels' else 'labels'} file)"
        self._add(what, (keys, empty) if side == "labels" else (empty, keys))

    def _add(self, what: str, keys: tuple[np.ndarray, np.ndarray]) -> None:
        labels, predictions = keys
        if len(labels):
            self._labels.append((what, labels))
        if len(predictions):
            self._predictions.append((what, predictions))

    def check(self, join_on: str | None) -> None:
        """Refuse the batch when an id left out in one pair's labels is left out in another's predictions."""
        if not self._labels or not self._predictions:
            return
        as_text = not all(_numeric(keys) for _, keys in self._labels + self._predictions)
        labels = [(name, _comparable(keys, as_text)) for name, keys in self._labels]
        predictions = [(name, _comparable(keys, as_text)) for name, keys in self._predictions]
        common = np.intersect1d(
            np.concatenate([keys for _, keys in labels]), np.concatenate([keys for _, keys in predictions])
        )
        if not common.size:
            return
        first = common[0]
        label_pair, shown = next(
            (name, show_id(original[np.flatnonzero(keys == first)[0]]))
            for (name, keys), (_, original) in zip(labels, self._labels, strict=True)
            if np.any(keys == first)
        )
        prediction_pair = next(name for name, keys in predictions if np.any(keys == first))
        column = join_on or "ID"
        raise DataError(
            f"the labels and predictions files split the rows differently: {common.size} id(s) left without a "
            f"partner in one pair are in another pair's files (id {shown}: in the labels of {label_pair}, "
            f"in the predictions of {prediction_pair}); each pair is joined only within itself, so those "
            "rows would be left out",
            hint="read each side as one dataset, so that every row finds its partner: "
            f"cosloss compute LABELS_DIR PREDICTIONS_DIR --join-on {column}",
        )


def _numeric(keys: np.ndarray) -> bool:
    """Whether every id is a number (an array of objects holds Python ints and floats after a missing id)."""
    if keys.dtype.kind in _NUMERIC:
        return True
    return keys.dtype == object and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in keys
    )


def _comparable(keys: np.ndarray, as_text: bool) -> np.ndarray:
    """Ids of any pair in one comparable form: numbers as float64 when kinds mix, else text."""
    if as_text:
        return keys.astype(str)
    return keys if keys.dtype.kind in "iu" and keys.dtype.itemsize == 8 else keys.astype(np.float64)
