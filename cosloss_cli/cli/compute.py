"""The ``cosloss compute`` command: the losses of one labels file against one predictions file."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..base.terminal import Environment
from ..render.output import RESULT_WRITERS, emit, view_for
from ..status import ExitStatus
from .edge import check_threshold, environment, print_notes, refuse_interactive_stdin, user_errors, warn, warn_counts
from .options import (
    CONTEXT_SETTINGS,
    Bootstrap,
    Distribution,
    Inputs,
    OutputChoice,
    Verbosity,
    Weighting,
    bootstrap_options,
    distribution_options,
    final_options,
    min_matched_option,
    output_file_option,
    output_options,
    reading_options,
    strict_option,
    threshold_option,
    weight_options,
)

if TYPE_CHECKING:
    from ..pipeline.compute import Progress
    from ..pipeline.result import ComputeOptions
    from ..stats.figures import FigureOptions

#: Bins of the histogram the table draws when ``--bins`` is not given.
TABLE_BINS = 20


@click.command("compute", context_settings=CONTEXT_SETTINGS)
@click.argument("labels")
@click.argument("predictions")
@reading_options
@weight_options()
@distribution_options()
@bootstrap_options
@strict_option
@min_matched_option(0.0, "; 0: rows without a partner are left out and counted")
@threshold_option
@output_options(
    RESULT_WRITERS,
    "a line per loss; per group with --group-by",
    losses=True,
    losses_help="JSON with the per-vector losses list; --no-losses leaves it out (huge inputs).",
)
@click.option(
    "--max-rows", type=click.IntRange(min=0), default=20, show_default=True, help="Losses shown in the table."
)
@output_file_option("the per-vector losses")
@final_options()
@click.pass_context
def compute(
    ctx: click.Context,
    /,
    labels: str,
    predictions: str,
    *,
    inputs: Inputs,
    computation: ComputeOptions,
    weighting: Weighting,
    distribution: Distribution,
    bootstrap: Bootstrap,
    strict: bool,
    min_matched: float,
    fail_above: float | None,
    output: OutputChoice,
    max_rows: int,
    output_file: str | None,
    group_by: tuple[str, ...],
    report_file: str | None,
    verbosity: Verbosity,
) -> None:
    """Loss per vector pair and summary for one LABELS and one PREDICTIONS file.

    Formats come from the extensions: .csv .tsv (gzip too), .npy (.npy.gz), .npz,
    .parquet/.pq, .jsonl/.ndjson, .json, .arrow/.feather, .h5, .safetensors; '-' reads
    one input from stdin (give its format with --input-format). An input may
    be a dataset read as one table: a folder, a quoted glob or an object-storage prefix
    of shards (Spark, polars, pyarrow.dataset, a Hugging Face save_to_disk folder).
    The summary's std is the population standard deviation (ddof=0).

    \b
    Examples:
      cosloss compute labels.csv predictions.csv --axis 1
      cosloss compute labels.npy preds.npy --json | jq .mean
      cosloss compute a.parquet b.parquet --id-column id --format csv > losses.csv
      cosloss compute labels.csv shuffled.parquet --join-on id --strict
      cosloss compute labels/ 'preds/part-*.parquet' --join-on id      # sharded datasets
      cosloss compute a.npy b.npy --fail-above 0.2 --no-losses --json   # CI gate
      cosloss compute a.csv b.csv --weight-column w --reduction mean --top 5
    """
    env = environment(ctx)
    with user_errors(verbosity.debug):
        refuse_interactive_stdin([labels, predictions], env)
        computation = computation._replace(strict=strict, min_matched=min_matched)
        figures = figure_options(weighting, distribution, bootstrap, output)
        mean = run_compute(
            labels,
            predictions,
            inputs,
            computation,
            figures,
            output,
            max_rows,
            output_file,
            verbosity,
            env,
            report_file=report_file,
            group_by=group_by,
        )
    if check_threshold(mean, fail_above):
        sys.exit(int(ExitStatus.THRESHOLD_EXCEEDED))


def figure_options(
    weighting: Weighting, distribution: Distribution, bootstrap: Bootstrap, output: OutputChoice
) -> FigureOptions:
    """The figures to compute: the option records as one FigureOptions (the table always draws a histogram)."""
    from ..stats.figures import FigureOptions, check_figure_options

    bins = distribution.bins
    if bins is None and output.format == "table":
        bins = TABLE_BINS
    return check_figure_options(
        FigureOptions(**weighting._asdict(), **distribution._replace(bins=bins)._asdict(), **bootstrap._asdict())
    )


def run_compute(
    labels: str,
    predictions: str,
    inputs: Inputs,
    computation: ComputeOptions,
    figures: FigureOptions,
    output: OutputChoice,
    max_rows: int,
    output_file: str | None,
    verbosity: Verbosity,
    env: Environment,
    *,
    report_file: str | None = None,
    group_by: tuple[str, ...] = (),
) -> float:
    """The body of ``compute``: read, compute, write; returns the mean loss for ``--fail-above``."""
    from ..pipeline.compute import compute_pair

    if output_file or report_file:
        from ..render.report import check_outputs_first

        weights = figures.weights if isinstance(figures.weights, str) else None
        check_outputs_first(output_file, report_file, [labels, predictions, weights])
    if output.format == "json" and not output.losses and not output_file and not report_file and not group_by:
        # Nothing will print or group the losses one by one: beyond a bound they are spilled to disk.
        computation = computation._replace(keep_losses=False)
    result = compute_pair(
        labels,
        predictions,
        inputs.labels,
        computation,
        figures,
        inputs.predictions,
        progress=_progress(env, verbosity),
        group_by=group_by,
    )
    summary = result.summary
    print_notes(result.notes, verbosity.quiet)
    warn_counts(summary.zero_vectors, summary.omitted, verbosity.quiet)
    if result.unmatched:
        warn(result.unmatched.message(), verbosity.quiet)
    if result.unmatched is not None and computation.join_on and output.format in ("csv", "ndjson"):
        # a line per loss has no summary to say it next to the mean: said here
        print_notes((f"{result.unmatched.matched_text()} by id (--join-on {computation.join_on})",), verbosity.quiet)
    if output_file:
        from ..render.writers import write_losses_file

        write_losses_file(output_file, result, storage_options=inputs.labels.storage_options)
    if report_file:
        from ..render.report import compute_report
        from ..render.result import result_header
        from ..render.writers import write_text_file

        page = compute_report(result, result_header(result), max_rows)
        write_text_file(report_file, page, storage_options=inputs.labels.storage_options)
    view = view_for(env, losses=output.losses, max_rows=max_rows, groups=group_by)
    emit(RESULT_WRITERS, output.format, result, view)
    return summary.mean


def _progress(env: Environment, verbosity: Verbosity) -> Progress | None:
    """A bar of the rows computed, sized by the inputs, on a terminal only (and not with ``--quiet``)."""
    if not env.stderr_isatty or verbosity.quiet:
        return None
    from ..render.progress import MIN_BYTES_FOR_PROGRESS, row_progress

    return lambda rows, size_bytes: row_progress(size_bytes >= MIN_BYTES_FOR_PROGRESS, rows, "computing")
