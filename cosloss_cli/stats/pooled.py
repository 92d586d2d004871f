"""The losses of many pairs pooled, for their exact percentiles in bounded memory (``batch``).

Exact pooled percentiles need every loss: averaging the pairs' percentiles is not the
percentile of all losses. So each pair's kept losses are sent back by its worker and
added here, and this store keeps memory bounded as follows:

- up to :data:`IN_MEMORY_VALUES` losses (32 MB) they are kept in memory and the
  percentiles are those of :func:`~cosloss_cli.stats.distribution.percentiles` on all of them;
- beyond, every loss goes to an anonymous temporary file (8 bytes a loss, deleted when
  closed or when the process ends), and each order statistic the percentiles need is
  found by a radix selection over the file: four passes that each read it in chunks of
  :data:`CHUNK_VALUES` and count the next 16 bits of the losses' order-preserving 64-bit
  keys, narrowing each wanted rank to one key. Memory: one chunk and a 65,536-bin count
  per wanted rank (at most 10); time: four reads of the file.

Both paths give numpy's linear-method percentiles of all the losses, to the bit.

A local batch's workers write their pairs' losses to files of their own instead of
sending them back (:mod:`cosloss_cli.base.spool`); :meth:`PooledLosses.add_span` takes
where they are, and the files are mapped (or, beyond memory, read once) when the
percentiles are asked for.
"""

from __future__ import annotations

import math
import os
from itertools import pairwise
from typing import IO, TYPE_CHECKING

import numpy as np

from .distribution import PERCENTILES, percentiles_by_rank, quantiles_by_rank

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from numpy.typing import ArrayLike

    from ..base.spool import Span

#: Losses kept in memory before the store spills them to a temporary file.
IN_MEMORY_VALUES = 4 * 1024 * 1024

#: Losses read from the file at a time during a selection pass.
CHUNK_VALUES = 1024 * 1024

_SIGN = np.uint64(1 << 63)
_DIGIT_BITS = 16
_DIGITS = 1 << _DIGIT_BITS


