"""Many pairs of files at once: pair discovery, manifests and the parallel runner.

No click and no terminal here: the ``batch`` command (:mod:`cosloss_cli.cli.batch`)
turns what this module returns into output. Each pair goes through the same
:func:`~cosloss_cli.pipeline.compute_files` as ``compute``; a pair that fails is
recorded with its message and the others still run.

Parallelism: pairs run in worker processes, at most ``jobs`` at a time, so memory is
bounded by ``jobs`` pairs in flight whatever the number of pairs. Workers send back
summaries (and losses only when they are asked for); every number of the report is
computed from per-pair results combined in name order, so results are identical for
any number of jobs.

Interrupts: workers ignore SIGINT, so Ctrl-C reaches only the parent, which cancels
what has not started and sends SIGTERM to the workers; a worker that is busy stops its
pair (an output file being written is removed, never left partial) and exits.
"""

from __future__ import annotations

import csv
import fnmatch
import math
import os
import posixpath
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .errors import CoslossError, DataError, InputUsageError, OutputError
from .readers.formats import format_extension, strip_format_extension

if TYPE_CHECKING:  # numpy, pyarrow, the pipeline and the process pool load when a batch runs
    from concurrent.futures import Future, ProcessPoolExecutor

    import numpy as np

    from .core import Summary
    from .pipeline import ComputeOptions
    from .readers import ReadOptions

from .output import OUTPUT_DIR_FORMATS

#: Unmatched files listed one by one in warnings before "... and N more".
MAX_LISTED = 10


# --------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class Pair:
    """A labels file and a predictions file to compare; ``name`` identifies it in reports."""

    name: str
    labels: str
    predictions: str


@dataclass
class Discovery:
    """What pairing found: the pairs (sorted by name) and the files left without a partner."""

    pairs: list[Pair]
    unmatched_labels: list[str] = field(default_factory=list)
    unmatched_predictions: list[str] = field(default_factory=list)
    #: Subfolders left out because ``recursive`` was off (for a hint to pass -r).
    skipped_folders: list[str] = field(default_factory=list)

    @property
    def unmatched(self) -> int:
        return len(self.unmatched_labels) + len(self.unmatched_predictions)


def discover_pairs(
    labels_dir: str,
    predictions_dir: str,
    *,
    recursive: bool = False,
    patterns: Sequence[str] = (),
    labels_format: str | None = None,
    predictions_format: str | None = None,
    exclude: Sequence[str] = (),
) -> Discovery:
    """Pair files of two folders by their relative path without the format extension.

    ``labels/run1/a.npy`` pairs with ``predictions/run1/a.parquet`` as ``run1/a``. Hidden
    files and folders are skipped, symlinked folders are not followed, and only files
    with a known data extension count (any file when a format is forced for that side).
    ``patterns`` (globs) keep the files whose name or relative path matches one of them.
    Folders in ``exclude`` (e.g. the output folder) are not searched.
    """
    for folder in (labels_dir, predictions_dir):
        if not os.path.isdir(folder):
            reason = "no such folder" if not os.path.exists(folder) else "is not a folder"
            raise InputUsageError(reason, path=folder, hint="give two folders, or --manifest FILE.csv")
    skip = {os.path.realpath(path) for path in exclude}
    skipped: list[str] = []
    labels = _keyed(labels_dir, recursive, patterns, labels_format, skip, skipped)
    predictions = _keyed(predictions_dir, recursive, patterns, predictions_format, skip, skipped)
    pairs = [Pair(name, labels[name], predictions[name]) for name in sorted(labels.keys() & predictions.keys())]
    return Discovery(
        pairs=pairs,
        unmatched_labels=[labels[name] for name in sorted(labels.keys() - predictions.keys())],
        unmatched_predictions=[predictions[name] for name in sorted(predictions.keys() - labels.keys())],
        skipped_folders=skipped,
    )


