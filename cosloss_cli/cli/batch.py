"""The ``cosloss batch`` command: every pair of two mirrored folders (or of a manifest).

A thin click layer: pairing and the parallel runner are in :mod:`cosloss_cli.batch`,
the output formats in :mod:`cosloss_cli.batch.render`. Options shared with ``compute``
come from the same decorators in :mod:`cosloss_cli.cli.options`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, TextIO, TypeVar

import click

from ..base.shown import scrub, shown_path
from ..base.terminal import Environment
from ..batch import (
    MAX_LISTED,
    BatchRunner,
    Discovery,
    Executor,
    LocalPool,
    Overall,
    Pair,
    PairResult,
    PairTask,
    Report,
    default_jobs,
    discover_pairs,
    local_executor,
    overall,
    read_manifest,
)
from ..batch.pairing import is_remote, is_safe_name
from ..errors import DataError, OutputError, OutputUsageError
from ..io.guard import check_output_files
from ..io.storage import filesystem, is_url
from ..render.output import (
    BATCH_WRITERS,
    OUTPUT_DIR_FORMATS,
    PAIR_ENCODERS,
    PAIR_WRITERS,
    View,
    emit,
    stdout,
    view_for,
    writer,
)
from ..status import ExitStatus
from .edge import Terminated, check_threshold, environment, print_notes, user_errors, warn, warn_counts
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
    jobs_option,
    min_matched_option,
    output_options,
    reading_options,
    threshold_option,
    weight_options,
)

if TYPE_CHECKING:
    from ..batch.cluster import DaskExecutor
    from ..batch.groups import PooledGroups
    from ..batch.split import SplitRows
    from ..pipeline.result import ComputeOptions
    from ..stats.figures import FigureOptions
    from ..stats.pooled import PooledLosses

F = TypeVar("F", bound=Callable[..., Any])


class Cluster(NamedTuple):
    """Where the pairs run: this machine (both None), or a Dask scheduler's address or file."""

    scheduler: str | None = None
    scheduler_file: str | None = None

    @property
    def remote(self) -> bool:
        return bool(self.scheduler or self.scheduler_file)


#: Pairs run on this machine.
LOCAL = Cluster()


def cluster_options(command: F) -> F:
    """``--scheduler`` / ``--scheduler-file``: run the pairs on a Dask cluster; the command gets ``cluster``."""

    @functools.wraps(command)
    def with_cluster(*args: Any, **kwargs: Any) -> Any:
        kwargs["cluster"] = Cluster(kwargs.pop("scheduler"), kwargs.pop("scheduler_file"))
        return command(*args, **kwargs)

    options = [
        click.option(
            "--scheduler",
            metavar="tcp://HOST:PORT",
            help="Run the pairs on this Dask scheduler's workers (they read the inputs themselves).",
        ),
        click.option(
            "--scheduler-file",
            metavar="FILE",
            help="Same, with the address from a scheduler file (dask scheduler --scheduler-file FILE).",
        ),
    ]
    for option in reversed(options):
        with_cluster = option(with_cluster)
    return with_cluster  # type: ignore[return-value]


