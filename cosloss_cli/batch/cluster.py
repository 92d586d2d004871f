"""Running the pairs of a batch on a Dask cluster (``--scheduler`` / ``--scheduler-file``).

The :class:`DaskExecutor` implements the :class:`~cosloss_cli.batch.runner.Executor`
interface on ``dask.distributed``: the client sends each task the pairs' *paths* and the
options (a few hundred bytes), the workers read the inputs themselves (a shared
filesystem or object storage) and write ``--output-dir`` files themselves, and what
comes back is each pair's :class:`~cosloss_cli.batch.pair.PairResult`: its summary and
the exact sum its pooled mean is merged from. Nothing else is gathered, so the client
never holds the data.

A worker that dies mid-task loses nothing: the scheduler runs its tasks again on another
worker (a task is pure: same inputs, same result, and output files are replaced whole),
and ``retries`` covers an exception outside the pair's own error handling. A pair that
fails for a data reason is an ``error`` *result*, not an exception: it fails once.

dask is imported only when an executor is created, i.e. only with these options.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import UsageError
from .pair import PairResult, PairTask, run_pairs
from .pairing import Pair
from .runner import pairs_per_task

#: Times a task is retried after an exception (a lost worker is rescheduled by Dask anyway).
RETRIES = 3

#: Most pairs in one cluster task: a task costs the scheduler and the network a few
#: milliseconds, more than a local process pool's round trip, so tasks are larger.
MAX_PAIRS_PER_TASK = 64

#: How long to wait for the scheduler to answer before giving up.
CONNECT_TIMEOUT = "10s"


def require_distributed() -> None:
    """A usage error naming the extra to install when ``dask.distributed`` is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(
            "--scheduler and --scheduler-file need dask.distributed, which is not installed",
            hint="pip install 'cosloss[distributed]'",
        ) from None


def _absolute_path(path: str) -> str:
    """Local paths made absolute: the workers run in other folders (or on other machines)."""
    return path if "://" in path else os.path.abspath(path)


class _Paths:
    """What the workers are sent (absolute paths), and results given back the user's paths,
    so that the report, error messages included, is the one a local run prints."""

    def __init__(self, task: PairTask):
        self.output_dir = task.output_dir
        self.absolute_dir = _absolute_path(task.output_dir) if task.output_dir is not None else None
        self.task = task._replace(output_dir=self.absolute_dir)
        self.originals: dict[str, Pair] = {}

    def for_workers(self, pair: Pair) -> Pair:
        self.originals[pair.name] = pair
        return pair._replace(labels=_absolute_path(pair.labels), predictions=_absolute_path(pair.predictions))

    def restore(self, result: PairResult) -> PairResult:
        original = self.originals.pop(result.name)
        swaps = [(result.pair.labels, original.labels), (result.pair.predictions, original.predictions)]
        if self.absolute_dir is not None and self.output_dir is not None:
            swaps.append((self.absolute_dir, self.output_dir))
        error, output = _swapped(result.error, swaps), _swapped(result.output, swaps)
        return result._replace(pair=original, error=error, output=output)


def _swapped(text: str | None, swaps: list[tuple[str, str]]) -> str | None:
    if text is None:
        return None
    for old, new in swaps:
        if old != new:
            text = text.replace(old, new)
    return text


