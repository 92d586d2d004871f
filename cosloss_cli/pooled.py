"""The losses of many pairs pooled, for their exact percentiles in bounded memory (``batch``).

Exact pooled percentiles need every loss: averaging the pairs' percentiles is not the
percentile of all losses. So each pair's kept losses are sent back by its worker and
added here, and this store keeps memory bounded as follows:

- up to :data:`IN_MEMORY_VALUES` losses (32 MB) they are kept in memory and the
  percentiles are those of :func:`~cosloss_cli.distribution.percentiles` on all of them;
- beyond, every loss goes to an anonymous temporary file (8 bytes a loss, deleted when
  closed or when the process ends), and each order statistic the percentiles need is
  found by a radix selection over the file: four passes that each read it in chunks of
  :data:`CHUNK_VALUES` and count the next 16 bits of the losses' order-preserving 64-bit
  keys, narrowing each wanted rank to one key. Memory: one chunk and a 65,536-bin count
  per wanted rank (at most 10); time: four reads of the file.

Both paths give numpy's linear-method percentiles of all the losses, to the bit.
"""

from __future__ import annotations

import math
from typing import IO, TYPE_CHECKING

import numpy as np

from .distribution import PERCENTILES, percentiles_by_rank

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import ArrayLike

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
        self.size = 0
        self.has_nan = False
        self._parts: list[np.ndarray] = []
        self._file: IO[bytes] | None = None

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
        self.size += values.size
        if self._file is None and self.size <= self.memory_values:
            self._parts.append(values if owned and values.flags.owndata else values.copy())
            return
        if self._file is None:
            import tempfile

            self._file = tempfile.TemporaryFile(prefix="cosloss-pooled-")
            for part in self._parts:
                self._file.write(part.tobytes())
            self._parts.clear()
        self._file.write(values.tobytes())

    def percentiles(self) -> dict[str, float]:
        """p05 ... p99 of every loss added, as ``np.percentile`` of them all would give."""
        if self.size == 0 or self.has_nan:
            return dict.fromkeys(PERCENTILES, math.nan)
        if self._file is None:  # one copy of them all, partitioned in place
            every = np.concatenate(self._parts)
            self._parts = [every]

            def select(ranks: list[int]) -> np.ndarray:
                every.partition(ranks)
                return every[ranks]

            return percentiles_by_rank(self.size, select)
        self._file.flush()
        return percentiles_by_rank(self.size, self._select)

    def close(self) -> None:
        """Free the memory and delete the temporary file."""
        self._parts.clear()
        if self._file is not None:
            self._file.close()
            self._file = None

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


def order_keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys in the order of the float64 values (negative values' bits inverted)."""
    bits = values.view(np.uint64)
    keys: np.ndarray = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    return keys


def key_value(key: int) -> float:
    """The float64 value of an :func:`order_keys` key."""
    bits = key ^ (1 << 63) if key & (1 << 63) else ~key & ((1 << 64) - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])
