"""The ``cosloss`` command: a thin click layer over the pipeline and the renderers.

This is the edge where domain errors become one ``Error: ...`` line on stderr and an
exit status (see :mod:`cosloss_cli.status`); nothing below it prints or exits.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NoReturn

import click

from . import __version__
from .errors import CoslossError, InputUsageError
from .options import CONTEXT_SETTINGS, common_options, compute_options, format_options, input_options
from .status import ExitStatus
from .terminal import Environment


class Terminated(BaseException):
    """Raised from the SIGTERM handler so cleanup runs as for Ctrl-C."""


class LazyGroup(click.Group):
    """A group whose heavier subcommands are imported only when they are used.

    ``cosloss compute`` and ``cosloss --help`` should not pay for importing ``batch``
    and its process pool; ``lazy`` maps a command name to ``module:attribute``.
    """

    lazy: dict[str, str] = {"batch": "cosloss_cli.batch_command:batch"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            import importlib

            module_name, attribute = self.lazy[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module_name), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


def print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``, with which kernel sums the vectors (the C one is built only where a compiler was)."""
    if not value or ctx.resilient_parsing:
        return
    from .core import native_kernel_in_use

    kernel = "C kernel" if native_kernel_in_use() else "numpy kernel; the C kernel is not built or COSLOSS_NATIVE=0"
    click.echo(f"cosloss, version {__version__} ({kernel})")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--version",
    "-V",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=print_version,
    help="Show the version and exit.",
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Cosine distance loss between label and prediction vectors.

    The loss of a pair of vectors is 1 - cos(L, P), as TensorFlow's
    tf.compat.v1.losses.cosine_distance computes it on tf.nn.l2_normalize'd
    inputs: 0 for the same direction, 1 for orthogonal or zero vectors, 2 for
    opposite directions.

    \b
    Examples:
      cosloss compute labels.csv predictions.csv --axis 1
      cosloss compute labels.npy preds.parquet --json | jq .mean
      cosloss batch labels/ predictions/ --format ndjson
    """
    ctx.ensure_object(dict)


def environment(ctx: click.Context) -> Environment:
    """The terminal environment: detected, unless a test put a fake in ``ctx.obj``."""
    obj = ctx.find_root().obj
    fake = obj.get("environment") if isinstance(obj, dict) else None
    return fake if isinstance(fake, Environment) else Environment.detect()


def chosen_format(params: dict[str, Any]) -> str:
    """The output format of ``--format``, with ``--json`` taking precedence."""
    return "json" if params["as_json"] else str(params["output_format"])


def fail(message: str, status: ExitStatus) -> NoReturn:
    """Print one ``Error:`` line to stderr and exit with ``status``."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(int(status))


def warn(message: str, quiet: bool) -> None:
    """A warning on stderr, unless ``--quiet``."""
    if not quiet:
        click.echo(f"Warning: {message}", err=True)


def print_notes(notes: tuple[str, ...], quiet: bool) -> None:
    """What the readers decided for the user (id columns, headers, column order): one line each."""
    if not quiet:
        for note in notes:
            click.echo(f"Note: {note}", err=True)


def warn_counts(zero_vectors: int, omitted: int, quiet: bool) -> None:
    """The warnings every command gives about zero vectors and omitted NaN/Inf vectors."""
    if zero_vectors:
        warn(f"{zero_vectors} vector pair(s) with a zero vector: loss 1 by definition", quiet)
    if omitted:
        warn(f"{omitted} vector pair(s) with NaN/Inf omitted (--nan-policy omit)", quiet)


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn every failure into an ``Error:`` line and the right exit status."""
    try:
        yield
    except CoslossError as exc:
        if debug:
            _print_traceback()
        fail(str(exc), exc.exit_status)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(int(ExitStatus.INTERRUPTED))
    except Terminated:
        click.echo("Terminated.", err=True)
        sys.exit(int(ExitStatus.TERMINATED))
    except BrokenPipeError:
        silence_stdout()
        sys.exit(int(ExitStatus.OK))
    except MemoryError:
        if debug:
            _print_traceback()
        fail("out of memory (the losses take 8 bytes per vector pair: split the input)", ExitStatus.DATA_ERROR)
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as exc:  # a bug: say so in one line, traceback only with --debug
        if debug:
            _print_traceback()
        fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug and report it)",
            ExitStatus.DATA_ERROR,
        )


def _print_traceback() -> None:
    import traceback  # only --debug needs it

    traceback.print_exc()


def silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def refuse_interactive_stdin(paths: list[str], env: Environment) -> None:
    """Reading '-' from a terminal would hang waiting for typing: refuse (csvkit does)."""
    if "-" in paths and env.stdin_isatty:
        raise InputUsageError(
            "'-' reads from stdin, but stdin is a terminal",
            hint="pipe data in, e.g.: cat preds.npy | cosloss compute labels.npy - --predictions-format npy",
        )


def read_options_for(side: str, params: dict[str, Any]) -> Any:
    """ReadOptions for the labels or predictions input, from the shared input options."""
    from .readers import ReadOptions

    return ReadOptions(
        input_format=params.get(f"{side}_format") or params.get("input_format"),
        key=params.get("key"),
        header=params.get("header"),
        id_column=params.get("id_column"),
        columns=params.get("columns"),
        delimiter=params.get("delimiter"),
        decimal=params.get("decimal"),
        detect_ids=params.get("detect_ids", True),
    )


def compute_options_from(params: dict[str, Any]) -> Any:
    from .pipeline import ComputeOptions

    return ComputeOptions(
        axis=params["axis"], eps=params["eps"], normalize=params["normalize"], nan_policy=params["nan_policy"]
    )


def check_threshold(mean: float, fail_above: float | None, what: str = "mean loss") -> bool:
    """True (and a message on stderr) when ``--fail-above`` is exceeded; NaN exceeds."""
    if fail_above is None:
        return False
    if mean != mean or mean > fail_above:
        click.echo(f"cosloss: {what} {mean:.10g} is above --fail-above {fail_above:g}", err=True)
        return True
    return False


@cli.command(context_settings=CONTEXT_SETTINGS)
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
    from .pipeline import compute_sources, open_pair

    output = params.get("output")
    if output:
        from .writers import output_format_for

        output_format_for(output)
    label_options = read_options_for("labels", params)
    label_source, prediction_source = open_pair(
        labels, predictions, label_options, read_options_for("predictions", params)
    )
    bar: AbstractContextManager[Callable[[int], None] | None] = nullcontext()
    if env.stderr_isatty and not params["quiet"]:
        from .progress import MIN_BYTES_FOR_PROGRESS, row_progress  # a bar is only ever drawn on a terminal

        size = (label_source.size_bytes or 0) + (prediction_source.size_bytes or 0)
        bar = row_progress(size >= MIN_BYTES_FOR_PROGRESS, label_source.shape[0], "computing")
    with bar as progress:
        result = compute_sources(label_source, prediction_source, compute_options_from(params), progress, label_options)
    summary = result.summary
    print_notes(result.notes, params["quiet"])
    warn_counts(summary.zero_vectors, summary.omitted, params["quiet"])
    if output:
        from .writers import write_losses_file

        write_losses_file(output, result)
    render_result(result, params, env)
    return check_threshold(summary.mean, params.get("fail_above"))


def render_result(result: Any, params: dict[str, Any], env: Environment) -> None:
    from . import render
    from .terminal import terminal_width

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


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: signals, then click."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=argv, prog_name="cosloss")
    except BrokenPipeError:
        silence_stdout()
        sys.exit(int(ExitStatus.OK))
