"""Rows matched by id: the labels streamed, the predictions gathered by id from a spill file.

``compute --join-on NAME`` pairs a label row with the prediction row that has the same
value in column NAME, whatever the order of either file, and leaves out (and counts)
the rows whose id has no partner. Memory stays bounded for files larger than memory:

1. One pass over the predictions keeps their ids in memory, compactly (int64 for
   integer ids), and their vectors in file order: in memory when their count is known
   in advance and they fit :data:`MAPPED_BUDGET_BYTES`, else in an unnamed temporary
   file (in ``TMPDIR``; the kernel deletes it when it is closed, so even a killed
   process leaves nothing behind).
2. An index from an id to its row: a sorted copy of numeric ids (binary search) or a
   ``dict`` from id to row (a hash table) of text ids. It is built for the predictions' own kind
   of id as soon as they are kept, on a thread of its own while the labels' first blocks
   are decoded, and again for a common kind if the labels' ids are of another kind. A
   duplicated id is refused there.
3. The spill file is memory-mapped and the labels are streamed block by block as
   without a join: each block's ids are looked up, and the block and the matching
   prediction rows go through the same reduction as rows paired by position (the C
   kernel reads those rows where they are held; otherwise they are gathered with
   ``np.take``). Both run on the thread that sums the block (with predictions in
   memory, the one that decoded it), blocks in any order; the bookkeeping of
   :meth:`RowJoin.record` takes them in the labels' order.
4. At the end the rows left without a partner are counted (:class:`Unmatched`), and a
   duplicated label id is refused.

The resident memory is the ids, a byte per prediction row (which were used), the few
blocks in flight, and up to :data:`MAPPED_BUDGET_BYTES` of vectors or the pages of the
map touched since they were last dropped (clean pages of a file, which the kernel can
reclaim).

Ids match when they are equal as read. When the two sides' ids are of different kinds
(a CSV's text ``"7"`` against a Parquet int64 ``7``), both are compared as text; an
integer and a float id are compared as numbers, exactly (as Python objects, never
through float64). A missing id (a null, an empty CSV cell) matches nothing, not even
another missing id.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np

from ..base.aside import BACKGROUND_SIZE, aside
from ..base.shown import clip
from ..base.values import json_value, python_value, show_id
from ..errors import DataError, IdMatchError, InputUsageError, UnmatchedRowsError
from ..io.base import Block, ReadOptions, Source


class _Counted(Protocol):
    """A result that takes the counts of a join (:class:`cosloss_cli.pipeline.result.LossResult`)."""

    def _replace(
        self: _Result, *, unmatched: Unmatched, label_rows: np.ndarray, unmatched_keys: tuple[np.ndarray, np.ndarray]
    ) -> _Result: ...


_Result = TypeVar("_Result", bound=_Counted)

#: How many ids of each side :class:`Unmatched` lists.
SHOWN_IDS = 20

#: Predictions' vectors up to this size are held in memory when their row count is known
#: (Parquet), and a spill file up to this size may stay mapped for an eighth of the labels'
#: pass; the pages of a larger one are dropped after every block (see ``RowJoin.pairs``).
MAPPED_BUDGET_BYTES = 256 * 1024 * 1024

#: Size of the labels' blocks in a join (in bytes of float64 values; see ``pipeline.compute.join_read_options``).
LABEL_BLOCK_BYTES = 2 * 1024 * 1024

#: Formats without named columns, so without an id column to join on.
_UNNAMED_FORMATS = ("npy", "npz")


class Unmatched(NamedTuple):
    """Rows left out of a join because their id has no partner in the other file.

    ``label_ids`` and ``prediction_ids`` are the first :data:`SHOWN_IDS` such ids, in
    each file's order (None for a missing id).
    """

    labels: int
    predictions: int
    label_ids: tuple[Any, ...] = ()
    prediction_ids: tuple[Any, ...] = ()
    #: Label rows that found their partner (each one loss row).
    matched: int = 0

    def __bool__(self) -> bool:
        return bool(self.labels or self.predictions)

    @property
    def rows(self) -> int:
        """The rows of the full outer join: each matched pair once, plus every row without a partner."""
        return self.matched + self.labels + self.predictions

    @property
    def fraction(self) -> float:
        """The share of :attr:`rows` that were matched (1.0 for no rows at all: nothing was lost)."""
        return self.matched / self.rows if self.rows else 1.0

    def matched_text(self) -> str:
        """``matched N of M rows``: what every summary of a join shows next to the mean."""
        return f"matched {self.matched} of {self.rows} rows"

    def message(self) -> str:
        """One line for a warning: how many rows of each side were left out, a few ids each."""
        return (
            f"rows without a partner id left out: {self.labels} of the labels{_examples(self.label_ids)}, "
            f"{self.predictions} of the predictions{_examples(self.prediction_ids)}"
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON ``unmatched`` object (ids as JSON values)."""
        return {
            "labels": self.labels,
            "predictions": self.predictions,
            "label_ids": [json_value(v) for v in self.label_ids],
            "prediction_ids": [json_value(v) for v in self.prediction_ids],
        }

    def matched_fields(self) -> dict[str, Any]:
        """The top-level JSON fields ``matched_rows`` (N) and ``join_rows`` (M) of ``matched N of M rows``."""
        return {"matched_rows": self.matched, "join_rows": self.rows}