class Selection(NamedTuple):
    """Which pairs to run: two folders (with ``--recursive``/``--pattern``) or a manifest."""

    labels_dir: str | None
    predictions_dir: str | None
    manifest: str | None
    recursive: bool
    patterns: tuple[str, ...]
    strict: bool


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
@click.option(
    "--strict",
    is_flag=True,
    help="Any file without a partner is an error (exit 1) before work starts; with --join-on, so is a row "
    "without a partner id (that pair fails).",
)
@min_matched_option(1.0, "; a pair below it fails: unmatched rows in a batch are a layout error")
@reading_options
@weight_options(files=False)
@distribution_options(best=False, bins=False)
@bootstrap_options(interval="each group's mean loss (--group-by)")
@threshold_option
@jobs_option("Worker processes, i.e. pairs in flight at most")
@click.option("--fail-fast", is_flag=True, help="Stop starting new pairs after the first failed pair.")
@cluster_options
@output_options(
    BATCH_WRITERS,
    "a line per pair, as each finishes; per group at the end with --group-by",
    losses=False,
    losses_help="JSON/NDJSON: add each pair's per-vector losses (--no-losses: only the summaries).",
)
@click.option(
    "--output-dir",
    metavar="DIR",
    help="Write each ok pair's per-vector losses to DIR/<name>.<ext> (subfolders mirrored).",
)
@click.option(
    "--output-format",
    "file_format",
    type=click.Choice(tuple(OUTPUT_DIR_FORMATS)),
    help="File format of --output-dir files  [default: csv]",
)
@final_options()
@click.pass_context
def batch(
    ctx: click.Context,
    /,
    labels_dir: str | None,
    predictions_dir: str | None,
    *,
    manifest: str | None,
    recursive: bool,
    patterns: tuple[str, ...],
    strict: bool,
    min_matched: float,
    inputs: Inputs,
    computation: ComputeOptions,
    weighting: Weighting,
    distribution: Distribution,
    bootstrap: Bootstrap,
    fail_above: float | None,
    jobs: int | None,
    fail_fast: bool,
    cluster: Cluster,
    output: OutputChoice,
    output_dir: str | None,
    file_format: str | None,
    group_by: tuple[str, ...],
    report_file: str | None,
    verbosity: Verbosity,
) -> None:
    """Loss of every pair of files in LABELS_DIR and PREDICTIONS_DIR, in parallel.

    Files pair up when their paths relative to the two folders are equal without the
    format extension: labels/run1/a.npy pairs with predictions/run1/a.parquet as
    "run1/a". Hidden files are skipped; files without a partner are listed.
    A failed pair is reported with its error and the others still run (exit 1).
    --fail-above applies to the pooled mean over every loss of every ok pair.
    Each pair's std is the population standard deviation (ddof=0).
    Percentiles are per pair and pooled over every loss (exact); --top K lists the
    K largest losses over all pairs; --weight-column NAME weights each pair by its
    labels file's column. --group-by NAME gives each group's figures, the interval of its
    mean too (--confidence), over every pair's rows.

    \b
    Examples:
      cosloss batch labels/ predictions/ -r
      cosloss batch labels/ preds/ --format ndjson | jq -r 'select(.mean > 0.2) | .name'
      cosloss batch --manifest pairs.csv --json | jq .overall.mean
      cosloss batch labels/ preds/ --output-dir losses/ --output-format parquet
      cosloss batch labels/ preds/ --fail-above 0.1 -q        # CI gate
      cosloss batch labels/ preds/ --top 10 --weight-column w --reduction mean
      cosloss batch labels/ preds/ --group-by lang --json | jq '.overall.groups'
      cosloss batch labels/ preds/ --report batch.html
      cosloss batch s3://bucket/labels s3://bucket/preds -r --scheduler tcp://10.0.0.5:8786
    """
    env = environment(ctx)
    selection = Selection(labels_dir, predictions_dir, manifest, recursive, patterns, strict)
    with user_errors(verbosity.debug):
        _check_usage(selection, output, output_dir, file_format, verbosity.quiet)
        _check_cluster_usage(cluster, jobs)
        _check_group_usage(group_by, output, bootstrap, verbosity.quiet)
        figures = _figure_options(weighting, distribution)
        status = run_batch(
            selection,
            inputs,
            computation._replace(min_matched=min_matched),
            fail_above,
            jobs,
            fail_fast,
            output,
            output_dir,
            file_format,
            verbosity,
            env,
            cluster,
            figures=figures,
            group_by=group_by,
            report_file=report_file,
            bootstrap=bootstrap,
        )
    if status != ExitStatus.OK:
        sys.exit(int(status))


def _write_report(
    path: str,
    report: Report,
    pooled: PooledLosses,
    view: View,
    storage_options: dict[str, Any] | None,
    confidence: float,
) -> None:
    """``--report``: the page of the batch, from its JSON document (without losses) and the pooled losses;
    ``confidence``: the level of the groups' intervals (the document does not hold it)."""
    import io
    import json

    from ..batch.render import write_json
    from ..batch.report import batch_report, pooled_histogram
    from ..render.writers import write_text_file

    text = io.StringIO()
    write_json(report._replace(encoded=None), text, view._replace(losses=False))
    page = batch_report(json.loads(text.getvalue()), pooled_histogram(pooled.chunks), confidence)
    write_text_file(path, page, storage_options=storage_options)