def _keyed(
    folder: str,
    recursive: bool,
    patterns: Sequence[str],
    forced_format: str | None,
    skip: set[str],
    skipped: list[str],
) -> dict[str, str]:
    """Pair name -> path of the eligible files of one folder; two files with one name is an error."""
    keyed: dict[str, str] = {}
    for rel, path in _scan(folder, recursive, skip, skipped):
        if patterns and not any(
            fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(posixpath.basename(rel), p) for p in patterns
        ):
            continue
        if format_extension(rel) is not None:
            name = strip_format_extension(rel)
        elif forced_format:
            name = posixpath.splitext(rel)[0] or rel
        else:
            continue
        if name in keyed:
            raise DataError(
                f"{keyed[name]} and {path} would both be pair {name!r}",
                hint="keep one format per name, or choose files with --pattern",
            )
        keyed[name] = path
    return keyed


def _scan(root: str, recursive: bool, skip: set[str], skipped: list[str]) -> list[tuple[str, str]]:
    """(relative posix path, path) of the regular files under ``root``, in sorted order.

    Subfolders not searched because ``recursive`` is off are appended to ``skipped``.
    """
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, str]] = [("", root)]
    while stack:
        rel_dir, folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            raise DataError(f"cannot list the folder: {exc.strerror}", path=folder) from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive and os.path.realpath(entry.path) not in skip:
                        stack.append((rel, entry.path))
                    elif not recursive and os.path.realpath(entry.path) not in skip:
                        skipped.append(entry.path)
                elif entry.is_file():  # a symlink to a folder is neither: not followed
                    found.append((rel, entry.path))
            except OSError:
                continue
    return sorted(found)