def _examples(ids: tuple[Any, ...], limit: int = 3) -> str:
    if not ids:
        return ""
    shown = ", ".join(show_id(v) for v in ids[:limit])
    return f" (ids {shown}{', ...' if len(ids) > limit else ''})"


def join_read_options(options: ReadOptions, join_on: str) -> ReadOptions:
    """Read options with the join column as the id column (an explicit other one is refused)."""
    if options.id_column is not None and options.id_column != join_on:
        raise InputUsageError(
            f"--id-column {options.id_column!r} and --join-on {join_on!r} name different columns",
            hint="--join-on NAME reads NAME as the row ids: drop --id-column",
        )
    return options._replace(id_column=join_on)


def check_join_sources(labels: Source, predictions: Source, join_on: str) -> None:
    """Both inputs must be formats with named columns and have the join column."""
    for source in (labels, predictions):
        if source.format in _UNNAMED_FORMATS:
            raise InputUsageError(
                f"{source.format.upper()} has no id column to match rows by (--join-on {join_on})",
                path=source.path,
                hint="save the ids and vectors as CSV/TSV or Parquet, or pair the rows by position",
            )
    for source in (labels, predictions):
        if source.id_column != join_on:
            names = list(source.file_columns or source.columns or [])
            raise InputUsageError(
                f"no column named {join_on!r} to match rows by (--join-on)",
                path=source.path,
                hint=f"columns: {_listing(names)}",
            )


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) if not n.strip() else n for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


class Match(NamedTuple):
    """One label block looked up by :meth:`RowJoin.match` (on any thread), for :meth:`RowJoin.record`."""

    #: Rows of the label block.
    size: int
    #: Its ids in the compared form.
    keys: np.ndarray
    #: The prediction row of each label row that has a partner, in the block's order.
    taken: np.ndarray
    #: Which label rows have a partner; None when all of them do.
    matched: np.ndarray | None
    #: The ids (as read) of the first :data:`SHOWN_IDS` label rows without a partner.
    unmatched_ids: np.ndarray