class PooledLosses:
    """Losses added pair by pair; :meth:`percentiles` of all of them, exactly.

    Examples
    --------
    >>> pooled = PooledLosses(memory_values=2)
    >>> pooled.add([0.0, 1.0]); pooled.add([2.0, 3.0, 4.0])  # the second pair spills to disk
    >>> pooled.percentiles()
    {'p05': 0.2, 'p25': 1.0, 'p75': 3.0, 'p95': 3.8, 'p99': 3.96}
    >>> pooled.close()
    """

    def __init__(self, memory_values: int | None = None):
        self.memory_values = IN_MEMORY_VALUES if memory_values is None else memory_values
        self.has_nan = False
        self._added = 0
        self._parts: list[np.ndarray] = []
        self._file: IO[bytes] | None = None
        self._spans: list[Span] = []
        self._spanned = 0
        self._mapped: list[np.ndarray] = []
        self._folder: str | None = None

    @property
    def size(self) -> int:
        """Losses added so far, in memory, on disk or in the workers' files."""
        return self._added + self._spanned + sum(mapped.size for mapped in self._mapped)

    def spool_folder(self) -> str:
        """A private folder for the workers' files of losses (see :mod:`~cosloss_cli.base.spool`)."""
        if self._folder is None:
            import tempfile

            self._folder = tempfile.mkdtemp(prefix="cosloss-pooled-")
        return self._folder

    def add_span(self, span: Span) -> None:
        """Add one pair's losses that a worker wrote to its file (read when the percentiles are asked for)."""
        if span.length:
            self._spans.append(span)
            self._spanned += span.length

    def add(self, losses: ArrayLike, *, owned: bool = False) -> None:
        """Add one pair's kept losses (NaN ones, under ``--nan-policy propagate``, make every percentile NaN).

        ``owned``: the caller gives the array away (the batch runner, with the losses a
        worker sent back): kept as it is when it owns its memory, instead of copied.
        """
        values = np.ascontiguousarray(losses, dtype=np.float64)
        if values.ndim != 1:  # not ravel() always: a view of a 1-D array would not own its memory
            values = values.reshape(-1)
        if not values.size:
            return
        self.has_nan = self.has_nan or bool(np.isnan(values).any())
        self._added += values.size
        if self._file is None and self.size <= self.memory_values:
            self._parts.append(values if owned and values.flags.owndata else values.copy())
            return
        if self._file is None:
            import tempfile

            self._file = tempfile.TemporaryFile(prefix="cosloss-pooled-")
            for part in self._parts + self._mapped:
                self._file.write(part.tobytes())
            self._added += sum(mapped.size for mapped in self._mapped)  # now in the file
            self._parts.clear()
            self._mapped.clear()
        self._file.write(values.tobytes())

    def percentiles(self) -> dict[str, float]:
        """p05 ... p99 of every loss added, as ``np.percentile`` of them all would give."""
        self._read_spans()
        if self.size == 0 or self.has_nan:
            return dict.fromkeys(PERCENTILES, math.nan)
        if self._file is None:  # in memory and in the workers' files, mapped: no copy of them all
            pieces = self._parts + self._mapped
            return percentiles_by_rank(self.size, lambda ranks: select_ranks(pieces, ranks))
        self._file.flush()
        return percentiles_by_rank(self.size, self._select)

    def quantiles(self, fractions: Sequence[float]) -> list[float]:
        """``np.quantile`` of every loss added at each of ``fractions`` (linear method); NaN if one is NaN."""
        self._read_spans()
        if self.size == 0 or self.has_nan:
            return [math.nan] * len(fractions)
        if self._file is None:
            pieces = self._parts + self._mapped
            found = quantiles_by_rank(self.size, fractions, lambda ranks: select_ranks(pieces, ranks))
        else:
            self._file.flush()
            found = quantiles_by_rank(self.size, fractions, self._select)
        return [float(value) for value in found]

    def chunks(self) -> Iterator[np.ndarray]:
        """Every loss added, a chunk of at most :data:`CHUNK_VALUES` at a time (for passes over them all)."""
        self._read_spans()
        for piece in self._parts + self._mapped:
            for start in range(0, piece.size, CHUNK_VALUES):
                yield piece[start : start + CHUNK_VALUES]
        if self._file is not None:
            self._file.flush()
            yield from self._chunks()

    def close(self) -> None:
        """Free the memory and delete the temporary file and folder."""
        self._parts.clear()
        self._mapped.clear()  # each map is closed with the last array that uses it
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _read_spans(self) -> None:
        """Add the losses the spans name: each file mapped when its spans are all of it, else read once.

        Mapped, the losses are neither copied nor counted in memory (they are the
        files' pages in the page cache), which saves copying them into new pages and
        concatenating them at the end of a batch (it pays on a 2,000-pair batch).
        NaN among them (``--nan-policy propagate``) is found by the selection.
        """
        by_file: dict[str, list[Span]] = {}
        for span in self._spans:
            by_file.setdefault(span.path, []).append(span)
        self._spans, self._spanned = [], 0
        for path, spans in by_file.items():
            spans.sort(key=lambda span: span.offset)
            count = sum(span.length for span in spans)
            contiguous = spans[0].offset == 0 and all(a.offset + 8 * a.length == b.offset for a, b in pairwise(spans))
            with open(path, "rb") as handle:
                if contiguous and self._file is None and self.size + count <= self.memory_values:
                    self._mapped.append(_mapped_values(handle, count))  # the usual case
                    continue
                for span in spans:  # a worker died after writing (bytes no result names), or beyond memory
                    handle.seek(span.offset)
                    for start in range(0, span.length, CHUNK_VALUES):
                        self.add(_read_values(handle, min(CHUNK_VALUES, span.length - start)), owned=True)

    def _chunks(self) -> Iterator[np.ndarray]:
        assert self._file is not None
        self._file.seek(0)
        while True:
            data = self._file.read(CHUNK_VALUES * 8)
            if not data:
                return
            yield np.frombuffer(data, dtype=np.float64)

    def _select(self, ranks: list[int]) -> list[float]:
        """The values of the given 0-based ranks in the sorted losses: a radix selection on disk."""
        found = {rank: (0, rank) for rank in ranks}  # rank -> (the key's known top bits, rank among them)
        for known in range(0, 64, _DIGIT_BITS):
            counts = {prefix: np.zeros(_DIGITS, dtype=np.int64) for prefix, _ in found.values()}
            shift = np.uint64(64 - known - _DIGIT_BITS)
            for chunk in self._chunks():
                keys = order_keys(chunk)
                for prefix, count in counts.items():
                    inside = keys if known == 0 else keys[(keys >> np.uint64(64 - known)) == np.uint64(prefix)]
                    digits = ((inside >> shift) & np.uint64(_DIGITS - 1)).astype(np.intp)
                    count += np.bincount(digits, minlength=_DIGITS)
            for rank, (prefix, within) in found.items():
                cumulative = np.cumsum(counts[prefix])
                digit = int(np.searchsorted(cumulative, within, side="right"))
                before = int(cumulative[digit - 1]) if digit else 0
                found[rank] = ((prefix << _DIGIT_BITS) | digit, within - before)
        return [key_value(found[rank][0]) for rank in ranks]


