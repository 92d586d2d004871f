"""The ``cosloss compare`` command: several models' predictions against the same labels, row by row.

A thin click layer over :func:`cosloss_cli.compare.models.compare_files` (reading, the paired
statistics) and :mod:`cosloss_cli.compare.render` (the output formats). Options shared
with ``compute`` come from the same decorators in :mod:`cosloss_cli.cli.options`.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

import click

from ..base.terminal import Environment
from ..errors import InputUsageError
from ..io import open_source
from ..render.output import COMPARE_FILE_WRITERS, COMPARE_WRITERS, emit, view_for
from ..status import ExitStatus
from .edge import environment, print_notes, refuse_interactive_stdin, user_errors, warn
from .options import (
    CONTEXT_SETTINGS,
    Bootstrap,
    Distribution,
    Inputs,
    OutputChoice,
    Verbosity,
    bootstrap_options,
    distribution_options,
    final_options,
    jobs_option,
    output_file_option,
    output_options,
    reading_options,
    strict_option,
)

if TYPE_CHECKING:
    from ..compare.models import CompareRequest, CompareResult
    from ..pipeline.result import ComputeOptions


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """``--names a,b,c``: empty parts are kept, so that the library can say a name is empty."""
    return None if value is None else [part.strip() for part in value.split(",")]


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """The gates' bounds: any finite number (below 0 asks the candidate to be better by that much)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number")
    return value


def _non_negative_finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """``--worse-by``: a finite difference of losses, at least 0."""
    if not math.isfinite(value) or value < 0:
        raise click.BadParameter("must be a finite number >= 0")
    return value


@click.command("compare", context_settings=CONTEXT_SETTINGS)
@click.argument("labels")
@click.argument("predictions", nargs=-1, metavar="PREDICTIONS_A PREDICTIONS_B [PREDICTIONS_C]...")
@reading_options
@strict_option
@bootstrap_options(can_be_off=False)
@click.option(
    "--names",
    metavar="A,B,...",
    callback=_names,
    help="Model names, one per predictions file [default: the file names without extension].",
)
@click.option(
    "--baseline-losses",
    metavar="FILE",
    help="The baseline is the per-row losses saved by an earlier 'compute -o' or 'compare -o' "
    "(CSV, Parquet, ...; matched by id, else by row): every PREDICTIONS file is then a candidate.",
)
@click.option(
    "--baseline-column",
    metavar="NAME",
    help="With --baseline-losses: the column of the saved model (a 'compare -o' file has one per model).",
)
@click.option(
    "--runs",
    is_flag=True,
    help="LABELS is a folder of runs (one folder each, holding a labels file and a file per model): "
    "compare the models on every run, with each candidate's trend over the runs.",
)
@click.option(
    "--labels-name",
    default="labels",
    show_default=True,
    metavar="STEM",
    help="With --runs: the name (without extension) of the labels file in each run folder.",
)
@jobs_option("With --runs: compare N runs at a time in worker processes")
@distribution_options(best=False)
@click.option(
    "--worse-by",
    type=float,
    default=0.1,
    show_default=True,
    metavar="DELTA",
    callback=_non_negative_finite,
    help="A row counts as worse when the candidate's loss is above the baseline's by more than DELTA "
    "(the tail risk and --max-worse-share).",
)
@click.option(
    "--fail-if-worse",
    type=float,
    metavar="DELTA",
    callback=_finite,
    help="Gate: exit 3 if a candidate is shown worse than the baseline by more than DELTA (the interval "
    "of mean(candidate - baseline) lies above DELTA). A candidate no different from the baseline passes.",
)
@click.option(
    "--require-non-inferior",
    type=float,
    metavar="MARGIN",
    callback=_finite,
    help="Gate: exit 3 unless every candidate is shown no worse than MARGIN (the upper end of the interval "
    "of mean(candidate - baseline) is at most MARGIN): non-inferiority.",
)
@click.option(
    "--max-worse-share",
    type=click.FloatRange(0, 1),
    metavar="SHARE",
    help="Gate: exit 3 if more than SHARE (0 to 1) of a candidate's rows are worse by more than --worse-by.",
)
@output_options(
    COMPARE_WRITERS,
    "a line per row, a loss per model; per group and candidate with --group-by",
    losses=True,
    losses_help="JSON with every model's per-row losses; --no-losses leaves them out (huge inputs).",
)
@output_file_option("the per-row losses, a column per model,")
@final_options()
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
    baseline_losses: str | None,
    baseline_column: str | None,
    runs: bool,
    labels_name: str,
    jobs: int | None,
    distribution: Distribution,
    worse_by: float,
    fail_if_worse: float | None,
    require_non_inferior: float | None,
    max_worse_share: float | None,
    output: OutputChoice,
    output_file: str | None,
    group_by: tuple[str, ...],
    report_file: str | None,
    verbosity: Verbosity,
) -> None:
    """Is a model better than another on the same LABELS? Paired statistics of the per-row losses.

    The first predictions file is the baseline (or, with --baseline-losses, the losses an
    earlier run saved with -o); each later one is a candidate compared
    with it row by row (d = candidate loss - baseline loss; lower loss is better):
    mean difference with its BCa bootstrap interval (rows resampled together), paired
    t-test and Wilcoxon signed-rank p-values, Cohen's d_z, rows better/worse/tied, and
    a verdict (the interval is below 0, above 0, or contains it). With 3 or more models
    the t-test p-values are also Holm-adjusted. The tail risk shows what a mean hides:
    percentiles of d, the share of rows worse by more than --worse-by, the --top K rows
    made worst, and a histogram of d. --group-by compares each group of rows too. Three
    gates exit with status 3 when they fail (each says what it tests), overall and per
    group: --fail-if-worse, --require-non-inferior, --max-worse-share.
    Every input is read as 'compute' reads it (a folder, glob or prefix of shards too).

    \b
    Examples:
      cosloss compare labels.npy base.npy tuned.npy
      cosloss compare labels.parquet a.parquet b.parquet --names old,new --json | jq '.comparisons'
      cosloss compare labels.npy base.npy new.npy --fail-if-worse 0 --max-worse-share 0.02 -q   # CI gate
      cosloss compare labels.csv a.csv b.csv --axis 1 -o losses.parquet
      cosloss compare labels.parquet a.parquet shuffled.parquet --join-on id
      cosloss compare labels.parquet new.parquet --baseline-losses yesterday.parquet --id-column id
      cosloss compare labels.parquet a.parquet b.parquet --group-by lang --max-worse-share 0.05
    """
    env = environment(ctx)
    with user_errors(verbosity.debug):
        refuse_interactive_stdin([labels, *predictions], env)
        computation = computation._replace(strict=strict)
        if baseline_column is not None and baseline_losses is None:
            raise InputUsageError("--baseline-column needs --baseline-losses FILE")
        _check_layout(runs, predictions, baseline_losses, output_file, jobs)
        if runs and group_by:
            raise InputUsageError("--group-by compares the groups of one run: it cannot be used with --runs")
        from ..compare.models import CompareRequest, GateOptions, TailOptions

        request = CompareRequest(
            read_options=inputs.labels,
            prediction_read_options=inputs.predictions,
            options=computation,
            confidence=bootstrap.confidence,
            resamples=bootstrap.resamples,
            seed=bootstrap.seed,
            tail=TailOptions(worse_by, distribution.top, distribution.bins or 0),
            gates=GateOptions(fail_if_worse, require_non_inferior, max_worse_share),
        )
        if runs:
            from .runs import run_many

            failed, gates_failed = run_many(
                labels, labels_name, request, names, output, verbosity, env, jobs, report_file=report_file
            )
            if failed:
                sys.exit(int(ExitStatus.DATA_ERROR))
            if gates_failed:
                sys.exit(int(ExitStatus.THRESHOLD_EXCEEDED))
            return
        result = run_compare(
            labels,
            list(predictions),
            inputs,
            request,
            names,
            output,
            output_file,
            verbosity,
            env,
            baseline=(baseline_losses, baseline_column),
            report_file=report_file,
            group_by=group_by,
        )
    if report_failed_gates(result):
        sys.exit(int(ExitStatus.THRESHOLD_EXCEEDED))


