"""``compare``'s paired tests in a process of their own, which imports scipy.stats from the start.

``import scipy.stats`` takes 0.6-1.0 s on a 2-core VM: as long as reading and summing
two models of a million rows, and ``compare`` needs scipy only for the paired tests,
once every loss is known. So the command starts one worker process first; it imports
scipy.stats while this process reads the inputs, then runs the tests on the losses it
is sent (:func:`cosloss_cli.stats.paired_comparison`, the same function as in this
process, so the figures are the same to the bit). If the worker dies, the tests run here.

The worker leaves Ctrl-C to this process, which stops it (SIGTERM) on any error or
interrupt, so it never outlives the command.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

T = TypeVar("T")


class StatsProcess:
    """One worker process that has imported scipy.stats (or is importing it): :meth:`submit` work to it."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the worker and its import (before any thread of this process: it is forked)."""
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(max_workers=1, initializer=_worker_init)
        self._pool.submit(_import_stats)

    def submit(self, work: Callable[..., T], *args: Any) -> Callable[[], T]:
        """Begin ``work(*args)`` in the worker; call the result for its value (here if the worker died)."""
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            return lambda: work(*args)
        try:
            future = self._pool.submit(work, *args)
        except BrokenProcessPool:
            return lambda: work(*args)

        def result() -> T:
            try:
                return future.result()
            except BrokenProcessPool:  # killed (out of memory?): the same work here
                return work(*args)

        return result

    def close(self, *, stop: bool = False) -> None:
        """Let the worker exit (``stop``: at once, with SIGTERM, whatever it is doing)."""
        if self._pool is None:
            return
        if stop:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except (OSError, TypeError):
                    pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


@contextmanager
def stats_process() -> Iterator[StatsProcess]:
    """A started :class:`StatsProcess`, stopped at once if the block fails or is interrupted."""
    worker = StatsProcess()
    worker.start()
    try:
        yield worker
    except BaseException:
        worker.close(stop=True)
        raise
    worker.close()


def _worker_init() -> None:
    """Ctrl-C is the command's to handle; SIGTERM (sent by :meth:`StatsProcess.close`) ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _import_stats() -> None:
    import scipy.stats  # noqa: F401