def _figure_options(weighting: Weighting, distribution: Distribution) -> FigureOptions:
    """Each pair's figures: weights from a column of its labels, the reduction, its worst rows; no interval."""
    from ..stats.figures import FigureOptions, check_figure_options

    return check_figure_options(
        FigureOptions(
            weight_column=weighting.weight_column,
            reduction=weighting.reduction,
            top=distribution.top,
            confidence=0,
        )
    )


def run_batch(
    selection: Selection,
    inputs: Inputs,
    computation: ComputeOptions,
    fail_above: float | None,
    jobs: int | None,
    fail_fast: bool,
    output: OutputChoice,
    output_dir: str | None,
    file_format: str | None,
    verbosity: Verbosity,
    env: Environment,
    cluster: Cluster = LOCAL,
    figures: FigureOptions | None = None,
    group_by: tuple[str, ...] = (),
    report_file: str | None = None,
    bootstrap: Bootstrap | None = None,
) -> int:
    """The body of ``batch``; returns the exit status (``figures``: each pair's, see :func:`_figure_options`).

    ``bootstrap``: how each pooled group's interval is drawn (``--group-by``; the default
    options when None).
    """
    quiet = verbosity.quiet
    if report_file:
        from ..render.report import check_outputs_first

        check_outputs_first(None, report_file, [selection.labels_dir, selection.predictions_dir, selection.manifest])
    storage_options = inputs.labels.storage_options
    cluster_executor = _cluster_executor(cluster)  # a wrong address is an error before the listing
    discovery = _find_pairs(selection, inputs, output_dir)
    _report_unmatched(discovery, selection.strict, quiet)
    if not discovery.pairs:
        raise DataError(_nothing_found(selection))

    outputs = None
    if output_dir:
        _check_output_dir(output_dir, discovery, file_format or "csv", selection.manifest)
        _prepare_output_dir(output_dir, storage_options)
        outputs = OutputFiles(output_dir, discovery.pairs, file_format or "csv")
    view = view_for(
        env,
        losses=output.losses and output.format in ("json", "ndjson"),
        with_output=output_dir is not None,
        groups=group_by,
    )
    task = PairTask(
        label_options=inputs.labels,
        prediction_options=inputs.predictions,
        compute=computation._replace(strict=selection.strict),
        keep_losses=view.losses,
        output_dir=output_dir,
        output_format=file_format or "csv",
        storage_options=storage_options,
        figures=figures,
        pool_losses=True,
        group_by=group_by,
    )
    jobs = min(jobs or default_jobs(), len(discovery.pairs))
    if cluster_executor is not None:
        cluster_executor.total_pairs = len(discovery.pairs)
    executor = cluster_executor or local_executor(jobs, len(discovery.pairs))
    if jobs > 1 or cluster.remote:
        task = task._replace(compute=task.compute._replace(threads=1))  # the workers use the cores

    from ..batch.split import SplitRows
    from ..stats.pooled import PooledLosses

    out = stdout()  # the progress bar may redirect sys.stdout while it is drawn
    with contextlib.ExitStack() as stack:
        if outputs is not None:  # a killed worker's temporary files go when the run ends, however it ends
            stack.callback(outputs.remove_temporaries)
        pooled = stack.enter_context(contextlib.closing(PooledLosses()))  # its files go with the report
        groups = None
        if group_by:
            from ..batch.groups import PooledGroups

            groups = stack.enter_context(contextlib.closing(PooledGroups()))
        if isinstance(executor, LocalPool):  # the workers write the pairs' losses to files there
            task = task._replace(spool_dir=pooled.spool_folder())
        encoded: dict[Pair, str] = {}
        split = SplitRows()
        results, summary, runner, percentiles = _run_pairs(
            discovery,
            task,
            executor,
            pooled,
            split,
            fail_fast,
            figures,
            env,
            verbosity,
            output,
            view,
            out,
            encoded,
            outputs,
            groups,
            bootstrap or Bootstrap(0.95, None, 0),
        )
        if task.compute.join_on:  # rows left out that have a partner in another pair's files: refused
            for side, paths, options in (
                ("labels", discovery.unmatched_labels, inputs.labels),
                ("predictions", discovery.unmatched_predictions, inputs.predictions),
            ):
                for path in paths:
                    split.add_unpaired(path, side, options, task.compute.join_on)
        split.check(task.compute.join_on)
        warn_counts(summary.zero_vectors, summary.omitted, quiet)
        _warn_unmatched_rows(results, quiet)
        report = Report(results, summary, discovery, percentiles, encoded)
        emit(BATCH_WRITERS, output.format, report, view, out)
        if report_file:
            confidence = (bootstrap or Bootstrap(0.95, None, 0)).confidence
            _write_report(report_file, report, pooled, view, storage_options, confidence)

    failed = [result for result in results if not result.ok]
    if runner.stopped_early:
        click.echo(f"cosloss: --fail-fast: stopped after a failure; {summary.skipped} pair(s) not run", err=True)
    exceeded = summary.ok > 0 and check_threshold(summary.mean, fail_above, "pooled mean loss")
    if failed:
        first = failed[0]
        message = f"{len(failed)} of {len(results)} pair(s) failed; {first.name}: {first.error}"
        click.echo(f"Error: {scrub(message)}", err=True)
        return int(ExitStatus.DATA_ERROR)
    return int(ExitStatus.THRESHOLD_EXCEEDED) if exceeded else int(ExitStatus.OK)