class DaskExecutor:
    """Pairs as tasks of a Dask cluster, a bounded number in flight, results as they finish."""

    def __init__(self, address: str | None = None, scheduler_file: str | None = None, total_pairs: int = 0):
        require_distributed()
        self.address = address
        self.scheduler_file = scheduler_file
        self.total_pairs = total_pairs
        self._client: Any = None
        self._in_flight: dict[Any, list[Pair]] = {}
        self._stop_event: str | None = None

    def connect(self) -> None:
        """Reach the scheduler now, so a wrong address is an error before any work starts."""
        if self._client is not None:
            return
        import logging

        from distributed import Client

        logging.getLogger("distributed").setLevel(logging.ERROR)  # its warnings are not ours to print
        where = self.address or self.scheduler_file or ""
        if self.scheduler_file and not os.path.isfile(self.scheduler_file):  # Dask would wait for it to appear
            raise UsageError("no such scheduler file", path=where, hint="check --scheduler-file")
        try:
            if self.scheduler_file:
                self._client = Client(scheduler_file=self.scheduler_file, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
            else:
                self._client = Client(self.address, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
        except FileNotFoundError:
            raise UsageError("no such scheduler file", path=where, hint="check --scheduler-file") from None
        except (OSError, TimeoutError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"cannot reach the Dask scheduler: {detail}",
                path=where,
                hint="is the scheduler running, and is the address tcp://HOST:PORT?",
            ) from None

    def threads(self) -> int:
        """Worker threads of the cluster right now (at least one: workers may join later)."""
        self.connect()
        return max(1, int(sum(self._client.nthreads().values())))

    def submit(self, task: PairTask, pairs: Iterable[Pair]) -> Iterator[PairResult]:
        from distributed import as_completed

        self.connect()
        client = self._client
        threads = self.threads()
        size = pairs_per_task(self.total_pairs, threads, MAX_PAIRS_PER_TASK)
        window = max(8, 4 * threads)  # tasks in flight: every thread busy, a few queued each
        paths = _Paths(task)
        task = paths.task
        waiting = (paths.for_workers(pair) for pair in pairs)
        finished: Any = as_completed()  # type: ignore[no-untyped-call]
        run_id = uuid.uuid4().hex[:12]
        numbers = itertools.count()
        self._stop_event = f"cosloss-stop-{run_id}"
        task = task._replace(stop_event=self._stop_event)

        pulled = 0

        def fill() -> bool:
            """Submit tasks up to the window; False once the caller stopped giving pairs early."""
            nonlocal pulled
            while len(self._in_flight) < window:
                chunk = list(itertools.islice(waiting, size))
                if not chunk:
                    return pulled >= self.total_pairs
                pulled += len(chunk)
                future = client.submit(
                    run_pairs, task, chunk, key=f"cosloss-pairs-{run_id}-{next(numbers)}", retries=RETRIES, pure=False
                )
                self._in_flight[future] = chunk
                finished.add(future)
            return True

        try:
            fill()
            for future in finished:
                chunk = self._in_flight.pop(future)
                for result in self._results(future, chunk):
                    yield paths.restore(result)
                if not fill():  # --fail-fast: what has not finished yet is cancelled, not waited for
                    for result in self._drop_unfinished():
                        yield paths.restore(result)
                    finished.clear()
                    break
        except BaseException:  # Ctrl-C or SIGTERM arrives here, waiting: stop the tasks before closing
            self.cancel()
            raise
        finally:
            self._close()

    def _drop_unfinished(self) -> list[PairResult]:
        """Cancel the tasks in flight that have not finished; the results of those that have."""
        done = [future for future in self._in_flight if future.status == "finished"]
        results = [result for future in done for result in self._results(future, self._in_flight[future])]
        unfinished = [future for future in self._in_flight if future not in done]
        if unfinished:
            self._stop_tasks()
            self._client.cancel(unfinished, force=True)
        self._in_flight.clear()
        return results

    @staticmethod
    def _results(future: Any, chunk: list[Pair]) -> list[PairResult]:
        """The task's results; a task that could not run at all fails its pairs with the reason."""
        try:
            results: list[PairResult] = future.result()
        except Exception as exc:  # KilledWorker (workers kept dying), a cancelled task...
            reason = f"the cluster could not run it: {type(exc).__name__}: {exc}".splitlines()[0]
            return [PairResult(pair, "error", error=reason) for pair in chunk]
        return results

    def cancel(self) -> None:
        """Cancel the submitted tasks on the cluster (busy ones too) and disconnect."""
        if self._client is None:
            return
        try:
            if self._in_flight:
                self._stop_tasks()
                self._client.cancel(list(self._in_flight), force=True)
        except Exception:  # the connection may be gone already: nothing left to cancel then
            pass
        self._in_flight.clear()
        self._close()

    def _stop_tasks(self) -> None:
        """Tell the tasks still running (a cancel cannot stop them) to write nothing more."""
        if self._stop_event is not None:
            from distributed import Event

            Event(self._stop_event, client=self._client).set()  # type: ignore[no-untyped-call]

    def _close(self) -> None:
        if self._client is not None:
            try:
                self._client.close(timeout=5)
            except Exception:
                pass
            self._client = None
