"""The ``cosloss batch`` command: every pair of two mirrored folders (or of a manifest).

A thin click layer: pairing and the parallel runner are in :mod:`cosloss_cli.batch`,
the output formats in :mod:`cosloss_cli.batch_render`. Options shared with ``compute``
come from the same decorators in :mod:`cosloss_cli.options`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any, NoReturn

import click

from ..batch import (
    MAX_LISTED,
    OUTPUT_DIR_FORMATS,
    BatchRunner,
    Discovery,
    PairResult,
    PairTask,
    default_jobs,
    discover_pairs,
    overall,
    read_manifest,
)
from ..errors import DataError, InputUsageError, OutputError
from ..options import CONTEXT_SETTINGS, common_options, compute_options, format_options, input_options
from ..status import ExitStatus
from ..terminal import Environment
from .edge import (
    Terminated,
    check_threshold,
    chosen_format,
    compute_options_from,
    environment,
    read_options_for,
    user_errors,
    warn,
    warn_counts,
)


@click.command("batch", context_settings=CONTEXT_SETTINGS)
@click.argument("labels_dir", required=False, metavar="LABELS_DIR")
@click.argument("predictions_dir", required=False, metavar="PREDICTIONS_DIR")
@click.option("--manifest", metavar="FILE.csv", help="CSV of pairs (labels,predictions[,name]) instead of two folders.")
@click.option("--recursive", "-r", is_flag=True, help="Descend into subfolders (symlinked folders are not followed).")
@click.option(
    "--pattern",
    "patterns",
    metavar="GLOB",
    multiple=True,
    help="Only files whose name or relative path matches GLOB (repeatable).",
)
@click.option("--strict", is_flag=True, help="Any file without a partner is an error (exit 1) before work starts.")
@input_options
@compute_options
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    metavar="N",
    help="Worker processes, i.e. pairs in flight at most [default: the number of CPUs].",
)
@click.option("--fail-fast", is_flag=True, help="Stop starting new pairs after the first failed pair.")
@format_options("a line per pair, as each finishes")
@click.option("--losses", "with_losses", is_flag=True, help="JSON/NDJSON: add each pair's per-vector losses.")
@click.option(
    "--output-dir",
    metavar="DIR",
    help="Write each ok pair's per-vector losses to DIR/<name>.<ext> (subfolders mirrored).",
)
@click.option(
    "--output-format",
    "output_file_format",
    type=click.Choice(tuple(OUTPUT_DIR_FORMATS)),
    help="File format of --output-dir files  [default: csv]",
)
@common_options
@click.pass_context
def batch(ctx: click.Context, /, labels_dir: str | None, predictions_dir: str | None, **params: Any) -> None:
    """Loss of every pair of files in LABELS_DIR and PREDICTIONS_DIR, in parallel.

    Files pair up when their paths relative to the two folders are equal without the
    format extension: labels/run1/a.npy pairs with predictions/run1/a.parquet as
    "run1/a". Hidden files are skipped; files without a partner are listed.
    A failed pair is reported with its error and the others still run (exit 1).
    --fail-above applies to the pooled mean over every loss of every ok pair.

    \b
    Examples:
      cosloss batch labels/ predictions/ -r
      cosloss batch labels/ preds/ --format ndjson | jq -r 'select(.mean > 0.2) | .name'
      cosloss batch --manifest pairs.csv --json | jq .overall.mean
      cosloss batch labels/ preds/ --output-dir losses/ --output-format parquet
      cosloss batch labels/ preds/ --fail-above 0.1 -q        # CI gate
    """
    env = environment(ctx)
    with user_errors(params["debug"]):
        status = run_batch(labels_dir, predictions_dir, params, env)
    if status != ExitStatus.OK:
        sys.exit(int(status))


def run_batch(labels_dir: str | None, predictions_dir: str | None, params: dict[str, Any], env: Environment) -> int:
    """The body of ``batch``; returns the exit status."""
    quiet = params["quiet"]
    fmt = chosen_format(params)
    output_dir = params.get("output_dir")
    _check_usage(labels_dir, predictions_dir, params, fmt)

    discovery = _find_pairs(labels_dir, predictions_dir, params)
    _report_unmatched(discovery, params["strict"], quiet)
    if not discovery.pairs:
        raise DataError(_nothing_found(labels_dir, predictions_dir, params))

    if output_dir:
        _prepare_output_dir(output_dir)
    include_losses = params["with_losses"] and fmt in ("json", "ndjson")
    task = _task(params, output_dir, include_losses)
    jobs = min(params.get("jobs") or default_jobs(), len(discovery.pairs))
    if jobs > 1:
        task = replace(task, compute=task.compute._replace(threads=1))  # the processes use the cores

    out = sys.stdout

    from ..progress import pair_progress

    with pair_progress(env.stderr_isatty and not quiet, len(discovery.pairs)) as advance:

        def on_result(result: PairResult) -> None:
            if fmt == "ndjson":
                from ..batch_render import write_pair_line

                write_pair_line(result, out, include_losses=include_losses, with_output=bool(output_dir))
            if advance is not None:
                advance(result.rows)

        runner = BatchRunner(discovery.pairs, task, jobs, fail_fast=params["fail_fast"], on_result=on_result)
        try:
            results = runner.run()
        except KeyboardInterrupt:
            _stopped("Interrupted", runner, ExitStatus.INTERRUPTED)
        except Terminated:
            _stopped("Terminated", runner, ExitStatus.TERMINATED)

    summary = overall(results, len(discovery.pairs))
    warn_counts(summary.zero_vectors, summary.omitted, quiet)
    _render(fmt, results, summary, discovery, params, env, include_losses)

    failed = [result for result in results if not result.ok]
    if runner.stopped_early:
        click.echo(f"cosloss: --fail-fast: stopped after a failure; {summary.skipped} pair(s) not run", err=True)
    exceeded = summary.ok > 0 and check_threshold(summary.mean, params.get("fail_above"), "pooled mean loss")
    if failed:
        first = failed[0]
        click.echo(f"Error: {len(failed)} of {len(results)} pair(s) failed; {first.name}: {first.error}", err=True)
        return int(ExitStatus.DATA_ERROR)
    return int(ExitStatus.THRESHOLD_EXCEEDED) if exceeded else int(ExitStatus.OK)


def _check_usage(labels_dir: str | None, predictions_dir: str | None, params: dict[str, Any], fmt: str) -> None:
    if params.get("manifest"):
        if labels_dir or predictions_dir:
            raise click.UsageError("give either LABELS_DIR PREDICTIONS_DIR or --manifest, not both")
        if params["recursive"] or params["patterns"]:
            raise click.UsageError("--recursive and --pattern select files in folders; they do not apply to --manifest")
    elif not (labels_dir and predictions_dir):
        raise click.UsageError("give two folders, LABELS_DIR and PREDICTIONS_DIR, or --manifest FILE.csv")
    if params.get("output_file_format") and not params.get("output_dir"):
        raise click.UsageError("--output-format applies to --output-dir files; add --output-dir DIR")
    if params["with_losses"] and fmt not in ("json", "ndjson"):
        warn("--losses applies to --format json and ndjson; ignored", params["quiet"])


def _find_pairs(labels_dir: str | None, predictions_dir: str | None, params: dict[str, Any]) -> Discovery:
    if params.get("manifest"):
        return Discovery(pairs=read_manifest(params["manifest"]))
    assert labels_dir is not None and predictions_dir is not None
    output_dir = params.get("output_dir")
    return discover_pairs(
        labels_dir,
        predictions_dir,
        recursive=params["recursive"],
        patterns=params["patterns"],
        labels_format=params.get("labels_format") or params.get("input_format"),
        predictions_format=params.get("predictions_format") or params.get("input_format"),
        exclude=[output_dir] if output_dir else [],
    )


def _report_unmatched(discovery: Discovery, strict: bool, quiet: bool) -> None:
    """Warn about files without a partner; with ``--strict`` they are an error."""
    if discovery.skipped_folders:
        shown = ", ".join(discovery.skipped_folders[:3]) + (" ..." if len(discovery.skipped_folders) > 3 else "")
        warn(f"{len(discovery.skipped_folders)} subfolder(s) not searched ({shown}): pass -r to include them", quiet)
    lines = [f"{path} (no predictions file)" for path in discovery.unmatched_labels]
    lines += [f"{path} (no labels file)" for path in discovery.unmatched_predictions]
    if not lines:
        return
    if strict:
        listed = ", ".join(lines[:3]) + (f" and {len(lines) - 3} more" if len(lines) > 3 else "")
        raise DataError(
            f"{len(lines)} file(s) without a partner (--strict): {listed}",
            hint="add the missing files, narrow with --pattern, or drop --strict",
        )
    warn(f"{len(lines)} file(s) without a partner, not compared:", quiet)
    if not quiet:
        for line in lines[:MAX_LISTED]:
            click.echo(f"  {line}", err=True)
        if len(lines) > MAX_LISTED:
            click.echo(f'  ... and {len(lines) - MAX_LISTED} more (see "unmatched" in --format json)', err=True)


def _nothing_found(labels_dir: str | None, predictions_dir: str | None, params: dict[str, Any]) -> str:
    if params.get("manifest"):
        return f"{params['manifest']}: the manifest lists no pairs"
    where = f"no pairs of files found in {labels_dir} and {predictions_dir}"
    details = []
    if params["patterns"]:
        details.append("patterns " + ", ".join(repr(p) for p in params["patterns"]))
    else:
        details.append("any data file (.csv .tsv .npy .npz .parquet ...)")
    details.append("recursive" if params["recursive"] else "top level only (-r to descend into subfolders)")
    return f"{where} (searched: {'; '.join(details)})"


def _prepare_output_dir(output_dir: str) -> None:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InputUsageError("--output-dir exists and is not a folder", path=output_dir)
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder: {exc.strerror or exc}", path=output_dir) from None


def _task(params: dict[str, Any], output_dir: str | None, keep_losses: bool) -> PairTask:
    return PairTask(
        label_options=read_options_for("labels", params),
        prediction_options=read_options_for("predictions", params),
        compute=compute_options_from(params),
        keep_losses=keep_losses,
        output_dir=output_dir,
        output_format=params.get("output_file_format") or "csv",
    )


def _stopped(what: str, runner: BatchRunner, status: ExitStatus) -> NoReturn:
    """After Ctrl-C or SIGTERM: the workers are gone; say how far the batch got."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    click.echo(f"{what}: {runner.done} of {runner.total} pair(s) finished.", err=True)
    sys.exit(int(status))


def _render(
    fmt: str,
    results: list[PairResult],
    summary: Any,
    discovery: Discovery,
    params: dict[str, Any],
    env: Environment,
    include_losses: bool,
) -> None:
    from .. import batch_render
    from ..terminal import terminal_width

    out = sys.stdout
    with_output = bool(params.get("output_dir"))
    if fmt == "json":
        batch_render.write_json(
            results, summary, discovery, out, include_losses=include_losses, with_output=with_output
        )
    elif fmt == "csv":
        batch_render.write_csv(results, out)
    elif fmt == "table":
        width = terminal_width() if env.stdout_isatty else 120
        batch_render.render_table(results, summary, out, color=env.stdout_color, width=width)
    out.flush()