def _run_pairs(
    discovery: Discovery,
    task: PairTask,
    executor: Executor,
    pooled: PooledLosses,
    split: SplitRows,
    fail_fast: bool,
    figures: FigureOptions | None,
    env: Environment,
    verbosity: Verbosity,
    output: OutputChoice,
    view: View,
    out: TextIO,
    encoded: dict[Pair, str],
    outputs: OutputFiles | None = None,
    groups: PooledGroups | None = None,
    bootstrap: Bootstrap | None = None,
) -> tuple[list[PairResult], Overall, BatchRunner, Callable[[], dict[str, float]]]:
    """Run the pairs (progress bar, NDJSON lines as they finish): results, overall figures, runner.

    And the pooled percentiles, computed when asked for. For ``--format json`` each pair's
    object is encoded into ``encoded`` as it finishes, while this process waits on the
    workers rather than alone at the end. ``groups`` takes the pairs' groups (``--group-by``), whose pooled
    figures are drawn with ``bootstrap``.
    """
    from ..render.progress import pair_progress

    with pair_progress(env.stderr_isatty and not verbosity.quiet, len(discovery.pairs)) as advance:
        # With --group-by, NDJSON is a line per pooled group, written at the end.
        write_pair = writer(PAIR_WRITERS, output.format) if output.format in PAIR_WRITERS and not view.groups else None
        encode = writer(PAIR_ENCODERS, output.format) if output.format in PAIR_ENCODERS else None

        def on_result(result: PairResult) -> None:
            if write_pair is not None:
                try:
                    write_pair(result, out, view)
                except BrokenPipeError:
                    raise
                except OSError as exc:
                    raise OutputError(f"cannot write the results to stdout: {exc.strerror or exc}") from None
            if encode is not None:
                encoded[result.pair] = encode(result, view)
            if advance is not None:
                advance(result.rows)

        runner = BatchRunner(
            discovery.pairs,
            task,
            executor,
            fail_fast=fail_fast,
            on_result=on_result,
            pooled=pooled,
            split=split,
            groups=groups,
        )
        try:
            results = runner.run()
            percentiles = pooled.percentiles
            found = None
            if groups is not None:
                draw = bootstrap or Bootstrap(0.95, None, 0)
                found, notes = groups.figures(confidence=draw.confidence, resamples=draw.resamples, seed=draw.seed)
                print_notes(notes, verbosity.quiet)
            top = figures.top if figures is not None else 0
            summary = overall(results, len(discovery.pairs), top=top, groups=found)
        except KeyboardInterrupt:
            _stopped("Interrupted", runner, ExitStatus.INTERRUPTED, outputs)
        except Terminated:
            _stopped("Terminated", runner, ExitStatus.TERMINATED, outputs)
    return results, summary, runner, percentiles