#: Bins of :func:`select_ranks`' histogram, and the fewest values it is used for (below,
#: one partition is as quick).
SELECT_BINS = 4096
SELECT_MIN_VALUES = 1 << 16

#: Values :func:`select_ranks` bins at a time: its temporaries (two arrays of this many
#: 8-byte values, 1 MB) stay in the cache instead of being new pages of memory.
SELECT_CHUNK_VALUES = 1 << 16


def select_ranks(pieces: Sequence[np.ndarray], ranks: list[int]) -> np.ndarray:
    """The values of the 0-based ``ranks`` in the sorted values of all ``pieces`` together.

    The pieces are only read (they may be read-only maps of the workers' files), so
    nothing is copied or concatenated. A partition at seven ranks of 2 million losses
    (serial, at the end of a batch) costs several selections over all of them.
    Instead, one histogram of the values over [min, max] in :data:`SELECT_BINS` equal
    bins, taken a cache-sized chunk at a time, tells which bin holds each wanted rank
    and its rank among that bin's values; a second pass copies out only the values of
    those bins, which are partitioned (it pays on a 2,000-pair batch). The bin of a value,
    ``int((v - min) * scale)``, never decreases as ``v`` grows (each step is correctly
    rounded, hence monotonic), and both passes compute it the same way, so the result
    is the partition's to the bit whatever the rounding near a bin's edge.

    A NaN among the values makes every result NaN. Few values, or non-finite ones,
    take the plain partition of a concatenated copy.
    """
    size = sum(piece.size for piece in pieces)
    if size >= SELECT_MIN_VALUES:
        low, high = _range(pieces)
        if math.isnan(low) or math.isnan(high):
            return np.full(len(ranks), math.nan)
        if high == low:
            return np.full(len(ranks), low)
        # Infinities, or a subnormal range, where (v - min) * scale could be 0 * inf: the plain partition.
        if math.isfinite(high - low) and math.isfinite(SELECT_BINS / (high - low)):
            return _select_in_bins(pieces, ranks, _Binning(low, SELECT_BINS / (high - low)))
    values = np.concatenate(pieces) if len(pieces) != 1 else pieces[0].copy()
    values.partition(ranks)
    found: np.ndarray = values[ranks]
    if np.isnan(values).any():  # NaN sorts last: the ranks below it would be numbers
        found[:] = math.nan
    return found