def read_manifest(path: str) -> list[Pair]:
    """Pairs listed in a CSV file with columns ``labels``, ``predictions`` and optional ``name``.

    Paths are relative to the manifest's folder. A pair's name defaults to its labels
    path without the format extension. Names must be unique relative paths.
    """
    folder = os.path.dirname(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise InputUsageError("no such file", path=path, hint="check the --manifest path") from None
    except IsADirectoryError:
        raise InputUsageError("is a folder, not a CSV file", path=path) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read the manifest: {exc}", path=path) from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "labels" not in header or "predictions" not in header:
        raise DataError(
            f"the manifest needs a header with columns labels,predictions (found: {','.join(header) or 'nothing'})",
            path=path,
            hint="first line: labels,predictions[,name]",
        )
    where = {column: header.index(column) for column in ("labels", "predictions", "name") if column in header}
    pairs: list[Pair] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = {column: row[i].strip() if i < len(row) else "" for column, i in where.items()}
        if not cells["labels"] or not cells["predictions"]:
            raise DataError(f"line {line}: empty labels or predictions path", path=path)
        name = cells.get("name") or _default_name(cells["labels"])
        if not is_safe_name(name):
            raise DataError(
                f"line {line}: name {name!r} must be a relative path inside the output folder (no '..')",
                path=path,
            )
        name = posixpath.normpath(name)
        if name in seen:
            raise DataError(f"line {line}: name {name!r} is already used on line {seen[name]}", path=path)
        seen[name] = line
        pairs.append(Pair(name, os.path.join(folder, cells["labels"]), os.path.join(folder, cells["predictions"])))
    return sorted(pairs, key=lambda pair: pair.name)


def _default_name(labels: str) -> str:
    name = strip_format_extension(labels.replace(os.sep, "/"))
    if is_safe_name(name):
        return posixpath.normpath(name)
    return strip_format_extension(posixpath.basename(name)) or "pair"


def is_safe_name(name: str) -> bool:
    """A pair name usable as a relative path under the output folder."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\0" in name:
        return False
    parts = posixpath.normpath(name).split("/")
    return all(part not in ("", ".", "..") for part in parts)


def output_path(output_dir: str, name: str, extension: str) -> str:
    """``DIR/<name>.<ext>``; an error if that would resolve outside ``DIR``."""
    if not is_safe_name(name):
        raise OutputError(f"pair name {name!r} is not a safe relative path", path=output_dir)
    target = os.path.join(output_dir, *name.split("/")) + "." + extension
    _check_inside(output_dir, target)
    return target


def _check_inside(output_dir: str, target: str) -> None:
    root = os.path.realpath(output_dir)
    real = os.path.realpath(target)
    if os.path.commonpath([root, real]) != root:
        raise OutputError(f"would be written outside {output_dir} (through a symlink?)", path=target)


# --------------------------------------------------------------------------- one pair


class PairTask(NamedTuple):
    """What every pair is computed with (picklable, sent to the workers)."""

    label_options: ReadOptions
    prediction_options: ReadOptions
    compute: ComputeOptions
    keep_losses: bool = False
    output_dir: str | None = None
    output_format: str = "csv"


@dataclass
class PairResult:
    """The outcome of one pair: ``ok`` with its summary, or ``error`` with a message.

    ``total`` is the correctly rounded sum of the pair's losses that count, so pooled
    means can be formed exactly from ``count`` and ``total``. ``losses`` (and
    ``omitted``, ``ids``) are kept only when the task asks for them.
    """

    pair: Pair
    status: Literal["ok", "error"]
    error: str | None = None
    summary: Summary | None = None
    total: float = 0.0
    rows: int = 0
    output: str | None = None
    losses: np.ndarray | None = None
    omitted: np.ndarray | None = None
    ids: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.pair.name

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run_pair(task: PairTask, pair: Pair) -> PairResult:
    """Compute one pair (and write its losses file); failures become an ``error`` result."""
    try:
        from .pipeline import compute_files

        result = compute_files(
            pair.labels, pair.predictions, task.label_options, task.compute, None, task.prediction_options
        )
        output = None
        if task.output_dir is not None:
            output = output_path(task.output_dir, pair.name, task.output_format)
            _write_output(task.output_dir, output, result, OUTPUT_DIR_FORMATS[task.output_format])
    except CoslossError as exc:
        return PairResult(pair, "error", error=str(exc))
    except MemoryError:
        return PairResult(pair, "error", error="out of memory (use fewer --jobs)")
    except Exception as exc:  # a bug or an unexpected library error: keep the batch going
        return PairResult(pair, "error", error=f"internal error: {type(exc).__name__}: {exc}")
    kept = result.kept()
    return PairResult(
        pair,
        "ok",
        summary=result.summary,
        total=math.fsum(kept.tolist()) if kept.size else 0.0,
        rows=int(result.shape[0]) if result.shape else 1,
        output=output,
        losses=result.losses if task.keep_losses else None,
        omitted=result.omitted if task.keep_losses else None,
        ids=result.ids if task.keep_losses else None,
    )


def _write_output(output_dir: str, target: str, result: Any, fmt: str) -> None:
    from .writers import write_losses_file

    folder = os.path.dirname(target)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder: {exc.strerror or exc}", path=folder) from None
    _check_inside(output_dir, target)  # again, now that the folders exist
    write_losses_file(target, result, fmt)


# --------------------------------------------------------------------------- overall


@dataclass(frozen=True)
class Overall:
    """Totals over a batch: the pooled mean is over every loss of every ok pair."""

    pairs: int
    ok: int
    failed: int
    skipped: int
    count: int
    mean: float
    mean_of_means: float
    zero_vectors: int
    omitted: int


def overall(results: Iterable[PairResult], total_pairs: int) -> Overall:
    """Pooled mean (sum of pair sums / total count) and mean of pair means, in name order."""
    done = sorted(results, key=lambda result: result.name)
    good = [result for result in done if result.ok and result.summary is not None]
    count = sum(result.summary.count for result in good if result.summary is not None)
    means = [result.summary.mean for result in good if result.summary is not None and result.summary.count]
    pooled = math.fsum(result.total for result in good) / count if count else math.nan
    return Overall(
        pairs=total_pairs,
        ok=len(good),
        failed=len(done) - len(good),
        skipped=total_pairs - len(done),
        count=count,
        mean=pooled,
        mean_of_means=math.fsum(means) / len(means) if means else math.nan,
        zero_vectors=sum(result.summary.zero_vectors for result in good if result.summary is not None),
        omitted=sum(result.summary.omitted for result in good if result.summary is not None),
    )


class Report(NamedTuple):
    """A finished batch, as the writers of :data:`~cosloss_cli.output.BATCH_WRITERS` take it."""

    results: list[PairResult]
    overall: Overall
    discovery: Discovery


# --------------------------------------------------------------------------- runner


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class BatchRunner:
    """Runs pairs on up to ``jobs`` worker processes (in-process for one job).

    ``on_result`` is called in this process for every finished pair, in completion
    order (the NDJSON stream and the progress bar). ``done`` and ``total`` can be read
    after an interrupt to say how far the batch got. KeyboardInterrupt and any other
    exception stop the workers before being re-raised.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        task: PairTask,
        jobs: int,
        *,
        fail_fast: bool = False,
        on_result: Callable[[PairResult], None] | None = None,
    ):
        self.pairs = list(pairs)
        self.task = task
        self.jobs = max(1, min(jobs, len(self.pairs) or 1))
        self.fail_fast = fail_fast
        self.on_result = on_result
        self.results: list[PairResult] = []
        self.stopped_early = False

    @property
    def total(self) -> int:
        return len(self.pairs)

    @property
    def done(self) -> int:
        return len(self.results)

    def run(self) -> list[PairResult]:
        """Run every pair (or until the first failure with ``fail_fast``); results by name."""
        if self.jobs == 1:
            self._run_here()
        else:
            self._run_pool()
        return sorted(self.results, key=lambda result: result.name)

    def _record(self, result: PairResult) -> None:
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def _should_stop(self) -> bool:
        if self.fail_fast and any(not result.ok for result in self.results):
            self.stopped_early = self.done < self.total
            return True
        return False

    def _run_here(self) -> None:
        for pair in self.pairs:
            if self._should_stop():
                return
            self._record(run_pair(self.task, pair))

    def _run_pool(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        waiting = iter(self.pairs)
        pool = _new_pool(self.jobs)
        in_flight: dict[Future[PairResult | None], Pair] = {}
        try:
            exhausted = False
            while True:
                while not exhausted and len(in_flight) < self.jobs and not self._should_stop():
                    pair = next(waiting, None)
                    if pair is None:
                        exhausted = True
                        break
                    in_flight[pool.submit(_run_in_worker, self.task, pair)] = pair
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                broken = False
                for future in sorted(finished, key=lambda f: in_flight[f].name):
                    pair = in_flight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        result = PairResult(
                            pair, "error", error="the worker process died (out of memory? try fewer --jobs)"
                        )
                    if result is None:  # the worker was asked to stop: not ours to report
                        continue
                    self._record(result)
                if broken:
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = _new_pool(self.jobs)
        except BaseException:
            _stop_pool(pool, in_flight)
            raise
        pool.shutdown(wait=True)


def _new_pool(jobs: int) -> ProcessPoolExecutor:
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)


