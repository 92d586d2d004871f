"""Work shared out among worker processes: ``concurrent.futures.ProcessPoolExecutor``, and what a
worker's death or an interrupt needs besides.

:func:`in_processes` keeps every worker busy with a second item queued behind the one it
runs, and yields each item's result as it finishes. A worker that dies (killed, out of
memory) breaks the executor, which fails every item in flight with it: those items run
again in a new executor, one at a time, so that the one whose worker dies alone is
known and reported through ``died``; the others get their results.

On an interrupt or an error in the caller, :func:`stop` sends SIGTERM to the workers (a
busy one stops its item and removes a file it was writing) and SIGKILL after
:data:`STOP_GRACE_SECONDS` to any still running.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

#: Seconds a worker has to stop its item after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 3.0

Item = TypeVar("Item")
Result = TypeVar("Result")


def usable_cpus() -> int:
    """The number of CPUs this process may use (its affinity): the default number of workers."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def in_processes(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    jobs: int,
    initializer: Callable[[], None],
    died: Callable[[Item], Result],
) -> Generator[tuple[Item, Result], None, None]:
    """``(item, work(item))`` for each item, computed by ``jobs`` worker processes, as each finishes.

    ``items`` is pulled only when a worker has room, so a caller's stop takes effect at
    the next pull. ``work`` and the items travel pickled; the workers are forked when
    first needed (loaded modules come with them). ``died(item)`` is the result of an
    item whose worker died while running it alone, or whose ``work`` raised. Closing the generator, or an
    exception in it (KeyboardInterrupt), stops every worker before it returns.
    """
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    waiting = iter(items)
    again: deque[Item] = deque()  # in flight when a worker died: run again one at a time
    running: dict[Future[Result], Item] = {}
    executor = _executor(jobs, initializer)
    try:
        while True:
            room = 1 if again else 2 * jobs
            while len(running) < room:
                if again:
                    item = again.popleft()
                else:
                    try:
                        item = next(waiting)
                    except StopIteration:
                        break
                running[executor.submit(work, item)] = item
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            if not any(isinstance(future.exception(), BrokenProcessPool) for future in done):
                for future in [future for future in running if future in done]:  # in the order sent
                    yield _outcome(running.pop(future), future, died)
                continue
            wait(list(running))  # a worker died: every item in flight has an outcome now
            broken = []
            for future, item in list(running.items()):
                if isinstance(future.exception(), BrokenProcessPool):
                    broken.append(item)
                else:
                    yield _outcome(item, future, died)
            alone = len(running) == 1
            running.clear()
            executor.shutdown(wait=True)
            executor = _executor(jobs, initializer)
            if alone:
                yield broken[0], died(broken[0])
            else:
                again.extend(broken)
    except BaseException:  # an interrupt, an error, or the caller closing this generator
        stop(executor)
        raise
    executor.shutdown(wait=True)


def _outcome(item: Item, future: Future[Result], died: Callable[[Item], Result]) -> tuple[Item, Result]:
    """The item's result; ``died(item)`` when ``work`` raised (a bug, or no memory): its worker failed it."""
    if future.exception() is not None:
        return item, died(item)
    return item, future.result()


def _executor(jobs: int, initializer: Callable[[], None]) -> ProcessPoolExecutor:
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(jobs, initializer=initializer)


def stop(executor: ProcessPoolExecutor) -> None:
    """Drop what has not started, SIGTERM the workers, SIGKILL those still running after the grace period.

    The signal reaches one thread of a worker, and when that is not the main thread, a
    main thread blocked in a system call (opening a FIFO, a stalled network file) never
    sees it: hence the kill. The workers are the executor's ``_processes``, the one
    private attribute used (Python 3.14's ``terminate_workers`` does the same).
    """
    workers = list((executor._processes or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive() and process.pid is not None:
            try:
                os.kill(process.pid, signal.SIGTERM)
            except OSError:
                pass
    for process in workers:
        process.join(timeout=STOP_GRACE_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
