"""Running the pairs of a batch: a small executor interface, and the local executors.

An :class:`Executor` takes the task and an iterable of pairs, pulls pairs from it only
when it has room (so memory is bounded by the pairs in flight, and a stop decided by
the caller takes effect at the next pull), yields each pair's result as it finishes,
and can be cancelled. :class:`InProcess` runs one pair at a time here; :class:`LocalPool`
runs them on worker processes. A cluster runner (Dask) implements the same two methods.

Interrupts: workers ignore SIGINT, so Ctrl-C reaches only the parent, which cancels
what has not started and sends SIGTERM to the workers; a worker that is busy stops its
pair (an output file being written is removed, never left partial) and exits.
"""

from __future__ import annotations

import gc
import itertools
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..base.workers import Worker, WorkerDied, task_payload, usable_cpus
from ..io.formats import natural_key
from .merge import in_name_order
from .pair import PairResult, PairTask, run_pair, run_pairs
from .pairing import Pair

if TYPE_CHECKING:
    from ..stats.pooled import PooledLosses
    from .groups import PooledGroups
    from .split import SplitRows


class Executor(Protocol):
    """Where the pairs of a batch run."""

    def submit(self, task: PairTask, pairs: Iterable[Pair]) -> Iterator[PairResult]:
        """Run ``task`` on each pair, pulled lazily; yield the results in completion order."""
        ...

    def cancel(self) -> None:
        """Drop the pairs not started, stop the busy ones, and wait until nothing runs."""
        ...


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    return usable_cpus()


def local_executor(jobs: int, total_pairs: int = 0) -> Executor:
    """The executor for ``--jobs N`` on this machine: in this process for one job."""
    return InProcess() if jobs <= 1 else LocalPool(jobs, total_pairs=total_pairs)


#: Most pairs in one task of :func:`pairs_per_task` (the local pool's and the Dask runner's sizing).
MAX_PAIRS_PER_TASK = 16