def _check_layout(
    runs: bool,
    predictions: tuple[str, ...],
    baseline_losses: str | None,
    output_file: str | None,
    jobs: int | None,
) -> None:
    """``--runs`` takes a folder and nothing else positional; without it, predictions files are needed."""
    if runs:
        if predictions:
            raise InputUsageError(
                "with --runs, give only the folder of runs: each run folder holds its labels and models"
            )
        for given, name in ((baseline_losses, "--baseline-losses"), (output_file, "--output")):
            if given is not None:
                raise InputUsageError(f"{name} compares one run: it cannot be used with --runs")
    elif not predictions:
        raise InputUsageError(
            "give the predictions files after the labels (a baseline and a candidate)",
            hint="or --runs with a folder of runs",
        )
    elif jobs is not None:
        raise InputUsageError("--jobs spreads runs over processes: it needs --runs")


def run_compare(
    labels: str,
    predictions: list[str],
    inputs: Inputs,
    request: CompareRequest,
    names: list[str] | None,
    output: OutputChoice,
    output_file: str | None,
    verbosity: Verbosity,
    env: Environment,
    *,
    baseline: tuple[str | None, str | None] = (None, None),
    report_file: str | None = None,
    group_by: tuple[str, ...] = (),
) -> CompareResult:
    """The body of ``compare``: read every model, compare, warn, write."""
    if output_file or report_file:
        from ..render.report import check_outputs_first

        check_outputs_first(output_file, report_file, [labels, *predictions, baseline[0]])
    from ..compare.models import compare_files

    with _progress(labels, predictions, inputs, verbosity, env) as progress:
        result = compare_files(
            labels,
            predictions,
            names=names,
            progress=progress,
            baseline_losses=baseline[0],
            baseline_column=baseline[1],
            group_by=group_by,
            **request._asdict(),
        )
    print_notes(result.source_notes, verbosity.quiet)
    _warn(result, verbosity.quiet)
    if output_file:
        from ..render.writers import write_losses_file

        write_losses_file(
            output_file, result, storage_options=inputs.labels.storage_options, registry=COMPARE_FILE_WRITERS
        )
    if report_file:
        from ..compare.report import compare_report
        from ..render.writers import write_text_file

        page = compare_report(result, result.to_json_dict(include_losses=False))
        write_text_file(report_file, page, storage_options=inputs.labels.storage_options)
    emit(COMPARE_WRITERS, output.format, result, view_for(env, losses=output.losses, groups=group_by))
    return result