def _check_usage(
    selection: Selection, output: OutputChoice, output_dir: str | None, file_format: str | None, quiet: bool
) -> None:
    if selection.manifest:
        if selection.labels_dir or selection.predictions_dir:
            raise click.UsageError("give either LABELS_DIR PREDICTIONS_DIR or --manifest, not both")
        if selection.recursive or selection.patterns:
            raise click.UsageError("--recursive and --pattern select files in folders; they do not apply to --manifest")
    elif not (selection.labels_dir and selection.predictions_dir):
        raise click.UsageError("give two folders, LABELS_DIR and PREDICTIONS_DIR, or --manifest FILE.csv")
    if file_format and not output_dir:
        raise click.UsageError("--output-format applies to --output-dir files; add --output-dir DIR")
    if output.losses and output.format not in ("json", "ndjson"):
        warn("--losses applies to --format json and ndjson; ignored", quiet)


def _check_group_usage(group_by: tuple[str, ...], output: OutputChoice, bootstrap: Bootstrap, quiet: bool) -> None:
    """Options that say nothing here: the groups' interval without groups, pair losses in a line per group."""
    if not group_by and bootstrap != Bootstrap(0.95, None, 0):
        warn("--confidence, --resamples and --seed draw the interval of each --group-by group; ignored", quiet)
    if group_by and output.losses and output.format == "ndjson":
        warn("--losses: with --group-by, NDJSON is a line per group (--output-dir writes the losses); ignored", quiet)


def _check_cluster_usage(cluster: Cluster, jobs: int | None) -> None:
    if cluster.scheduler and cluster.scheduler_file:
        raise click.UsageError("give either --scheduler or --scheduler-file, not both")
    if cluster.remote and jobs is not None:
        raise click.UsageError("--jobs sets local worker processes; on a cluster the workers' threads decide")


def _cluster_executor(cluster: Cluster) -> DaskExecutor | None:
    """The Dask executor, connected, for ``--scheduler``/``--scheduler-file``; None to run here."""
    if not cluster.remote:
        return None
    from ..batch.cluster import DaskExecutor

    executor = DaskExecutor(cluster.scheduler, cluster.scheduler_file)
    executor.connect()
    return executor


def _find_pairs(selection: Selection, inputs: Inputs, output_dir: str | None) -> Discovery:
    storage_options = inputs.labels.storage_options
    if selection.manifest:
        return Discovery(pairs=read_manifest(selection.manifest, storage_options))
    assert selection.labels_dir is not None and selection.predictions_dir is not None
    return discover_pairs(
        selection.labels_dir,
        selection.predictions_dir,
        recursive=selection.recursive,
        patterns=selection.patterns,
        labels_format=inputs.labels.input_format,
        predictions_format=inputs.predictions.input_format,
        exclude=[output_dir] if output_dir else [],
        storage_options=storage_options,
    )


def _warn_unmatched_rows(results: list[PairResult], quiet: bool) -> None:
    """With --join-on: one warning line for the pairs that left rows out (their JSON says how many)."""
    left_out = [result for result in results if result.ok and result.unmatched]  # failed ones say why
    if left_out:
        names = ", ".join(result.name for result in left_out[:3]) + (", ..." if len(left_out) > 3 else "")
        warn(f"{len(left_out)} pair(s) left out rows without a partner id (--join-on): {names}", quiet)


def _report_unmatched(discovery: Discovery, strict: bool, quiet: bool) -> None:
    """Warn about files without a partner; with ``--strict`` they are an error."""
    if discovery.skipped_folders:
        shown = ", ".join(discovery.skipped_folders[:3]) + (" ..." if len(discovery.skipped_folders) > 3 else "")
        warn(f"{len(discovery.skipped_folders)} subfolder(s) not searched ({shown}): pass -r to include them", quiet)
    lines = [f"{shown_path(path)} (no predictions file)" for path in discovery.unmatched_labels]
    lines += [f"{shown_path(path)} (no labels file)" for path in discovery.unmatched_predictions]
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