def _range(pieces: Sequence[np.ndarray]) -> tuple[float, float]:
    """(min, max) of the values of all the pieces (NaN when there is a NaN among them)."""
    lows = [float(piece.min()) for piece in pieces if piece.size]
    highs = [float(piece.max()) for piece in pieces if piece.size]
    if any(math.isnan(value) for value in lows + highs):
        return math.nan, math.nan
    return min(lows), max(highs)


class _Binning:
    """The bins of :func:`select_ranks`: ``int((v - low) * scale)``, the last bin closed.

    Computed a chunk at a time into buffers reused between chunks.
    """

    def __init__(self, low: float, scale: float):
        self.low, self.scale = low, scale
        self._scaled = np.empty(SELECT_CHUNK_VALUES)
        self._bins = np.empty(SELECT_CHUNK_VALUES, dtype=np.intp)

    def chunks(self, pieces: Sequence[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each chunk of values of the pieces, with its bins (valid until the next chunk)."""
        for piece in pieces:
            for start in range(0, piece.size, SELECT_CHUNK_VALUES):
                chunk = piece[start : start + SELECT_CHUNK_VALUES]
                scaled, bins = self._scaled[: chunk.size], self._bins[: chunk.size]
                np.subtract(chunk, self.low, out=scaled)
                scaled *= self.scale
                bins[...] = scaled  # truncates toward zero, as astype(np.intp)
                np.minimum(bins, SELECT_BINS - 1, out=bins)  # the maximum lands on the edge, and rounding may go past
                yield chunk, bins


def _select_in_bins(pieces: Sequence[np.ndarray], ranks: list[int], binning: _Binning) -> np.ndarray:
    """:func:`select_ranks` through the histogram of the pieces' bins."""
    counts = np.zeros(SELECT_BINS, dtype=np.intp)
    for _, bins in binning.chunks(pieces):
        counts += np.bincount(bins, minlength=SELECT_BINS)
    through = np.cumsum(counts)  # values in each bin and the bins before it
    homes = np.searchsorted(through, ranks, side="right").tolist()  # each rank's bin
    wanted = sorted(set(homes))  # (not np.unique, which imports numpy.ma)
    chosen = np.zeros(SELECT_BINS, dtype=bool)
    chosen[wanted] = True
    # The wanted bins' values; once sorted, a lower bin's come first.
    inside = np.concatenate([chunk[chosen[bins]] for chunk, bins in binning.chunks(pieces)])
    # A rank's position among them: the wanted bins' values below its bin, plus its rank in its bin.
    start, offsets = 0, {}
    for home in wanted:
        offsets[home] = start
        start += int(counts[home])
    before = (through - counts).tolist()  # values in the bins before each bin
    positions = [offsets[home] + rank - before[home] for rank, home in zip(ranks, homes, strict=True)]
    inside.partition(positions)
    found: np.ndarray = inside[positions]
    return found


def _mapped_values(handle: IO[bytes], count: int) -> np.ndarray:
    """The first ``count`` float64 values of ``handle``'s file, mapped read-only."""
    import mmap

    size = os.fstat(handle.fileno()).st_size
    if size < 8 * count:
        raise OSError(f"{handle.name}: a worker's file of losses ends early ({size // 8} of {count} values)")
    mapped = mmap.mmap(handle.fileno(), 8 * count, access=mmap.ACCESS_READ)
    return np.frombuffer(mapped, dtype=np.float64, count=count)


def _read_values(handle: IO[bytes], count: int) -> np.ndarray:
    """``count`` float64 values from ``handle``'s position (a worker's file of losses)."""
    values = np.fromfile(handle, dtype=np.float64, count=count)
    if values.size != count:
        raise OSError(f"{handle.name}: a worker's file of losses ends early ({values.size} of {count} values)")
    return values


def order_keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys in the order of the float64 values (negative values' bits inverted)."""
    bits = values.view(np.uint64)
    keys: np.ndarray = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    return keys


def key_value(key: int) -> float:
    """The float64 value of an :func:`order_keys` key."""
    bits = key ^ (1 << 63) if key & (1 << 63) else ~key & ((1 << 64) - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])
