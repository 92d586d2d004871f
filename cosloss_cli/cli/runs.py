"""``cosloss compare --runs``: the models of every run of a tree, compared run by run.

The CLI side of :mod:`cosloss_cli.compare.runs`: discover, compare on worker processes with a
progress bar over the runs on a terminal, write the results, and say what failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..compare.report import runs_report
from ..compare.runs import compare_runs, comparison_rows, discover_runs, runs_document
from ..render.output import RUNS_WRITERS, emit, view_for
from ..render.progress import pair_progress
from ..render.report import check_outputs_first
from ..render.writers import write_text_file
from .edge import warn

if TYPE_CHECKING:
    from ..base.terminal import Environment
    from ..compare.models import CompareRequest
    from .options import OutputChoice, Verbosity


def run_many(
    root: str,
    labels_name: str,
    request: CompareRequest,
    names: list[str] | None,
    output: OutputChoice,
    verbosity: Verbosity,
    env: Environment,
    jobs: int | None,
    *,
    report_file: str | None = None,
) -> tuple[int, bool]:
    """Compare every run under ``root``; returns (runs failed, whether a gate failed).

    ``report_file``: also write the ``--report`` page, from the JSON document.
    """
    if report_file:
        check_outputs_first(None, report_file, [root])  # before the work
    runs = discover_runs(root, names, labels_name)
    with pair_progress(env.stderr_isatty and not verbosity.quiet, len(runs)) as advance:
        results = compare_runs(
            runs, request, jobs=jobs, on_done=None if advance is None else (lambda result: advance(0))
        )
    document = runs_document(root, results)
    document["rows"] = list(comparison_rows(results))
    for result in results:
        if result.error is not None:
            warn(f"run {result.name}: {result.error}", verbosity.quiet)
    gates_failed = _report_gates(document)
    if report_file:
        document_json = {key: value for key, value in document.items() if key != "rows"}
        write_text_file(report_file, runs_report(document_json), storage_options=request.read_options.storage_options)
    if output.format == "json":
        document.pop("rows")  # the JSON document holds each run's whole comparison instead
    emit(RUNS_WRITERS, output.format, document, view_for(env))
    return document["failed"], gates_failed


def _report_gates(document: dict[str, Any]) -> bool:
    """One line on stderr per failed gate, naming its run and candidate."""
    failed = False
    for run in document["runs"]:
        for item in run.get("comparisons", []):
            for gate in item["gates"]:
                if not gate["passed"]:
                    failed = True
                    value = "n/a" if gate["value"] is None else f"{gate['value']:.6g}"
                    click.echo(
                        f"cosloss: run {run['run']}: {item['candidate']}: gate {gate['rule']} failed "
                        f"(value {value}, bound {gate['bound']:g})",
                        err=True,
                    )
    return failed