class RowJoin:
    """Pairs label blocks with the prediction rows of the same ids (see the module docstring).

    After :meth:`keep_predictions`, each label block is looked up and given its partners
    (:meth:`match`, :meth:`partners`) on whichever thread sums them, blocks in any order;
    :meth:`record` then takes the blocks in file order. Use as a context manager: leaving
    it closes (and so deletes) the spill file, also on errors and Ctrl-C.
    """

    def __init__(self, labels: Source, predictions: Source, *, strict: bool = False, min_matched: float = 0.0):
        self.labels = labels
        self.predictions = predictions
        self.strict = strict
        self.min_matched = min_matched
        self._spill = _Spill(predictions.shape[0])
        self._prediction_ids: np.ndarray | None = None
        self._lookup: _Lookup | None = None
        #: The index for the predictions' own kind of id, begun when they are kept.
        self._own_lookup: tuple[str, Callable[[], _Lookup]] | None = None
        self._lookup_error: DataError | None = None
        self._lookup_lock = threading.Lock()
        self._used: np.ndarray | None = None
        self._label_keys: list[np.ndarray] = []
        self._unmatched_keys: list[np.ndarray] = []
        self._taken = 0
        self._label_rows: list[np.ndarray] = []
        self._unmatched_label_ids: list[Any] = []
        self._unmatched_labels = 0
        #: The first label row without an id (for ``strict``'s message).
        self._first_null_label: int | None = None
        self._label_count = 0
        self._release_every = 1
        self._gathered = 0

    def __enter__(self) -> RowJoin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._spill.close()

    def keep_predictions(self, blocks: Iterator[Block]) -> None:
        """Keep every prediction vector (in memory or the spill file) and their ids, before the labels' pass."""
        parts: list[np.ndarray] = []
        kind: str | None = None
        for block in blocks:
            if len(block) == 0:
                continue
            assert block.ids is not None
            kind = kind or _id_kind(block.ids)
            self._spill.append(block.values)
            parts.append(_compact(block.ids, kind))
        self._prediction_ids = _concatenate(parts)
        self._used = np.zeros(len(self._prediction_ids), dtype=bool)
        own = _id_kind(self._prediction_ids)
        if own != "empty":
            ids, predictions = self._prediction_ids, self.predictions
            large = len(ids) >= BACKGROUND_SIZE
            build = aside(lambda: _Lookup(ids, own, predictions), background=large, name="cosloss-lookup")
            self._own_lookup = (own, build)
        self._spill.prepare()
        # A few random rows map whole folios of the file, so gathering one block maps
        # most of it. Dropping the pages after every block bounds the resident memory
        # but costs page faults on the next block (a sixth of the join's CPU time at
        # 200,000 x 256): a spill within MAPPED_BUDGET_BYTES is dropped only after every
        # eighth of its rows is gathered, a larger one after every block.
        if self._spill.nbytes <= MAPPED_BUDGET_BYTES:
            self._release_every = max(1, self._spill.rows // 8)

    def match(self, block: Block) -> Match:
        """Look a label block's ids up (safe on any thread, blocks in any order)."""
        assert block.ids is not None  # check_join_sources: the labels have the id column
        lookup = self._lookup_for(block.ids)
        if lookup is None:  # every id of the block is missing: none has a partner
            keys, rows = block.ids, np.full(len(block), -1, dtype=np.intp)
        else:
            keys = lookup.keys(block.ids)
            rows = lookup.rows(keys)
        matched = rows >= 0
        if matched.all():
            return Match(len(block), keys, rows, None, block.ids[:0])
        return Match(len(block), keys, rows[matched], matched, block.ids[~matched][:SHOWN_IDS])

    def partners(self, block: Block, match: Match) -> tuple[Block, np.ndarray, np.ndarray | None]:
        """The block's rows that have a partner, and their partners (safe on any thread).

        The partners are ``(vectors, rows)``: every prediction vector as held (in memory
        or the spill file's map) and the row of each partner in them, which the sums
        read in place; or, when the vectors are held in several pieces, the partners'
        vectors gathered, and None.
        """
        if match.matched is None:
            lblock = block
        else:
            assert block.ids is not None
            weights = None if block.weights is None else block.weights[match.matched]  # a --weight-column
            lblock = Block(block.values[match.matched], block.ids[match.matched], weights)
        held = self._spill.whole()
        if held is None:
            return lblock, self._spill.take(match.taken), None
        return lblock, held, match.taken

    def _lookup_for(self, ids: np.ndarray) -> _Lookup | None:
        """The index of the prediction ids, built for the labels' kind of id by the first block that shows it.

        None for a block whose ids are all missing (it shows no kind). Building it fails
        alike on every thread that asks (a duplicated prediction id).
        """
        if self._lookup is not None:
            return self._lookup
        kind = _id_kind(ids)
        if kind == "empty":
            return None
        with self._lookup_lock:
            if self._lookup_error is not None:
                raise self._lookup_error
            if self._lookup is None:
                assert self._prediction_ids is not None, "keep_predictions() comes first"
                try:
                    if self._own_lookup is not None and self._own_lookup[0] == kind:
                        self._lookup = self._own_lookup[1]()
                    else:
                        self._lookup = _Lookup(self._prediction_ids, kind, self.predictions)
                except DataError as exc:
                    self._lookup_error = exc
                    raise
            return self._lookup

    def record(self, match: Match) -> np.ndarray:
        """Take in one label block's lookup, in file order; return the file rows of its matched rows.

        A label id given twice would use a prediction row twice; :meth:`check` refuses
        that after the pass, from the keys kept here (the ids only).
        """
        assert self._used is not None, "keep_predictions() comes first"
        taken = match.taken
        self._used[taken] = True
        self._taken += taken.size
        offset = self._label_count
        self._label_count += match.size
        self._label_keys.append(match.keys)
        if match.matched is None:
            rows = np.arange(offset, offset + match.size)
        else:
            rows = offset + np.flatnonzero(match.matched)
            self._unmatched_keys.append(match.keys[~match.matched])
            self._unmatched_labels += match.size - taken.size
            if self._first_null_label is None and match.keys.dtype.kind not in "iuUS":
                missing = np.flatnonzero(_nulls(match.keys) & ~match.matched)
                if missing.size:
                    self._first_null_label = offset + int(missing[0])
            if len(self._unmatched_label_ids) < SHOWN_IDS:
                self._unmatched_label_ids += list(match.unmatched_ids[: SHOWN_IDS - len(self._unmatched_label_ids)])
        self._label_rows.append(rows)
        self._gathered += taken.size
        if self._gathered >= self._release_every:
            self._spill.release()
            self._gathered = 0
        return rows

    def finish(self, result: _Result) -> _Result:
        """Refuse unmatched rows (``strict``) or too few matched ones (``min_matched``); add the counts to ``result``.

        The error carries the counts and every unmatched id (``unmatched``, ``keys``), so
        that ``batch`` can still tell whether another pair's files hold their partners.
        """
        unmatched = self.unmatched()
        keys = self.unmatched_keys()
        result = result._replace(
            unmatched=unmatched, label_rows=_concatenate(self._label_rows, np.intp), unmatched_keys=keys
        )
        where = f"{self.labels.path} and {self.predictions.path}"
        if self.strict and unmatched:
            try:
                self._refuse_missing_id()
            except UnmatchedRowsError as exc:
                exc.unmatched, exc.keys = unmatched, keys
                raise
            error = UnmatchedRowsError(
                f"some rows have no partner id (--strict): {unmatched.labels} of the labels"
                f"{_examples(unmatched.label_ids)}, {unmatched.predictions} of the predictions"
                f"{_examples(unmatched.prediction_ids)}",
                path=where,
                hint="without --strict such rows are left out and counted",
            )
        elif unmatched.fraction < self.min_matched:
            error = UnmatchedRowsError(
                f"{unmatched.matched_text()} by id, fewer than --min-matched {self.min_matched:g} "
                f"({unmatched.labels} of the labels{_examples(unmatched.label_ids)} and {unmatched.predictions} "
                f"of the predictions{_examples(unmatched.prediction_ids)} have no partner id)",
                path=where,
                hint="fix the files, or lower --min-matched to leave such rows out",
            )
        else:
            return result
        error.unmatched, error.keys = unmatched, keys
        raise error

    def unmatched_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Every unmatched id of the labels and of the predictions (missing ids left out)."""
        labels = _concatenate(self._unmatched_keys)
        ids = self._prediction_ids if self._prediction_ids is not None else np.empty(0, dtype=object)
        used = self._used if self._used is not None else np.zeros(len(ids), dtype=bool)
        predictions = ids[~used]
        return labels[~_nulls(labels)], predictions[~_nulls(predictions)]

    def _refuse_missing_id(self) -> None:
        """With ``strict``: name the first row of either file without an id (an empty cell, a null)."""
        firsts = ((self.labels, self._first_null_label), (self.predictions, self._first_null(self._prediction_ids)))
        for source, row in firsts:
            if row is not None:
                raise UnmatchedRowsError(
                    f"{source.where(row)} has no id (an empty cell or a null in column {source.id_column!r}): "
                    "it matches no row (--strict)",
                    path=source.path,
                    hint="without --strict rows without an id are left out and counted",
                )

    @staticmethod
    def _first_null(ids: np.ndarray | None) -> int | None:
        if ids is None or ids.dtype.kind in "iuUS":
            return None
        missing = np.flatnonzero(_nulls(ids))
        return int(missing[0]) if missing.size else None

    def check(self) -> None:
        """After the labels' pass: refuse duplicated label ids, and a join that matched nothing."""
        if self._maybe_duplicated():
            _raise_duplicate(_concatenate(self._label_keys), self.labels)
        if self._label_count and not self._label_rows_matched():
            unmatched = self.unmatched()
            raise IdMatchError(
                f"no label id matches a prediction id (--join-on {self.labels.id_column}): labels have ids "
                f"{_shown(unmatched.label_ids)}, predictions {_shown(_first(self._prediction_ids))}",
                path=f"{self.labels.path} and {self.predictions.path}",
                hint="are the ids written the same way in both files?",
            )

    def _maybe_duplicated(self) -> bool:
        """Whether a label id may appear twice: cheap tests before sorting every key.

        Equal ids are matched alike. Matched ones use one prediction row twice, so fewer
        rows are used than were taken; unmatched ones are few, and searched alone.
        """
        used = 0 if self._used is None else int(np.count_nonzero(self._used))
        if used != self._taken:
            return True
        if not self._unmatched_keys:
            return False
        unmatched = _concatenate(self._unmatched_keys)
        unmatched = unmatched[~_nulls(unmatched)]
        return _first_duplicate(unmatched) is not None

    def _label_rows_matched(self) -> int:
        return sum(int(rows.size) for rows in self._label_rows)

    def unmatched(self) -> Unmatched:
        """The rows of each side left without a partner, a few of their ids."""
        ids = self._prediction_ids if self._prediction_ids is not None else np.empty(0, dtype=object)
        used = self._used if self._used is not None else np.zeros(len(ids), dtype=bool)
        unused = np.flatnonzero(~used)
        return Unmatched(
            labels=self._unmatched_labels,
            predictions=int(unused.size),
            label_ids=tuple(python_value(v) for v in self._unmatched_label_ids),
            prediction_ids=tuple(python_value(v) for v in ids[unused[:SHOWN_IDS]]),
            matched=self._taken,
        )


def _first(ids: np.ndarray | None) -> tuple[Any, ...]:
    return () if ids is None else tuple(python_value(v) for v in ids[:3])


def _shown(ids: tuple[Any, ...], limit: int = 3) -> str:
    return ", ".join(show_id(v) for v in ids[:limit]) + (", ..." if len(ids) > limit else "") if ids else "none"


class _Lookup:
    """From label ids to prediction rows: an index over the prediction ids.

    Built when the first label block shows the labels' kind of id: when it differs from
    the predictions' (text against numbers), both sides are compared as text. Numeric
    ids are looked up by binary search in a sorted copy; text ids (and numbers compared
    as Python objects) in a ``dict`` from id to row, a hash table whose ``==`` is Python's:
    sorting Python strings is slow, and a ``pandas.Index`` costs its import and a check
    of each block of keys.
    """

    def __init__(self, prediction_ids: np.ndarray, label_kind: str, predictions: Source):
        self.kind = _common_kind(label_kind, _id_kind(prediction_ids))
        keys = _convert(prediction_ids, self.kind)
        nulls = _nulls(keys)
        self._rows: np.ndarray | None = None
        if nulls.any():
            self._rows = np.flatnonzero(~nulls)
            keys = keys[~nulls]
        self._keys = keys
        self._sorted: np.ndarray | None = None
        self._order: np.ndarray | None = None
        self._index: dict[Any, int] | None = None
        if keys.dtype.kind in "iuf":
            unique = self._sort()
        else:
            try:
                self._index = dict(zip(keys.tolist(), range(len(keys)), strict=True))
            except TypeError:  # a list or a mapping as an id (both sides' ids of such a kind)
                raise DataError(
                    f"has ids that are neither text nor numbers (such as {clip(repr(keys[0]))}): rows cannot be "
                    "matched by them",
                    path=predictions.path,
                    hint="join on a column of text or numbers",
                ) from None
            unique = len(self._index) == len(keys)
        if not unique:
            _raise_duplicate(keys, predictions, self._rows)

    def keys(self, ids: np.ndarray) -> np.ndarray:
        """A label block's ids in the compared form."""
        return _convert(_compact(ids, self.kind), self.kind)

    def _sort(self) -> bool:
        """Build the sorted copy of the keys and their order; whether the keys are unique."""
        self._order = np.argsort(self._keys)  # unique keys (else refused): any sort gives one order
        self._sorted = self._keys[self._order]
        return not np.any(self._sorted[1:] == self._sorted[:-1])

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """The prediction row of each key, -1 where there is none (a missing id matches nothing)."""
        nulls = _nulls(keys)
        if self._sorted is not None:
            rows = self._search(keys, nulls)
        else:
            assert self._index is not None
            find = self._index.get
            try:
                rows = np.fromiter(map(find, keys.tolist(), itertools.repeat(-1)), dtype=np.intp, count=len(keys))
            except TypeError:  # an id that cannot be a key matches nothing
                rows = np.array([find(key, -1) if _hashable(key) else -1 for key in keys.tolist()], dtype=np.intp)
        if nulls.any():
            rows[nulls] = -1
        if self._rows is not None:
            rows = np.where(rows >= 0, self._rows[np.maximum(rows, 0)], -1)
        return rows

    def _search(self, keys: np.ndarray, nulls: np.ndarray) -> np.ndarray:
        assert self._sorted is not None and self._order is not None
        if not len(self._sorted):
            return np.full(len(keys), -1, dtype=np.intp)
        keys, exact = _exactly_as(keys, nulls, self._sorted.dtype)
        where = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        found = (self._sorted[where] == keys) & exact
        return np.where(found, self._order[where], -1).astype(np.intp, copy=False)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _exactly_as(keys: np.ndarray, nulls: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``keys`` in ``dtype``, and where that is their exact value (False for a missing id).

    numpy compares and searches int64 against uint64 (or a Python int above 2**63)
    through float64, which rounds ids above 2**53 onto their neighbours: each key is
    cast, and kept only if the cast gives it back exactly.
    """
    present = ~nulls
    if keys.dtype == dtype or (keys.dtype != object and np.can_cast(keys.dtype, dtype, "safe")):
        return keys.astype(dtype, copy=False), present
    if keys.dtype == object:  # a block with a missing id, or Python ints beyond int64
        filled = np.where(present, keys, 0)
        try:
            cast = filled.astype(dtype)
        except (TypeError, ValueError, OverflowError):
            pass  # a value the type cannot hold: each key on its own, below
        else:  # Python's == of the values and their casts is exact (1.5 is not 1, 2**53 + 1 not 2.0**53)
            return cast, present & np.asarray(cast.astype(object) == filled, dtype=bool)
        cast = np.zeros(len(keys), dtype=dtype)
        exact = np.zeros(len(keys), dtype=bool)
        for i in np.flatnonzero(present):
            value = keys[i]
            try:
                item = dtype.type(value)
            except (TypeError, ValueError, OverflowError):
                continue
            if not isinstance(value, (bool, np.bool_)) and item.item() == value:
                cast[i], exact[i] = item, True
        return cast, exact
    with np.errstate(invalid="ignore", over="ignore"):
        cast = keys.astype(dtype)
        exact = present & (cast.astype(keys.dtype) == keys)
    if keys.dtype.kind == "i" and dtype.kind == "u":
        exact &= keys >= 0
    elif keys.dtype.kind == "u" and dtype.kind == "i":
        exact &= keys <= np.array(np.iinfo(dtype).max).astype(keys.dtype)
    return cast, exact


def _first_duplicate(keys: np.ndarray) -> tuple[int, int] | None:
    """The first and second row of the first id (in row order) that appears twice, or None."""
    if keys.dtype.kind in "iuf":
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1])
        if not same.size:
            return None
        second = int(order[same + 1].min())
    else:  # text, or numbers compared as Python objects: the first row whose id was seen before
        seen: dict[Any, int] = {}
        for row, key in enumerate(keys.tolist()):
            first = seen.setdefault(key, row)
            if first != row:
                return first, row
        return None
    first = int(np.flatnonzero(keys[:second] == keys[second])[0])
    return first, second


def _raise_duplicate(keys: np.ndarray, source: Source, rows: np.ndarray | None = None) -> None:
    """Raise naming the first id that appears twice in ``keys`` (and its rows), if any.

    ``rows`` maps positions in ``keys`` to rows of the file (when missing ids were left
    out of ``keys``); missing ids in ``keys`` are not compared.
    """
    nulls = _nulls(keys)
    if nulls.any():
        rows = np.flatnonzero(~nulls) if rows is None else rows[~nulls]
        keys = keys[~nulls]
    found = _first_duplicate(keys)
    if found is None:
        return
    first, second = found
    value = keys[second]
    if rows is not None:
        first, second = int(rows[first]), int(rows[second])
    raise IdMatchError(
        f"id {show_id(value)} appears more than once ({source.where(first)} and "
        f"{source.where(second)}): rows cannot be matched by id",
        path=source.path,
        hint="every id must be unique within a file",
    )


# ------------------------------------------------------------------ kinds of id


def _id_kind(ids: np.ndarray) -> str:
    """``int``, ``float``, ``text`` or ``other``: the type of the first id that is not missing."""
    if ids.dtype.kind in "iu":
        return "int"
    if ids.dtype.kind == "f":
        return "float"
    if ids.dtype.kind in "US":
        return "text"
    for value in ids:
        if value is None or (isinstance(value, float) and value != value):
            continue
        if isinstance(value, (bool, np.bool_)):
            return "other"
        if isinstance(value, (int, np.integer)):
            return "int"
        if isinstance(value, (float, np.floating)):
            return "float"
        return "text" if isinstance(value, str) else "other"
    return "empty"


def _common_kind(label_kind: str, prediction_kind: str) -> str:
    """How both sides' ids are compared: as they are when of one kind, else as numbers or text.

    Integer against float ids are ``number``: compared as Python objects, whose ``==``
    and ``hash`` are exact across int and float. Through float64, ids above 2**53 would
    round onto their neighbours (2**53 + 1 would match 2**53.0, and two distinct
    integers would look like one id given twice).
    """
    kinds = {label_kind, prediction_kind} - {"empty"}
    if len(kinds) <= 1:
        return kinds.pop() if kinds else "text"
    if kinds == {"int", "float"}:
        return "number"
    return "text"


def _compact(ids: np.ndarray, kind: str) -> np.ndarray:
    """Ids as a numpy array of their kind where they fit (8 bytes an id), else as read.

    Python ints from a reader become int64 (uint64 ids above 2**63 stay objects); a
    block holding a missing id stays objects too.
    """
    if ids.dtype != object:
        return ids
    try:
        if kind == "int":
            return ids.astype(np.int64)
        if kind == "float":
            return ids.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
        return ids
    return ids


def _convert(ids: np.ndarray, kind: str) -> np.ndarray:
    """Ids in the compared form of ``kind`` (text: ``str`` of each id, missing ids kept).

    ``number`` ids are Python ints and floats (``astype(object)`` makes them so), never
    rounded through float64.
    """
    if kind == "number":
        return ids if ids.dtype == object else ids.astype(object)
    if kind != "text" or _id_kind(ids) in ("text", "empty"):
        return ids
    nulls = _nulls(ids)
    text = ids.astype(str).astype(object)
    if nulls.any():
        text[nulls] = None
    return text


def _nulls(ids: np.ndarray) -> np.ndarray:
    """Where ids are missing (None or NaN)."""
    if ids.dtype.kind == "f":
        return np.asarray(np.isnan(ids), dtype=bool)
    if ids.dtype != object:
        return np.zeros(len(ids), dtype=bool)
    with np.errstate(invalid="ignore"):  # NaN is the one value unequal to itself
        return np.asarray(np.equal(ids, np.array(None)) | np.not_equal(ids, ids), dtype=bool)


def _concatenate(parts: list[np.ndarray], dtype: Any = None) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=dtype or object)
    if len({p.dtype for p in parts}) > 1:  # int64 blocks and a block with a missing id
        parts = [p.astype(object) for p in parts]
    return np.concatenate(parts)


# ------------------------------------------------------------------ the spill file


class _Spill:
    """The predictions' vectors: in memory when small, else in a temporary file mapped read-only.

    When the row count is known in advance (Parquet) and the vectors take at most
    :data:`MAPPED_BUDGET_BYTES`, the blocks the reader made are kept as they are (no
    copy: a list column's values stay in the buffers pyarrow decoded them into). Writing
    them to a file and faulting its pages back in costs more (the kernel may also
    throttle the writes of a busy machine) and saves no memory, since the gathers map
    most of a file anyway. Otherwise they go to ``tempfile.TemporaryFile``, which has no
    name on Linux (``O_TMPFILE``, or unlinked at once): closing it, or the process ending
    in any way, frees the space.
    """

    def __init__(self, rows_hint: int | None = None) -> None:
        self._rows_hint = rows_hint
        self._chunks: list[np.ndarray] | None = None
        self._starts: np.ndarray | None = None
        self._file: Any = None
        self._map: Any = None
        self._mapped: np.ndarray | None = None
        self.dtype: np.dtype | None = None
        self.shape: tuple[int, ...] = ()
        self.rows = 0

    def append(self, values: np.ndarray) -> None:
        if self.dtype is None:
            self.dtype, self.shape = values.dtype, tuple(values.shape[1:])
            self._start()
        elif values.shape[1:] != self.shape:
            raise DataError(f"a block of rows has shape {values.shape[1:]}, earlier ones {self.shape}")
        assert self.dtype is not None
        if values.dtype != self.dtype and not np.can_cast(values.dtype, self.dtype, "safe"):
            self._to_file()
            self._widen(np.result_type(self.dtype, values.dtype))
        if self._chunks is not None and self.rows + len(values) > (self._rows_hint or 0):
            self._to_file()  # more rows than the file said
        if self._chunks is not None:
            # Row-major, so that gathering a row reads one stretch of memory (Parquet's
            # numeric columns come column-major: copied here, as writing them out would).
            self._chunks.append(np.ascontiguousarray(values, dtype=self.dtype))
        else:
            data = np.ascontiguousarray(values, dtype=self.dtype)
            self._file.write(data.data.cast("B"))
        self.rows += len(values)

    def _start(self) -> None:
        """In memory if the rows are known and fit the budget, else in a temporary file."""
        assert self.dtype is not None
        row_bytes = self.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))
        if self._rows_hint is not None and self._rows_hint * row_bytes <= MAPPED_BUDGET_BYTES:
            self._chunks = []
            return
        import tempfile

        self._file = tempfile.TemporaryFile(prefix="cosloss-join-")

    def _to_file(self) -> None:
        """Move the rows held in memory to a temporary file (a wider dtype or more rows came)."""
        if self._chunks is None:
            return
        import tempfile

        held, self._chunks = self._chunks, None
        self._file = tempfile.TemporaryFile(prefix="cosloss-join-")
        for chunk in held:
            self._file.write(np.ascontiguousarray(chunk).data.cast("B"))

    def prepare(self) -> None:
        """After the last :meth:`append`: map the file, or index the chunks, for :meth:`take` on any thread."""
        if self._chunks is None:
            self._mapped = self.mapped()
        else:
            self._starts = np.cumsum([0] + [len(chunk) for chunk in self._chunks])

    def whole(self) -> np.ndarray | None:
        """Every row as one array (after :meth:`prepare`): the map of the file, the one chunk in memory, or None."""
        if self._chunks is None:
            return self._mapped
        return self._chunks[0] if len(self._chunks) == 1 else None

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (indices into all the rows appended), in that order."""
        if self._mapped is None and self._starts is None:
            self.prepare()
        if self._chunks is None:
            assert self._mapped is not None
            return np.take(self._mapped, rows, axis=0)
        assert self._starts is not None
        if len(self._chunks) == 1:
            return np.take(self._chunks[0], rows, axis=0)
        out = np.empty((len(rows), *self.shape), dtype=self.dtype)
        which = np.searchsorted(self._starts, rows, side="right") - 1
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(len(self._chunks) + 1))
        for index in np.flatnonzero(bounds[1:] > bounds[:-1]):
            where = order[bounds[index] : bounds[index + 1]]
            out[where] = np.take(self._chunks[index], rows[where] - self._starts[index], axis=0)
        return out

    def _widen(self, dtype: np.dtype) -> None:
        """Rewrite what was spilled in a wider dtype (a later block holds values the first could not)."""
        import tempfile

        old, old_dtype = self._file, self.dtype
        assert old_dtype is not None
        self._file, self.dtype = tempfile.TemporaryFile(prefix="cosloss-join-"), dtype
        old.seek(0)
        row_bytes = old_dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))
        step = max(1, (16 << 20) // max(1, row_bytes))
        for _ in range(0, self.rows, step):
            chunk = np.frombuffer(old.read(step * row_bytes), dtype=old_dtype)
            self._file.write(chunk.astype(dtype).data.cast("B"))
        old.close()

    @property
    def nbytes(self) -> int:
        """The size of the spilled rows."""
        if self.dtype is None:
            return 0
        return self.rows * self.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))

    def mapped(self) -> np.ndarray:
        """All the rows as one array: over a read-only map of the file, or joined from memory."""
        if self._chunks is not None:
            if not self._chunks:
                return np.empty((0, *self.shape), dtype=self.dtype or np.float64)
            return np.concatenate(self._chunks)
        if self._file is None or self.rows == 0:
            return np.empty((0, *self.shape), dtype=self.dtype or np.float64)
        import mmap

        self._file.flush()
        assert self.dtype is not None
        size = self.nbytes
        if size == 0:
            return np.empty((self.rows, *self.shape), dtype=self.dtype)
        self._map = mmap.mmap(self._file.fileno(), size, access=mmap.ACCESS_READ)
        return np.frombuffer(self._map, dtype=self.dtype).reshape(self.rows, *self.shape)

    def release(self) -> None:
        """Drop the map's pages from this process (they stay in the page cache, read back on use).

        The rows gathered so far are copies, so the pages are not needed: without this,
        every page ever read would count in the process's resident memory until the end
        (clean pages of a file, which the kernel can reclaim, but counted all the same).
        """
        if self._map is not None and hasattr(self._map, "madvise"):  # nothing to drop in memory
            import mmap

            advice = getattr(mmap, "MADV_DONTNEED", None)
            if advice is not None:
                self._map.madvise(advice)

    def close(self) -> None:
        """Unmap and close (so delete) the file; arrays still viewing the map keep it alive."""
        self._chunks = self._mapped = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view is still referenced (an error's traceback): freed with it
                pass
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None
