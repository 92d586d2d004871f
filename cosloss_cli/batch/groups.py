"""``batch --group-by``: each group's figures over every pair's losses, in bounded memory.

Each pair sends back its own groups' keys and each kept loss's group (a code into
them). They are added here as the pairs finish. A pair's keys are merged at once into
the batch's distinct keys (a small array per pair says which is which), and its codes
and losses are held in memory up to :data:`MEMORY_LOSSES` losses in all; beyond, every
pair's go to two anonymous temporary files (12 bytes a loss), so the memory of a batch
does not grow with its losses.

At the end the distinct keys are sorted into the batch's groups as ``compute
--group-by`` sorts them (the same key in two pairs is one group), and each group's
figures are those of :func:`~cosloss_cli.stats.groups.summaries` on all its losses,
the interval of the mean drawn with the batch's ``--confidence``, ``--resamples`` and
``--seed``: what ``compute --group-by`` gives on the pairs' rows put together (a
group's figures depend on its losses alone, sorted, never on their order). Spilled,
the losses are dealt a chunk at a time into buckets of consecutive groups of at most
:data:`MEMORY_LOSSES` losses, each summarized alone. A group with more losses than
that is summarized from its own file as ``compute --json --no-losses`` summarizes a
spilled run (:class:`~cosloss_cli.pipeline.spilled.SpilledLosses`): exact percentiles,
sums a chunk at a time, and the normal interval of the mean, which the bootstrap's
equals to a relative 1/n at millions of losses.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Any, NamedTuple

import numpy as np

from ..io.formats import natural_key
from ..stats.distribution import PERCENTILES
from ..stats.groups import MAX_GROUPS_WITH_CI, Groups, group_rows, summaries, too_many_for_intervals
from ..stats.intervals import finite_or_none

#: Losses held in memory (with their codes) before they are spilled, and most losses of a
#: bucket summarized at once (``summaries`` needs about 100 bytes a loss while it works).
MEMORY_LOSSES = 1 << 20

#: Most bucket files open at once: more buckets are dealt in several passes.
MOST_BUCKET_FILES = 128


class _Pair(NamedTuple):
    """One pair's part: its name, its keys as indices into the distinct keys, where its losses are."""

    name: str
    distinct: np.ndarray
    codes: np.ndarray | None
    losses: np.ndarray | None
    offset: int
    length: int


