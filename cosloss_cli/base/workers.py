"""Worker processes of a local batch, each fed through its own pipe.

Why not ``concurrent.futures.ProcessPoolExecutor``: its call queue, feeder thread and
manager thread take the parent's CPU from the workers (with the executor, ``batch``'s
rows cost 6 % more CPU and wall time: bench/RESULTS.md, round 10). Here each worker
has one duplex pipe: the parent sends it a task (pickled), the worker sends back the
results, and the parent waits on every pipe at once. Nothing runs in the parent between messages.

A worker that dies (killed, out of memory) closes its pipe: the parent reads EOF, learns
which tasks it had, and starts another worker in its place.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

#: Seconds a worker has to stop its pair after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 3.0

#: Seconds an idle worker has to exit once its pipe is closed (it exits at once: this is a safety net).
IDLE_EXIT_SECONDS = 30.0

#: Largest pickled task sent to a worker that still has one queued: a pipe holds at least
#: 64 KB, so a send of this size never blocks while the worker is busy sending results.
QUEUED_TASK_BYTES = 32 * 1024


#: The parent's ends of the workers' pipes. A forked worker inherits them (its own pipe's
#: too) and closes them first: else a worker would not see EOF when the parent closes its pipe.
_parent_ends: list[Connection] = []


class WorkerDied(Exception):
    """The worker process ended without sending back the results of its tasks."""


class Worker:
    """One worker process and the tasks sent to it whose results have not come back."""

    def __init__(self, run: Callable[..., Any], initializer: Callable[[], None]):
        import multiprocessing

        parent_end, worker_end = multiprocessing.Pipe(duplex=True)
        self.process: BaseProcess = multiprocessing.get_context().Process(
            target=_serve, args=(worker_end, run, initializer), daemon=True
        )
        _parent_ends.append(parent_end)  # before the fork: the worker closes its copy of its own too
        try:
            self.process.start()
        except BaseException:
            _parent_ends.remove(parent_end)
            parent_end.close()
            raise
        finally:
            worker_end.close()
        self.connection: Connection = parent_end
        self.pending: deque[Any] = deque()  # what each task was, oldest first

    def can_take(self, payload: bytes) -> bool:
        """Whether a task of this size can be sent now without any risk of blocking."""
        return not self.pending or (len(self.pending) == 1 and len(payload) <= QUEUED_TASK_BYTES)

    def send(self, payload: bytes, what: Any) -> None:
        self.connection.send_bytes(payload)
        self.pending.append(what)

    def receive(self) -> tuple[Any, Any]:
        """(what the oldest task was, its results); :class:`WorkerDied` when the pipe is closed."""
        try:
            data = self.connection.recv_bytes()
        except (EOFError, OSError):
            raise WorkerDied() from None
        return self.pending.popleft(), pickle.loads(data)

    def stop(self, *, now: bool = False) -> None:
        """Close the pipe (an idle worker then exits) and wait for the process.

        ``now``: SIGTERM first (a busy worker stops its pair and removes a file it was
        writing), and SIGKILL after :data:`STOP_GRACE_SECONDS` if it has not exited: the
        signal reaches one thread of the process, and when that is not the main thread, a
        main thread blocked in a system call (opening a FIFO, a stalled network file)
        never sees it.
        """
        if now and self.process.pid is not None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except OSError:
                pass
        self.connection.close()
        if self.connection in _parent_ends:
            _parent_ends.remove(self.connection)
        self.process.join(timeout=STOP_GRACE_SECONDS if now else IDLE_EXIT_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def usable_cpus() -> int:
    """The number of CPUs this process may use (its affinity): the default number of workers."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def task_payload(*args: Any) -> bytes:
    """A task as it travels to a worker."""
    return pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)


def _serve(connection: Connection, run: Callable[..., Any], initializer: Callable[[], None]) -> None:
    """A worker's loop: run each task received, send back what ``run`` returns, until EOF."""
    for inherited in _parent_ends:  # the other workers' pipes, open in the parent when this one forked
        inherited.close()
    _parent_ends.clear()
    initializer()
    while True:
        try:
            args = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            results = pickle.dumps(run(*args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # run() turns each pair's failure into a result: this is a bug or no memory
            os._exit(70)  # the parent reports the task's pairs as failed, without a traceback here
        try:
            connection.send_bytes(results)
        except OSError:  # the parent has stopped reading (interrupted): nothing left to do
            return
