"""The ``cosloss compare`` command: several models' predictions against the same labels, row by row.

A thin click layer over :func:`cosloss_cli.compare.compare_files` (reading, the paired
statistics) and :mod:`cosloss_cli.compare_render` (the output formats). Options shared
with ``compute`` come from the same decorators in :mod:`cosloss_cli.options`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import click

from ..options import (
    CONTEXT_SETTINGS,
    Bootstrap,
    Inputs,
    OutputChoice,
    Verbosity,
    bootstrap_options,
    common_options,
    compute_options,
    input_options,
    output_options,
    strict_option,
)
from ..output import COMPARE_FILE_WRITERS, COMPARE_WRITERS, FILE_EXTENSIONS, emit, view_for
from ..status import ExitStatus
from ..terminal import Environment
from .edge import environment, refuse_interactive_stdin, user_errors, warn

if TYPE_CHECKING:
    from ..compare import CompareResult
    from ..pipeline import ComputeOptions


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """``--names a,b,c``: empty parts are kept, so that the library can say a name is empty."""
    return None if value is None else [part.strip() for part in value.split(",")]


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """``--fail-if-worse``: any finite number (below 0 asks the candidate to be better by that much)."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number")
    return value


@click.command("compare", context_settings=CONTEXT_SETTINGS)
@click.argument("labels")
@click.argument("predictions", nargs=-1, required=True, metavar="PREDICTIONS_A PREDICTIONS_B [PREDICTIONS_C]...")
@input_options
@compute_options
@strict_option
@bootstrap_options(can_be_off=False)
@click.option(
    "--names",
    metavar="A,B,...",
    callback=_names,
    help="Model names, one per predictions file [default: the file names without extension].",
)
@click.option(
    "--fail-if-worse",
    type=float,
    metavar="DELTA",
    callback=_finite,
    help="Exit with status 3 if, for any candidate, the interval of mean(candidate - baseline) "
    "reaches above DELTA (0: must not be worse). Results are still printed.",
)
@output_options(
    COMPARE_WRITERS,
    "a line per row, a loss per model",
    losses=True,
    losses_help="JSON with every model's per-row losses; --no-losses leaves them out (huge inputs).",
)
@click.option(
    "--output",
    "-o",
    "output_file",
    metavar="FILE",
    help=f"Also write the per-row losses, a column per model, to FILE ({' '.join(FILE_EXTENSIONS)}).",
)
@common_options
@click.pass_context
def compare(
    ctx: click.Context,
    /,
    labels: str,
    predictions: tuple[str, ...],
    *,
    inputs: Inputs,
    computation: ComputeOptions,
    strict: bool,
    bootstrap: Bootstrap,
    names: list[str] | None,
    fail_if_worse: float | None,
    output: OutputChoice,
    output_file: str | None,
    verbosity: Verbosity,
) -> None:
    """Is a model better than another on the same LABELS? Paired statistics of the per-row losses.

    The first predictions file is the baseline; each later one is a candidate compared
    with it row by row (d = candidate loss - baseline loss; lower loss is better):
    mean difference with its BCa bootstrap interval (rows resampled together), paired
    t-test and Wilcoxon signed-rank p-values, Cohen's d_z, rows better/worse/tied, and
    a verdict (the interval is below 0, above 0, or contains it). With 3 or more models
    the t-test p-values are also Holm-adjusted. Every file is read as 'compute' reads it.

    \b
    Examples:
      cosloss compare labels.npy base.npy tuned.npy
      cosloss compare labels.parquet a.parquet b.parquet --names old,new --json | jq '.comparisons'
      cosloss compare labels.npy base.npy new.npy --fail-if-worse 0 -q   # CI gate
      cosloss compare labels.csv a.csv b.csv --axis 1 -o losses.parquet
      cosloss compare labels.parquet a.parquet shuffled.parquet --join-on id
    """
    env = environment(ctx)
    with user_errors(verbosity.debug):
        refuse_interactive_stdin([labels, *predictions], env)
        computation = computation._replace(strict=strict)
        result = run_compare(
            labels, list(predictions), inputs, computation, bootstrap, names, output, output_file, verbosity, env
        )
    if worse_than_allowed(result, fail_if_worse):
        sys.exit(int(ExitStatus.THRESHOLD_EXCEEDED))