class PooledGroups:
    """The pairs' groups, added as they finish; :meth:`figures` of every pooled group at the end."""

    def __init__(self, memory_losses: int = MEMORY_LOSSES):
        self.memory_losses = max(1, memory_losses)
        self.names: tuple[str, ...] | None = None
        self._distinct: dict[tuple[Any, ...], int] = {}
        self._pairs: list[_Pair] = []
        self._held = 0
        self._files: tuple[IO[bytes], IO[bytes]] | None = None
        self._written = 0

    def add(self, name: str, names: tuple[str, ...], keys: Sequence[tuple[Any, ...]], codes: Any, losses: Any) -> None:
        """Add one pair's groups: its ``keys``, and each kept loss's code into them with its loss."""
        if self.names is None:
            self.names = names
        distinct = np.fromiter((self._distinct.setdefault(key, len(self._distinct)) for key in keys), np.int64)
        codes = np.ascontiguousarray(codes, dtype=np.int32)
        losses = np.ascontiguousarray(losses, dtype=np.float64)
        if self._files is None and self._held + losses.size <= self.memory_losses:
            self._pairs.append(_Pair(name, distinct, codes, losses, 0, losses.size))
            self._held += losses.size
            return
        if self._files is None:  # from now on every pair's losses are on disk
            self._files = (tempfile.TemporaryFile(prefix="cosloss-groups-"), tempfile.TemporaryFile())
            held, self._pairs, self._held = self._pairs, [], 0
            for pair in held:
                assert pair.codes is not None and pair.losses is not None
                self._pairs.append(self._write(pair.name, pair.distinct, pair.codes, pair.losses))
        self._pairs.append(self._write(name, distinct, codes, losses))

    def _write(self, name: str, distinct: np.ndarray, codes: np.ndarray, losses: np.ndarray) -> _Pair:
        assert self._files is not None
        self._files[0].write(codes.tobytes())
        self._files[1].write(losses.tobytes())
        offset, self._written = self._written, self._written + losses.size
        return _Pair(name, distinct, None, None, offset, losses.size)

    def figures(
        self, *, confidence: float, resamples: int | None, seed: int
    ) -> tuple[tuple[dict[str, Any], ...] | None, tuple[str, ...]]:
        """Each pooled group's figures in key order, and notes (None: no pair had groups)."""
        if self.names is None:
            return None, ()
        pairs = sorted(self._pairs, key=lambda pair: natural_key(pair.name))
        distinct = list(self._distinct)
        columns = {}
        for at, name in enumerate(self.names):
            values = np.empty(len(distinct), dtype=object)
            values[:] = [key[at] for key in distinct]
            columns[name] = values
        merged = group_rows(columns)  # each distinct key -> its pooled group, groups sorted as compute sorts them
        groups = Groups(self.names, np.empty(0, dtype=np.int64), merged.keys)
        maps = [merged.codes[pair.distinct] for pair in pairs]
        intervals = confidence > 0 and len(merged.keys) <= MAX_GROUPS_WITH_CI
        note = too_many_for_intervals(groups, confidence)
        notes = (note,) if note else ()
        draw: dict[str, Any] = {"confidence": confidence, "resamples": resamples, "seed": seed, "intervals": intervals}
        if self._files is None:
            codes = [mapping[pair.codes] for mapping, pair in zip(maps, pairs, strict=True) if pair.codes is not None]
            losses = [pair.losses for pair in pairs if pair.losses is not None]
            every = groups._replace(codes=np.concatenate(codes) if codes else np.empty(0, dtype=np.int64))
            found = summaries(np.concatenate(losses) if losses else np.empty(0), every, **draw)
            return tuple(found), notes
        return tuple(self._bucketed(pairs, maps, groups, draw)), notes

    def _chunks(self, pairs: list[_Pair], maps: list[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(pooled group, loss) of every spilled loss, a chunk of at most ``memory_losses`` at a time."""
        assert self._files is not None
        codes_file, losses_file = self._files
        for pair, mapping in zip(pairs, maps, strict=True):
            for start in range(0, pair.length, self.memory_losses):
                count = min(self.memory_losses, pair.length - start)
                codes_file.seek(4 * (pair.offset + start))
                losses_file.seek(8 * (pair.offset + start))
                codes = np.fromfile(codes_file, dtype=np.int32, count=count)
                losses = np.fromfile(losses_file, dtype=np.float64, count=count)
                yield mapping[codes], losses

    def _bucketed(
        self, pairs: list[_Pair], maps: list[np.ndarray], groups: Groups, draw: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """The groups' figures from the files: a bucket of consecutive groups at a time."""
        count = len(groups.keys)
        sizes = np.zeros(count, dtype=np.int64)
        for codes, _ in self._chunks(pairs, maps):
            sizes += np.bincount(codes, minlength=count)
        bounds = _bucket_bounds(sizes, self.memory_losses)
        home = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))  # each group's bucket
        for first in range(0, len(bounds) - 1, MOST_BUCKET_FILES):
            last = min(first + MOST_BUCKET_FILES, len(bounds) - 1)
            files = [(tempfile.TemporaryFile(), tempfile.TemporaryFile()) for _ in range(first, last)]
            try:
                for codes, losses in self._chunks(pairs, maps):
                    buckets = home[codes]
                    inside = (buckets >= first) & (buckets < last)
                    order = np.argsort(buckets[inside], kind="stable")
                    codes, losses, buckets = codes[inside][order], losses[inside][order], buckets[inside][order]
                    edges = np.searchsorted(buckets, np.arange(first, last + 1))
                    for at, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
                        files[at][0].write((codes[low:high] - bounds[first + at]).astype(np.int32).tobytes())
                        files[at][1].write(losses[low:high].tobytes())
                for at, (codes_file, losses_file) in enumerate(files):
                    low, high = int(bounds[first + at]), int(bounds[first + at + 1])
                    keys = groups.keys[low:high]
                    if high - low == 1 and sizes[low] > self.memory_losses:
                        yield _large_group(groups._replace(keys=keys), losses_file, self.memory_losses, draw)
                        continue
                    codes_file.seek(0)
                    losses_file.seek(0)
                    part = groups._replace(codes=np.fromfile(codes_file, dtype=np.int32).astype(np.int64), keys=keys)
                    yield from summaries(np.fromfile(losses_file, dtype=np.float64), part, **draw)
            finally:
                for codes_file, losses_file in files:
                    codes_file.close()
                    losses_file.close()

    def close(self) -> None:
        """Delete the temporary files."""
        if self._files is not None:
            for handle in self._files:
                handle.close()
            self._files = None


def _bucket_bounds(sizes: np.ndarray, most: int) -> np.ndarray:
    """Where each bucket of consecutive groups starts (and the end): at most ``most`` losses,
    or one group alone."""
    through = np.cumsum(sizes)
    bounds, start = [0], 0
    while start < sizes.size:
        before = int(through[start - 1]) if start else 0
        stop = max(int(np.searchsorted(through, before + most, side="right")), start + 1)
        bounds.append(stop)
        start = stop
    return np.array(bounds, dtype=np.int64)


def _large_group(groups: Groups, losses_file: IO[bytes], chunk: int, draw: dict[str, Any]) -> dict[str, Any]:
    """The figures of one group with more losses than a bucket, a chunk at a time from its file."""
    from ..pipeline.spilled import SpilledLosses

    spilled = SpilledLosses(omit=False)
    try:
        losses_file.seek(0)
        while True:
            losses = np.fromfile(losses_file, dtype=np.float64, count=chunk)
            if not losses.size:
                break
            losses = losses[~np.isnan(losses)]  # as summaries leaves them out
            spilled.add(losses, np.zeros(losses.shape, dtype=bool))
        summary, percentiles = spilled.summary(0)
        low, high = spilled.interval(summary, draw["confidence"]) if draw["intervals"] else (math.nan, math.nan)
    finally:
        spilled.close()
    entry: dict[str, Any] = {"key": groups.key_dict(0), "count": summary.count}
    for name in ("mean", "std", "min", "median", "max"):
        entry[name] = finite_or_none(float(getattr(summary, name)))
    for name in PERCENTILES:
        entry[name] = finite_or_none(float(percentiles[name]))
    entry["ci_low"], entry["ci_high"] = finite_or_none(low), finite_or_none(high)
    return entry