def _stop_pool(pool: ProcessPoolExecutor, in_flight: dict[Future[PairResult | None], Pair]) -> None:
    """Cancel what has not started, ask busy workers to stop, wait for them to exit."""
    previous = _ignore_interrupts()
    try:
        for future in in_flight:
            future.cancel()
        processes = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            try:
                if process.pid is not None:
                    os.kill(process.pid, signal.SIGTERM)
            except OSError:
                pass
        pool.shutdown(wait=True, cancel_futures=True)
    finally:
        _restore(previous)


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


# --------------------------------------------------------------------------- workers


class _WorkerStop(BaseException):
    """Raised in a busy worker by SIGTERM: unwinds the pair (removing temporary files)."""


_busy = False
_stopping = False


def _worker_init() -> None:
    """Workers leave Ctrl-C to the parent; SIGTERM stops the current pair cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)


def _worker_sigterm(signum: int, frame: Any) -> None:
    global _stopping
    _stopping = True
    if _busy:
        raise _WorkerStop()


def _run_in_worker(task: PairTask, pair: Pair) -> PairResult | None:
    """``run_pair`` in a worker; None when the parent asked the worker to stop."""
    global _busy
    if _stopping:
        return None
    try:
        _busy = True
        return run_pair(task, pair)
    except _WorkerStop:
        return None
    finally:
        _busy = False
