"""The ``cosloss compute`` command: the losses of one labels file against one predictions file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import click

from ..options import CONTEXT_SETTINGS, common_options, compute_options, format_options, input_options
from ..status import ExitStatus
from ..terminal import Environment
from .edge import (
    check_threshold,
    chosen_format,
    compute_options_from,
    environment,
    read_options_for,
    refuse_interactive_stdin,
    user_errors,
    warn_counts,
)


@click.command("compute", context_settings=CONTEXT_SETTINGS)
@click.argument("labels")
@click.argument("predictions")
@input_options
@compute_options
@format_options("a line per loss")
@click.option("--no-losses", is_flag=True, help="JSON without the per-vector losses list (huge inputs).")
@click.option(
    "--max-rows", type=click.IntRange(min=0), default=20, show_default=True, help="Losses shown in the table."
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    help="Also write the per-vector losses to FILE (.csv .json .jsonl .ndjson .parquet .npy).",
)
@common_options
@click.pass_context
def compute(ctx: click.Context, /, labels: str, predictions: str, **params: Any) -> None:
    """Loss per vector pair and summary for one LABELS and one PREDICTIONS file.

    Formats come from the extensions: .csv .tsv (gzip too), .npy, .npz, .parquet/.pq;
    '-' reads one input from stdin (give its format with --input-format).

    \b
    Examples:
      cosloss compute labels.csv predictions.csv --axis 1
      cosloss compute labels.npy preds.npy --json | jq .mean
      cosloss compute a.parquet b.parquet --id-column id --format csv > losses.csv
      cosloss compute a.npy b.npy --fail-above 0.2 --no-losses --json   # CI gate
    """
    env = environment(ctx)
    with user_errors(params["debug"]):
        refuse_interactive_stdin([labels, predictions], env)
        exceeded = run_compute(labels, predictions, params, env)
    if exceeded:
        sys.exit(int(ExitStatus.THRESHOLD_EXCEEDED))


def run_compute(labels: str, predictions: str, params: dict[str, Any], env: Environment) -> bool:
    """The body of ``compute``; returns whether ``--fail-above`` was exceeded."""
    from ..pipeline import compute_sources, open_pair

    output = params.get("output")
    if output:
        from ..writers import output_format_for

        output_format_for(output)
    label_options = read_options_for("labels", params)
    label_source, prediction_source = open_pair(
        labels, predictions, label_options, read_options_for("predictions", params)
    )
    bar: AbstractContextManager[Callable[[int], None] | None] = nullcontext()
    if env.stderr_isatty and not params["quiet"]:
        from ..progress import MIN_BYTES_FOR_PROGRESS, row_progress  # a bar is only ever drawn on a terminal

        size = (label_source.size_bytes or 0) + (prediction_source.size_bytes or 0)
        bar = row_progress(size >= MIN_BYTES_FOR_PROGRESS, label_source.shape[0], "computing")
    with bar as progress:
        result = compute_sources(label_source, prediction_source, compute_options_from(params), progress, label_options)
    summary = result.summary
    warn_counts(summary.zero_vectors, summary.omitted, params["quiet"])
    if output:
        from ..writers import write_losses_file

        write_losses_file(output, result)
    render_result(result, params, env)
    return check_threshold(summary.mean, params.get("fail_above"))


def render_result(result: Any, params: dict[str, Any], env: Environment) -> None:
    from .. import render
    from ..terminal import terminal_width

    fmt = chosen_format(params)
    out = sys.stdout
    if fmt == "json":
        render.write_json(result, out, include_losses=not params["no_losses"])
    elif fmt == "ndjson":
        render.write_ndjson(result, out)
    elif fmt == "csv":
        render.write_csv(result, out)
    else:
        width = terminal_width() if env.stdout_isatty else 100
        render.render_table(result, out, max_rows=params["max_rows"], color=env.stdout_color, width=width)
    out.flush()
