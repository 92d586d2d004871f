"""Many runs in one command: the same models compared on each run of a tree (``compare --runs``).

An evaluation team keeps a tree of runs, one folder a day (or a checkpoint), each holding
the labels and one predictions file per model::

    runs/2026-12-01/labels.parquet  runs/2026-12-01/A.parquet  runs/2026-12-01/B.parquet
    runs/2026-12-02/labels.parquet  ...

Each run is compared exactly as ``cosloss compare LABELS A B`` compares it (this module
calls :func:`cosloss_cli.compare.models.compare_files`), and the results are collected, one
per run and candidate, with the trend of each candidate's mean difference over the runs.
The runs are spread over worker processes, one per CPU. A run that fails is reported with
its error, as ``batch`` reports a failed pair; the others still count.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from ..base.workers import Worker, WorkerDied, task_payload, usable_cpus
from ..errors import CoslossError, InputUsageError
from ..io import format_extension, strip_format_extension
from ..io.formats import natural_key
from ..render.result import SCHEMA_VERSION
from .models import CompareRequest, compare_files

#: The stem of the labels file in each run folder, unless told (``--labels-name``).
DEFAULT_LABELS_NAME = "labels"


class Run(NamedTuple):
    """One run folder: its name, its labels file, and its model files by model name."""

    name: str
    labels: str
    models: dict[str, str]


class RunResult(NamedTuple):
    """One run's comparison (the ``compare --json`` document without losses), or why it failed."""

    name: str
    document: dict[str, Any] | None
    error: str | None = None


def discover_runs(root: str, names: Sequence[str] | None = None, labels_name: str = DEFAULT_LABELS_NAME) -> list[Run]:
    """The runs under ``root``: its sub-folders (natural order), each with a labels file and model files.

    Model files are the data files whose name (without extension) is not ``labels_name``;
    ``names`` chooses the models and their order (the first is the baseline). Without it
    every run must hold the same models, taken in natural order. Folders and files whose
    names start with ``.`` or ``_`` are skipped, as a dataset skips them.
    """
    if not os.path.isdir(root):
        raise InputUsageError("--runs needs a folder of run folders", path=root)
    runs = []
    for entry in sorted(os.scandir(root), key=lambda item: natural_key(item.name)):
        if not entry.is_dir() or entry.name.startswith((".", "_")):
            continue
        runs.append(_run(entry.path, entry.name, labels_name))
    if not runs:
        raise InputUsageError("no run folders found", path=root, hint="put each run's files in a folder of its own")
    return [_chosen(run, names, runs[0]) for run in runs]


def _run(folder: str, name: str, labels_name: str) -> Run:
    labels, models = None, {}
    for entry in sorted(os.scandir(folder), key=lambda item: natural_key(item.name)):
        if entry.name.startswith((".", "_")) or format_extension(entry.name) is None:
            continue
        stem = strip_format_extension(entry.name)
        if stem == labels_name:
            labels = entry.path
        elif stem in models:
            raise InputUsageError(f"two files for model {stem!r}", path=folder)
        else:
            models[stem] = entry.path
    if labels is None:
        raise InputUsageError(
            f"no labels file (named {labels_name}.*) in the run folder",
            path=folder,
            hint="name the labels file's stem with --labels-name",
        )
    return Run(name, labels, models)


def _chosen(run: Run, names: Sequence[str] | None, first: Run) -> Run:
    """The run with the models asked for, in that order; every run must have the same models."""
    wanted = list(names) if names else list(first.models)
    if not names and list(run.models) != wanted:
        raise InputUsageError(
            f"run {run.name!r} holds models {', '.join(run.models)}, run {first.name!r} {', '.join(wanted)}",
            hint="choose the models and their order with --names A,B,...",
        )
    missing = [name for name in wanted if name not in run.models]
    if missing:
        raise InputUsageError(
            f"run {run.name!r} has no file for model(s) {', '.join(missing)}",
            hint=f"its models are {', '.join(run.models) or 'none'}",
        )
    if len(wanted) < 2:
        raise InputUsageError("compare needs at least 2 models per run (a baseline and a candidate)")
    return run._replace(models={name: run.models[name] for name in wanted})


def compare_run(run: Run, settings: CompareRequest) -> RunResult:
    """One run compared as ``compare`` compares it; a data error becomes the run's error."""
    try:
        result = compare_files(run.labels, list(run.models.values()), names=list(run.models), **settings._asdict())
    except CoslossError as exc:
        return RunResult(run.name, None, str(exc))
    return RunResult(run.name, result.to_json_dict(include_losses=False))