def pairs_per_task(pairs: int, workers: int, most: int = MAX_PAIRS_PER_TASK) -> int:
    """Pairs per task: about eight tasks per worker, at most ``most``.

    The grouping changes only how the pairs travel, never a result (each pair is
    computed alone, and the report is merged in name order).

    >>> pairs_per_task(2000, 2), pairs_per_task(20, 2), pairs_per_task(1, 8)
    (16, 1, 1)
    """
    return max(1, min(most, pairs // max(1, workers * 8)))


class BatchRunner:
    """Runs pairs on an executor, records the results, and applies ``fail_fast``.

    ``on_result`` is called in this process for every finished pair, in completion
    order (the NDJSON stream and the progress bar). The kept losses a pair sends back
    (or where its worker wrote them) go to ``pooled`` (the exact pooled percentiles) and
    are not kept in its result, nor are its unmatched ids (``--join-on``), which go to
    ``split``; nor are its groups (``--group-by``), which go to ``groups``. ``done`` and ``total`` can be read
    after an interrupt to say how far the batch got. KeyboardInterrupt and any other
    exception cancel the executor before being re-raised.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        task: PairTask,
        executor: Executor,
        *,
        fail_fast: bool = False,
        on_result: Callable[[PairResult], None] | None = None,
        pooled: PooledLosses | None = None,
        split: SplitRows | None = None,
        groups: PooledGroups | None = None,
    ):
        self.pairs = list(pairs)
        self.split = split
        self.task = task
        self.executor = executor
        self.fail_fast = fail_fast
        self.on_result = on_result
        self.pooled = pooled
        self.groups = groups
        self.results: list[PairResult] = []
        self.stopped_early = False

    @property
    def total(self) -> int:
        return len(self.pairs)

    @property
    def done(self) -> int:
        return len(self.results)

    def run(self) -> list[PairResult]:
        """Run every pair (or until the first failure with ``fail_fast``); results in name order."""
        try:
            for result in self.executor.submit(self.task, self._to_start()):
                if result.kept is not None:  # pooled now, not kept: memory stays bounded
                    if self.pooled is not None:
                        self.pooled.add(result.kept, owned=True)  # dropped from the result just below
                    result = result._replace(kept=None)
                if result.unmatched_keys is not None:  # kept for the check across pairs, not in the result
                    if self.split is not None:
                        self.split.add(result.name, result.unmatched_keys)
                    result = result._replace(unmatched_keys=None)
                if result.groups is not None:  # pooled now, not kept: memory stays bounded
                    if self.groups is not None:
                        g = result.groups
                        self.groups.add(result.name, g.names, g.keys, g.codes, g.losses)
                    result = result._replace(groups=None)
                if result.span is not None:
                    if self.pooled is not None:
                        self.pooled.add_span(result.span)
                    result = result._replace(span=None)
                self.results.append(result)
                if self.on_result is not None:
                    self.on_result(result)
        except BaseException:
            self.executor.cancel()
            raise
        return in_name_order(self.results)

    def _to_start(self) -> Iterator[Pair]:
        """The pairs, until ``fail_fast`` sees a failure (checked at each pull)."""
        for pair in self.pairs:
            if self.fail_fast and any(not result.ok for result in self.results):
                self.stopped_early = True
                return
            yield pair


class InProcess:
    """One pair at a time, in this process (``--jobs 1``): nothing to cancel."""

    def submit(self, task: PairTask, pairs: Iterable[Pair]) -> Iterator[PairResult]:
        for pair in pairs:
            yield run_pair(task, pair)

    def cancel(self) -> None:
        pass


class LocalPool:
    """Up to ``jobs`` worker processes of this machine (:mod:`.workers`), fed tasks as they finish.

    A task is several pairs computed one after the other, as many as
    :func:`pairs_per_task` says for ``total_pairs`` (one at a time when the total is
    not known): many small pairs then cost one round trip per task
    instead of one per pair. Each worker has a second task queued while it runs one,
    so it never waits for the parent. Grouping never changes a result.
    """

    def __init__(self, jobs: int, total_pairs: int = 0):
        self.jobs = jobs
        self.total_pairs = total_pairs
        self._workers: list[Worker] = []

    def submit(self, task: PairTask, pairs: Iterable[Pair]) -> Iterator[PairResult]:
        from multiprocessing.connection import wait

        from ..pipeline import compute as pipeline  # noqa: F401  (loaded before the fork: workers start warm)

        feed = _Feed(task, pairs, self.total_pairs, self.jobs)
        gc.freeze()  # the objects made so far are never collected: no scans of them, no copies in the forks
        self._workers = [_new_worker() for _ in range(self.jobs)]
        try:
            while True:
                for depth in (1, 2):  # a task to every idle worker first, then one queued behind each
                    for worker in self._workers:
                        while len(worker.pending) < depth and (item := feed.next()) and worker.can_take(item[1]):
                            worker.send(item[1], item[0])
                            feed.taken()
                busy = {worker.connection: worker for worker in self._workers if worker.pending}
                if not busy:
                    break
                ready = [busy[connection] for connection in wait(list(busy))]  # type: ignore[index]
                for worker in sorted(ready, key=lambda w: natural_key(w.pending[0][0].name)):
                    try:
                        _, results = worker.receive()
                    except WorkerDied:
                        yield from self._replace(worker, feed)
                        continue
                    if results is not None:  # None: the worker was asked to stop, not ours to report
                        yield from results
        except BaseException:  # an interrupt, an error, or the caller closing this generator
            self.cancel()
            raise
        workers, self._workers = self._workers, []
        for worker in workers:  # idle now: they exit when their pipes close
            worker.stop()

    def _replace(self, worker: Worker, feed: _Feed) -> Iterator[PairResult]:
        """A dead worker's running task, failed; the tasks queued behind it, sent again; a new worker."""
        error = "the worker process died (out of memory? try fewer --jobs)"
        running, *queued = worker.pending
        worker.pending.clear()
        worker.stop()
        self._workers[self._workers.index(worker)] = _new_worker()
        feed.again.extend(queued)  # never started: a worker takes tasks one after the other
        yield from (PairResult(pair, "error", error=error) for pair in running)

    def cancel(self) -> None:
        """Stop every worker now (SIGTERM: a busy one stops its pair) and wait until they have exited."""
        previous = _ignore_interrupts()
        try:
            workers, self._workers = self._workers, []
            for worker in workers:
                worker.stop(now=True)
        finally:
            _restore(previous)


class _Feed:
    """The tasks of a batch in the order they are sent: first any to send again, then the
    pairs not yet sent, in chunks of :func:`pairs_per_task` pairs."""

    def __init__(self, task: PairTask, pairs: Iterable[Pair], total: int, jobs: int):
        self.task = task
        self.waiting = iter(pairs)
        self.total = total
        self.jobs = jobs
        self.pulled = 0
        self.again: deque[list[Pair]] = deque()
        self._next: tuple[list[Pair], bytes] | None = None

    def next(self) -> tuple[list[Pair], bytes] | None:
        """The next task (its pairs and its payload), the same until :meth:`taken`; None: no more."""
        if self._next is None:
            if self.again:
                chunk = self.again.popleft()
            else:
                chunk = list(itertools.islice(self.waiting, pairs_per_task(self.total, self.jobs)))
                self.pulled += len(chunk)
            self._next = (chunk, task_payload(self.task, chunk)) if chunk else None
        return self._next

    def taken(self) -> None:
        self._next = None


def _new_worker() -> Worker:
    return Worker(_run_in_worker, _worker_init)


def _ignore_interrupts() -> dict[int, Any]:
    """Ignore a second Ctrl-C/SIGTERM while cleaning up after the first (main thread only)."""
    previous: dict[int, Any] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        try:
            signal.signal(signum, handler)
        except (ValueError, TypeError):
            pass


class _WorkerStop(BaseException):
    """Raised in a busy worker by SIGTERM: unwinds the pair (removing temporary files)."""


class _WorkerState:
    """What a worker process knows about itself: whether it runs a pair, whether it must stop."""

    busy = False
    stopping = False


def _worker_init() -> None:
    """Workers leave Ctrl-C to the parent; SIGTERM stops the current pair cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)


def _worker_sigterm(signum: int, frame: Any) -> None:
    _WorkerState.stopping = True
    if _WorkerState.busy:
        raise _WorkerStop()


def _run_in_worker(task: PairTask, pairs: list[Pair]) -> list[PairResult] | None:
    """``run_pairs`` in a worker; None when the parent asked the worker to stop."""
    if _WorkerState.stopping:
        return None
    try:
        _WorkerState.busy = True
        return run_pairs(task, pairs)
    except _WorkerStop:
        return None
    finally:
        _WorkerState.busy = False