def _progress(
    labels: str, predictions: list[str], inputs: Inputs, verbosity: Verbosity, env: Environment
) -> AbstractContextManager[Callable[[int], None] | None]:
    """A bar over every model's rows, on a terminal only and for inputs big enough to wait for (as compute)."""
    if not env.stderr_isatty or verbosity.quiet or labels == "-":
        return nullcontext()
    from ..render.progress import MIN_BYTES_FOR_PROGRESS, row_progress

    size = sum(os.path.getsize(path) for path in (labels, *predictions) if os.path.isfile(path))
    if size < MIN_BYTES_FOR_PROGRESS:
        return nullcontext()
    rows = open_source(labels, inputs.labels).shape[0]  # the header only: blocks are read lazily
    return _per_model(row_progress(True, rows, f"comparing {len(predictions)} models"), len(predictions))


@contextmanager
def _per_model(
    bar: AbstractContextManager[Callable[[int], None] | None], models: int
) -> Iterator[Callable[[int], None] | None]:
    """The bar counts the labels' rows: each model reads every row, so a row is done once per model."""
    with bar as advance:
        if advance is None:
            yield None
            return
        read = 0

        def advance_rows(rows: int) -> None:
            nonlocal read
            before = read // models
            read += rows
            advance(read // models - before)

        yield advance_rows


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


#: What each gate's failure line says it tested.
GATE_WORDING = {
    "fail_if_worse": "shown worse than {baseline} by more than {bound:g}: "
    "the {level} interval of {what} starts at {value}",
    "require_non_inferior": "not shown non-inferior within {bound:g}: the {level} interval of {what} reaches {value}",
    "max_worse_share": "{value} of its rows are worse by more than {worse_by:g}, above {bound:.2%}",
}

#: The option of each gate, for the failure lines.
GATE_OPTIONS = {
    "fail_if_worse": "--fail-if-worse",
    "require_non_inferior": "--require-non-inferior",
    "max_worse_share": "--max-worse-share",
}


def report_failed_gates(result: CompareResult) -> bool:
    """True, with one line on stderr per failed gate, when any candidate failed a gate.

    A gate whose figure could not be computed (too few rows, NaN losses) fails and says so.
    """
    failed = False
    level = f"{result.settings.confidence * 100:g}%"
    for item in result.comparisons:
        for gate in item.gates:
            if gate.passed:
                continue
            failed = True
            if gate.value is None:
                click.echo(
                    f"cosloss: {item.candidate}: {GATE_OPTIONS[gate.rule]} {gate.bound:g} failed: "
                    "its figure could not be computed (too few rows or NaN losses)",
                    err=True,
                )
                continue
            value = f"{gate.value:.2%}" if gate.rule == "max_worse_share" else f"{gate.value:.6g}"
            text = GATE_WORDING[gate.rule].format(
                baseline=item.baseline,
                bound=gate.bound,
                level=level,
                what=f"mean({item.candidate} - {item.baseline})",
                value=value,
                worse_by=result.tail_options.worse_by,
            )
            click.echo(f"cosloss: {item.candidate}: {text} ({GATE_OPTIONS[gate.rule]})", err=True)
    for group in result.groups or ():
        where = ", ".join(f"{name}={'null' if value is None else repr(value)}" for name, value in group["key"].items())
        for entry in group["comparisons"]:
            for gate in entry["gates"]:
                if gate["passed"]:
                    continue
                failed = True
                candidate = entry["candidate"]
                if gate["value"] is None:
                    click.echo(
                        f"cosloss: {candidate} in group {where}: {GATE_OPTIONS[gate['rule']]} {gate['bound']:g} "
                        "failed: its figure could not be computed (too few rows or NaN losses)",
                        err=True,
                    )
                    continue
                value = gate["value"]
                shown = f"{value:.2%}" if gate["rule"] == "max_worse_share" else f"{value:.6g}"
                text = GATE_WORDING[gate["rule"]].format(
                    baseline=result.baseline,
                    bound=gate["bound"],
                    level=level,
                    what=f"mean({candidate} - {result.baseline})",
                    value=shown,
                    worse_by=result.tail_options.worse_by,
                )
                click.echo(f"cosloss: {candidate} in group {where}: {text} ({GATE_OPTIONS[gate['rule']]})", err=True)
    return failed
