"""``compare``'s paired tests in a process of their own, which imports scipy.stats from the start.

``import scipy.stats`` takes 0.6-1.0 s on a 2-core VM: as long as reading and summing
two models of a million rows, and ``compare`` needs scipy only for the paired tests,
once every loss is known. So the command starts one worker process first (a
:class:`~cosloss_cli.base.workers.Worker`, as ``batch``'s); it imports scipy.stats
while this process reads the inputs, then runs the tests on the losses it is sent
(:func:`cosloss_cli.stats.intervals.paired_comparison`, the same function as in this process, so
the figures are the same to the bit). If the worker dies, the tests run here.

The worker leaves Ctrl-C to this process, which stops it (SIGTERM) on any error or
interrupt, so it never outlives the command.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..base.workers import Worker

T = TypeVar("T")


class StatsProcess:
    """One worker process that has imported scipy.stats (or is importing it): :meth:`submit` work to it."""

    def __init__(self) -> None:
        self._worker: Worker | None = None
        self._sends: queue.SimpleQueue[Callable[[], None] | None] | None = None

    def start(self) -> None:
        """Start the worker and its import (before any thread of this process: it is forked)."""
        from ..base.workers import Worker, task_payload

        self._worker = Worker(_call, _worker_init)
        self._worker.send(task_payload(_import_stats), _import_stats)

    def submit(self, work: Callable[..., T], *args: Any) -> Callable[[], T]:
        """Begin ``work(*args)`` in the worker; call the result for its value (here if the worker died).

        Several submissions may be under way: they are sent in order by one thread, and
        their results must be taken in the same order (the worker answers in order).
        """
        from ..base.workers import WorkerDied, task_payload

        worker = self._worker
        if worker is None:
            return lambda: work(*args)
        payload = task_payload(work, *args)
        gone: list[OSError] = []
        sent = threading.Event()

        def send() -> None:  # on the sender thread: a large payload waits for the worker's import
            try:
                worker.send(payload, work)
            except OSError as exc:  # the worker is gone
                gone.append(exc)
            finally:
                sent.set()

        self._sender().put(send)

        def result() -> T:
            sent.wait()
            if gone:
                return work(*args)
            try:
                while True:  # the answers come in order: the import's first
                    what, value = worker.receive()
                    if what is work:
                        return value  # type: ignore[no-any-return]
            except WorkerDied:  # killed (out of memory?): the same work here
                return work(*args)

        return result

    def _sender(self) -> queue.SimpleQueue[Callable[[], None] | None]:
        """The queue of the one thread that sends the submissions, in order (started at the first)."""
        if self._sends is None:
            sends: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()

            def serve() -> None:
                while (send := sends.get()) is not None:
                    send()

            threading.Thread(target=serve, name="cosloss-stats-send", daemon=True).start()
            self._sends = sends
        return self._sends

    def close(self, *, stop: bool = False) -> None:
        """Let the worker exit (``stop``: at once, with SIGTERM, whatever it is doing)."""
        if self._sends is not None:
            self._sends.put(None)
            self._sends = None
        if self._worker is not None:
            self._worker.stop(now=stop)
            self._worker = None


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


def _call(work: Callable[..., Any], *args: Any) -> Any:
    """What the worker runs for each task: the function it was sent, on the arguments."""
    return work(*args)


def _worker_init() -> None:
    """Ctrl-C is the command's to handle; SIGTERM (sent by :meth:`StatsProcess.close`) ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _import_stats() -> None:
    import scipy.stats  # noqa: F401