def compare_runs(
    runs: Sequence[Run],
    settings: CompareRequest,
    jobs: int | None = None,
    on_done: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Every run compared, in the runs' order.

    ``jobs``: that many worker processes share the runs out (None: one per CPU this
    process may use); 1, or a single run: one after the other in this process.
    """
    workers = min(jobs or usable_cpus(), len(runs))
    results: list[RunResult] = []
    done: Iterable[RunResult] = (
        _in_workers(runs, settings, workers) if workers > 1 else (compare_run(run, settings) for run in runs)
    )
    for result in done:
        if on_done is not None:
            on_done(result)
        results.append(result)
    return results


#: Why a run has no result when the worker comparing it ended (killed, out of memory).
WORKER_DIED = "the worker process died (out of memory? try fewer --jobs)"


def _in_workers(runs: Sequence[Run], settings: CompareRequest, jobs: int) -> Iterator[RunResult]:
    """The runs compared by ``jobs`` worker processes, each fed a run as it finishes one; yielded in order.

    Workers are forked (:class:`~cosloss_cli.base.workers.Worker`, as ``batch``'s) after
    this module has loaded the comparison and scipy.special, so they start warm (one
    import of scipy.special rather than one per worker); each has a second run queued
    behind the one it compares, so it never waits for this process. On an error
    or Ctrl-C here every worker is stopped at once.
    """
    from multiprocessing.connection import wait

    # The paired tests need scipy.special: imported once here, not once in each worker.
    importlib.import_module("scipy.special")
    todo = deque(range(len(runs)))
    finished: dict[int, RunResult] = {}
    shown = 0
    gc.freeze()  # the objects made so far are never collected: no copies of them in the forks
    workers = [Worker(compare_run, _worker_init) for _ in range(jobs)]
    try:
        while shown < len(runs):
            for depth in (1, 2):  # a run to every idle worker first, then one queued behind each
                for worker in workers:
                    while todo and len(worker.pending) < depth:
                        worker.send(task_payload(runs[todo[0]], settings), todo.popleft())
            busy = {worker.connection: worker for worker in workers if worker.pending}
            for connection in wait(list(busy)):
                worker = busy[connection]  # type: ignore[index]
                try:
                    index, result = worker.receive()
                except WorkerDied:
                    index, *queued = worker.pending
                    result = RunResult(runs[index].name, None, WORKER_DIED)
                    todo.extendleft(reversed(queued))
                    worker.pending.clear()
                    worker.stop()
                    workers[workers.index(worker)] = Worker(compare_run, _worker_init)
                finished[index] = result
            while shown in finished:
                yield finished.pop(shown)
                shown += 1
    except BaseException:  # an interrupt, an error, or the caller closing this generator
        for worker in workers:
            worker.stop(now=True)
        raise
    for worker in workers:  # idle now: they exit when their pipes close
        worker.stop()


def _worker_init() -> None:
    """Ctrl-C is the parent's to handle; SIGTERM ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def trend(results: Sequence[RunResult]) -> dict[str, list[float | None]]:
    """Each candidate's mean difference from the baseline per run (None where a run failed or has none)."""
    candidates: list[str] = []
    for result in results:
        for item in (result.document or {}).get("comparisons", []):
            if item["candidate"] not in candidates:
                candidates.append(item["candidate"])
    series: dict[str, list[float | None]] = {name: [] for name in candidates}
    for result in results:
        found = {item["candidate"]: item["mean_difference"] for item in (result.document or {}).get("comparisons", [])}
        for name in candidates:
            series[name].append(found.get(name))
    return series


def runs_document(root: str, results: Sequence[RunResult]) -> dict[str, Any]:
    """The JSON document of ``compare --runs``: a ``compare`` document per run, and the trends."""
    gated = [item for r in results if r.document for item in r.document["comparisons"] if item["gates"]]
    failed_runs = [r for r in results if r.error is not None]
    return {
        "schema_version": SCHEMA_VERSION,
        "root": root,
        "runs": [{"run": r.name, **(r.document if r.document is not None else {"error": r.error})} for r in results],
        "trend": trend(results),
        "failed": len(failed_runs),
        "gates_passed": all(gate["passed"] for item in gated for gate in item["gates"]) if gated else None,
    }


def comparison_rows(results: Sequence[RunResult]) -> Iterator[dict[str, Any]]:
    """A flat record per run and candidate (NDJSON and CSV): the comparison's figures and its gates' outcome."""
    for result in results:
        if result.document is None:
            yield {"run": result.name, "error": result.error}
            continue
        for item in result.document["comparisons"]:
            tail = item.get("tail") or {}
            yield {
                "run": result.name,
                "baseline": item["baseline"],
                "candidate": item["candidate"],
                "count": result.document["count"],
                "mean_difference": item["mean_difference"],
                "ci_low": item["ci_low"],
                "ci_high": item["ci_high"],
                "p_value_t": item["p_value_t"],
                "p_value_wilcoxon": item["p_value_wilcoxon"],
                "verdict": item["verdict"],
                "p99": tail.get("p99"),
                "worse_share": tail.get("worse_share"),
                "gates_passed": all(gate["passed"] for gate in item["gates"]) if item["gates"] else None,
            }
