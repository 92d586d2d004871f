"""Two inputs aligned: columns paired by name, rows matched by id or key, shapes and row counts checked."""

from __future__ import annotations

import operator
from collections.abc import Iterator

import numpy as np

from ..core.cosine import shape_text
from ..errors import DataError, InputUsageError, ShapeMismatchError
from ..io import Block, Blocks, BlockStream, ReadOptions, Source
from ..io.names import pair_names
from .rows import join_hint


def pair_columns(labels: Source, predictions: Source, read_options: ReadOptions | None) -> tuple[Source, Source]:
    """Pair the vector components by name when both inputs name them (explicit ``columns`` win).

    The same names in another order: the predictions' columns are reordered to the
    labels' (a note says so). Disjoint names: by position. Names that overlap in part:
    a refusal naming the differences, since neither pairing can be trusted.
    """
    if (read_options is not None and read_options.columns) or not (labels.named and predictions.named):
        return labels, predictions
    assert labels.columns is not None and predictions.columns is not None
    try:
        order = pair_names(labels.columns, predictions.columns)
    except ValueError as exc:
        raise DataError(
            str(exc),
            path=f"{labels.path} and {predictions.path}",
            hint="name the columns to compare, in order, with --columns A,B,C",
        ) from None
    if order is None:
        return labels, predictions
    note = f"{predictions.path}: columns paired with the labels' by name (they are in another order)"
    return labels, predictions._replace(
        blocks=_Reordered(predictions.blocks, order), columns=labels.columns, notes=(*predictions.notes, note)
    )


class _Reordered(Blocks):
    """Blocks with their columns put in another order; keeps the reader's length hint."""

    __slots__ = ("_blocks", "_order")

    def __init__(self, blocks: BlockStream, order: list[int]):
        self._blocks = blocks
        self._order = np.asarray(order, dtype=np.intp)

    def __next__(self) -> Block:
        block = next(self._blocks)
        return Block(block.values[:, self._order], block.ids, block.weights, block.keys)

    def __length_hint__(self) -> int:
        return operator.length_hint(self._blocks)

    def close(self) -> None:
        self._blocks.close()


def check_columns_and_ids(labels: Source, predictions: Source, read_options: ReadOptions | None) -> None:
    if read_options is None:
        return
    if read_options.id_column and not (labels.has_ids or predictions.has_ids):
        raise InputUsageError(
            f"neither input has a column named {read_options.id_column!r} for --id-column",
            hint=_columns_hint(labels, predictions),
        )
    if read_options.columns and labels.columns is None and predictions.columns is None:
        raise InputUsageError("--columns needs inputs with named columns (CSV, TSV or Parquet)")
    if read_options.exclude_columns:
        present = {*(labels.file_columns or ()), *(predictions.file_columns or ())}
        missing = [name for name in read_options.exclude_columns if name not in present]
        if missing:
            raise InputUsageError(
                f"neither input has a column named {missing[0]!r} for --exclude-columns",
                hint=_columns_hint(labels, predictions),
            )


def _columns_hint(labels: Source, predictions: Source) -> str:
    named = labels.columns or predictions.columns
    return f"columns: {', '.join(named[:12])}" if named else "NPY/NPZ inputs have no named columns"


def source_shape_text(source: Source) -> str:
    return shape_text(source.shape[1:] if source.one_vector else source.shape)


def check_shapes(labels: Source, predictions: Source, same_rows: bool = True) -> None:
    """Compare what is known before reading: rank, vector shape, row count if known and ``same_rows``."""
    same_rank = labels.ndim == predictions.ndim and labels.one_vector == predictions.one_vector
    same_rest = labels.shape[1:] == predictions.shape[1:]
    rows_known = same_rows and labels.shape[0] is not None and predictions.shape[0] is not None
    if not same_rank or not same_rest or (rows_known and labels.shape[0] != predictions.shape[0]):
        raise ShapeMismatchError(
            f"shapes differ: labels {labels.path} {source_shape_text(labels)}, "
            f"predictions {predictions.path} {source_shape_text(predictions)}",
            hint=join_hint(labels, predictions)
            if same_rest and same_rank
            else "both files must hold the same number of vectors of the same length",
        )


def aligned(
    labels: Iterator[Block], predictions: Iterator[Block], lsource: Source, psource: Source
) -> Iterator[tuple[Block, Block]]:
    """Pair up blocks of equal length from two streams whose block sizes differ."""
    lpending: Block | None = None
    ppending: Block | None = None
    while True:
        if lpending is None or len(lpending) == 0:
            lpending = next(labels, None)
        if ppending is None or len(ppending) == 0:
            ppending = next(predictions, None)
        if lpending is None or ppending is None:
            if lpending is not None or ppending is not None:
                _raise_row_count_mismatch(lpending, ppending, labels, predictions, lsource, psource)
            return
        n = min(len(lpending), len(ppending))
        if n == 0:
            continue
        yield lpending.slice(0, n), ppending.slice(0, n)
        lpending = lpending.slice(n, len(lpending))
        ppending = ppending.slice(n, len(ppending))


def _raise_row_count_mismatch(
    lpending: Block | None,
    ppending: Block | None,
    labels: Iterator[Block],
    predictions: Iterator[Block],
    lsource: Source,
    psource: Source,
) -> None:
    """One input ran out first: count what is left of the other for the message."""
    longer, rest, pending = (
        ("labels", labels, lpending) if lpending is not None else ("predictions", predictions, ppending)
    )
    extra = (len(pending) if pending else 0) + sum(len(b) for b in rest)
    raise ShapeMismatchError(
        f"row counts differ: {longer} has {extra} more rows than the other input "
        f"(labels {lsource.path}, predictions {psource.path})",
        hint=join_hint(lsource, psource),
    )