def run_compare(
    labels: str,
    predictions: list[str],
    inputs: Inputs,
    computation: ComputeOptions,
    bootstrap: Bootstrap,
    names: list[str] | None,
    output: OutputChoice,
    output_file: str | None,
    verbosity: Verbosity,
    env: Environment,
) -> CompareResult:
    """The body of ``compare``: read every model, compare, warn, write.

    The paired tests run in a process started first, which imports scipy.stats (0.6-1 s)
    while the files are read here (:mod:`cosloss_cli.stats_process`).
    """
    if output_file:
        from ..writers import output_format_for

        output_format_for(output_file)  # a bad name is refused before the work
    from ..stats_process import stats_process

    with stats_process() as tests:
        from ..compare import compare_files

        with _progress(labels, predictions, inputs, verbosity, env) as progress:
            result = compare_files(
                labels,
                predictions,
                names=names,
                confidence=bootstrap.confidence,
                resamples=bootstrap.resamples,
                seed=bootstrap.seed,
                read_options=inputs.labels,
                prediction_read_options=inputs.predictions,
                options=computation,
                progress=progress,
                tests=tests,
            )
    _warn(result, verbosity.quiet)
    if output_file:
        from ..writers import write_losses_file

        write_losses_file(
            output_file, result, storage_options=inputs.labels.storage_options, registry=COMPARE_FILE_WRITERS
        )
    emit(COMPARE_WRITERS, output.format, result, view_for(env, losses=output.losses))
    return result


def _progress(
    labels: str, predictions: list[str], inputs: Inputs, verbosity: Verbosity, env: Environment
) -> AbstractContextManager[Callable[[int], None] | None]:
    """A bar over every model's rows, on a terminal only and for inputs big enough to wait for (as compute)."""
    if not env.stderr_isatty or verbosity.quiet or labels == "-":
        return nullcontext()
    from ..progress import MIN_BYTES_FOR_PROGRESS, row_progress
    from ..readers import open_source

    size = sum(os.path.getsize(path) for path in (labels, *predictions) if os.path.isfile(path))
    if size < MIN_BYTES_FOR_PROGRESS:
        return nullcontext()
    rows = open_source(labels, inputs.labels).shape[0]  # the header only: blocks are read lazily
    return row_progress(True, None if rows is None else rows * len(predictions), "comparing")


def _warn(result: CompareResult, quiet: bool) -> None:
    """Warnings on stderr: too few rows, zero vectors, omitted rows, and why figures are missing."""
    if result.rows < 2:
        warn(f"{result.rows} row(s) to compare: the statistics need at least 2 and are null", quiet)
    for model in result.models:
        if model.unmatched:
            warn(f"{model.name}: {model.unmatched.message()}", quiet)
        if model.summary.zero_vectors:
            warn(f"{model.name}: {model.summary.zero_vectors} vector pair(s) with a zero vector: loss 1", quiet)
    omitted = result.models[0].summary.omitted
    if omitted:
        warn(f"{omitted} row(s) with NaN/Inf in some model omitted for every model (--nan-policy omit)", quiet)
    if result.rows >= 2:  # with fewer, the warning above says it for every comparison
        for note in result.notes():
            warn(note, quiet)


def worse_than_allowed(result: CompareResult, delta: float | None) -> bool:
    """``--fail-if-worse``: True (and a line on stderr per candidate) when a candidate is not shown within DELTA.

    A candidate passes when the upper end of the interval of mean(candidate - baseline)
    is at most DELTA; without an interval (too few rows, NaN losses) it is not shown, so it fails.
    """
    if delta is None:
        return False
    failed = False
    level = f"{result.settings.confidence * 100:g}%"
    for item in result.comparisons:
        high = item.statistics.ci_high
        what = f"mean({item.candidate} - {item.baseline})"
        if high is None:
            click.echo(
                f"cosloss: {item.candidate}: no interval of {what}: not shown within --fail-if-worse {delta:g}",
                err=True,
            )
            failed = True
        elif high > delta:
            click.echo(
                f"cosloss: {item.candidate}: the {level} interval of {what} reaches {high:.6g}, "
                f"above --fail-if-worse {delta:g}",
                err=True,
            )
            failed = True
    return failed