def _nothing_found(selection: Selection) -> str:
    if selection.manifest:
        return f"{selection.manifest}: the manifest lists no pairs"
    where = f"no pairs of files found in {selection.labels_dir} and {selection.predictions_dir}"
    details = []
    if selection.patterns:
        details.append("patterns " + ", ".join(repr(p) for p in selection.patterns))
    else:
        details.append("any data file (.csv .tsv .npy .npz .parquet ...)")
    details.append("recursive" if selection.recursive else "top level only (-r to descend into subfolders)")
    return f"{where} (searched: {'; '.join(details)})"


def _check_output_dir(output_dir: str, discovery: Discovery, extension: str, manifest: str | None) -> None:
    """Refuse (exit 2) an ``--output-dir`` where a pair's file would replace an input, before any is read."""
    if not is_remote(output_dir) and not os.path.isdir(output_dir):
        return  # a folder still to be made holds no input
    targets = _targets(output_dir, discovery.pairs, extension).values()
    inputs = [manifest, *(pair.labels for pair in discovery.pairs), *(pair.predictions for pair in discovery.pairs)]
    check_output_files(targets, inputs)


def _targets(output_dir: str, pairs: list[Pair], extension: str) -> dict[Pair, str]:
    """Each pair's ``--output-dir`` file (:func:`~cosloss_cli.batch.pairing.output_path`, without its checks)."""
    remote = is_remote(output_dir)
    targets = {}
    for pair in pairs:
        if is_safe_name(pair.name):  # an unsafe one fails as its pair, with its own error
            parts = [output_dir.rstrip("/"), pair.name] if remote else [output_dir, *pair.name.split("/")]
            targets[pair] = ("/" if remote else os.sep).join(parts) + "." + extension
    return targets


class OutputFiles:
    """The files of a local ``--output-dir``, as they were when the run started.

    So that after an interrupt the pairs whose file this run wrote whole can be counted
    (every file is renamed into place whole: a new one has a new inode or times), and so
    that the temporary files a killed worker left are removed when the run ends.
    """

    def __init__(self, output_dir: str, pairs: list[Pair], extension: str):
        self.targets = {} if is_remote(output_dir) else _targets(output_dir, pairs, extension)
        self.before = {target: _stamp(target) for target in self.targets.values()}

    def written_since_start(self, pairs: set[Pair]) -> int:
        """How many of ``pairs`` have a file this run wrote."""
        found = 0
        for pair in pairs:
            target = self.targets.get(pair)
            if target is not None and (stamp := _stamp(target)) is not None and stamp != self.before[target]:
                found += 1
        return found

    def remove_temporaries(self) -> None:
        from ..render.writers import remove_temporaries

        remove_temporaries(self.targets.values())


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_ctime_ns


def _prepare_output_dir(output_dir: str, storage_options: dict[str, Any] | None) -> None:
    """A local output folder is created now; a URL only needs its backend (objects need no folders)."""
    if "://" in output_dir:
        if is_url(output_dir):
            filesystem(output_dir, storage_options)  # a missing backend names its extra before the work
            return
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputUsageError("--output-dir exists and is not a folder", path=output_dir)
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder: {exc.strerror or exc}", path=output_dir) from None


def _stopped(what: str, runner: BatchRunner, status: ExitStatus, outputs: OutputFiles | None = None) -> NoReturn:
    """After Ctrl-C or SIGTERM: the workers are gone; say how far the batch got.

    A pair counts as finished when its result came back, or when its ``--output-dir``
    file was written whole by this run although its result did not (a worker stopped
    before sending the results of the task it was in).
    """
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    reported = {result.pair for result in runner.results}
    done = runner.done + (outputs.written_since_start(set(runner.pairs) - reported) if outputs is not None else 0)
    click.echo(f"{what}: {done} of {runner.total} pair(s) finished.", err=True)
    sys.exit(int(status))
