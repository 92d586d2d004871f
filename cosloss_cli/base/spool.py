"""The kept losses of a local batch's pairs, written by each worker to its own file.

Every loss of every pair is needed for the exact pooled percentiles. Sent back through
the pool's result pipe, a pair of 1,000 rows costs 8 KB pickled in the worker, carried
through the pipe and unpickled in the parent, whose work competes with the workers' on
a small machine (measured: bench/RESULTS.md, round 10). Instead each worker
process appends its pairs' losses to one file of raw float64 in a folder the parent
owns, and the result carries only where they are (a :class:`Span`). The parent reads
the files once at the end (:meth:`cosloss_cli.stats.pooled.PooledLosses.add_span`).

Only the spans of results the parent received count: a worker that died after writing
a pair's losses leaves bytes that no span names, and they are never read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np


class Span(NamedTuple):
    """``length`` float64 losses at byte ``offset`` of the file ``path``."""

    path: str
    offset: int
    length: int


class _Spool:
    """This process's open file in one spool folder, and its length so far."""

    def __init__(self, folder: str):
        self.path = os.path.join(folder, f"worker-{os.getpid()}.f64")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = 0


#: This process's open files, by folder and process id (a fork of a process that spooled gets its own).
_open: dict[tuple[str, int], _Spool] = {}


def spool(folder: str, losses: list[np.ndarray]) -> list[Span]:
    """Append each array of ``losses`` (float64) to this process's file in ``folder``; where each went.

    One write for them all: a task's pairs are spooled together (one system call rather
    than one per pair), gathered from the arrays where they
    are (``writev``) rather than joined first into a new buffer, whose fresh pages
    cost more page faults than the copy.
    """
    import numpy as np

    key = (folder, os.getpid())
    spooled = _open.get(key)
    if spooled is None:
        spooled = _open[key] = _Spool(folder)
    spans = []
    offset = spooled.size
    for array in losses:
        spans.append(Span(spooled.path, offset, array.size))
        offset += 8 * array.size
    _write_all(spooled.fd, [np.ascontiguousarray(array, dtype=np.float64).data.cast("B") for array in losses])
    spooled.size = offset
    return spans


#: Most buffers one ``writev`` takes (POSIX's IOV_MAX is at least 16; Linux allows 1,024).
_MOST_BUFFERS = 1024


def _write_all(fd: int, views: list[memoryview]) -> None:
    """Write every byte of ``views`` in order, resuming after a short write."""
    start = 0
    while start < len(views):
        if hasattr(os, "writev"):
            written = os.writev(fd, views[start : start + _MOST_BUFFERS])
        else:
            written = os.write(fd, views[start])
        while start < len(views) and written >= views[start].nbytes:
            written -= views[start].nbytes
            start += 1
        if written:
            views[start] = views[start][written:]
