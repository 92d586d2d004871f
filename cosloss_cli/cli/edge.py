"""The error edge of every command: where exceptions become ``Error:`` lines and exit statuses.

Nothing below the CLI prints or exits; the commands run their bodies inside
:func:`user_errors` and report warnings and the ``--fail-above`` verdict through the
helpers here, so every command words them (and exits) the same way.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from ..base.shown import remember, scrub, shown_path
from ..base.terminal import Environment
from ..errors import CoslossError, InputUsageError
from ..status import ExitStatus


class Terminated(BaseException):
    """Raised from the SIGTERM handler so cleanup runs as for Ctrl-C."""


def on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM handler: unwind like Ctrl-C (temporary files removed, workers stopped)."""
    raise Terminated()


def environment(ctx: click.Context) -> Environment:
    """The terminal environment: detected, unless a test put a fake in ``ctx.obj``."""
    obj = ctx.find_root().obj
    fake = obj.get("environment") if isinstance(obj, dict) else None
    return fake if isinstance(fake, Environment) else Environment.detect()


def fail(message: str, status: ExitStatus) -> NoReturn:
    """Print one ``Error:`` line to stderr (scrubbed of secrets) and exit with ``status``."""
    click.echo(f"Error: {scrub(message)}", err=True)
    sys.exit(int(status))


def warn(message: str, quiet: bool) -> None:
    """A warning on stderr, unless ``--quiet``."""
    if not quiet:
        click.echo(f"Warning: {scrub(message)}", err=True)


def print_notes(notes: tuple[str, ...], quiet: bool) -> None:
    """What the readers decided for the user (id columns, headers, column order): one line each."""
    if not quiet:
        for note in notes:
            click.echo(f"Note: {scrub(note)}", err=True)


def warn_counts(zero_vectors: int, omitted: int, quiet: bool) -> None:
    """The warnings every command gives about zero vectors and omitted NaN/Inf vectors."""
    if zero_vectors:
        warn(f"{zero_vectors} vector pair(s) with a zero vector: loss 1 by definition", quiet)
    if omitted:
        warn(f"{omitted} vector pair(s) with NaN/Inf omitted (--nan-policy omit)", quiet)


def check_threshold(mean: float, fail_above: float | None, what: str = "mean loss") -> bool:
    """True (and a message on stderr) when ``--fail-above`` is exceeded; a NaN or infinite mean never passes.

    -inf (``--no-normalize`` on values whose products overflow) is below any threshold,
    but it is no loss that a model could have: it fails the gate as NaN does.
    """
    if fail_above is None:
        return False
    if not math.isfinite(mean):
        click.echo(
            f"cosloss: {what} is {mean:g}, not a finite number: it cannot pass --fail-above {fail_above:g}", err=True
        )
        return True
    if mean > fail_above:
        click.echo(f"cosloss: {what} {mean:.10g} is above --fail-above {fail_above:g}", err=True)
        return True
    return False


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn every failure into an ``Error:`` line and the right exit status.

    The command's arguments are read first for URL secrets, so that any message quoting
    a piece of one (a library's, a traceback) hides it (:func:`~cosloss_cli.base.shown.scrub`).
    """
    remember(_arguments(click.get_current_context(silent=True)), fresh=True)
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
    except OSError as exc:  # a write that failed below the writers' own checks: a full disk, a file-size limit
        if debug:
            _print_traceback()
        where = f"{shown_path(str(exc.filename))}: " if getattr(exc, "filename", None) else ""
        fail(f"{where}{exc.strerror or scrub(str(exc))}", ExitStatus.DATA_ERROR)
    except MemoryError:
        if debug:
            _print_traceback()
        fail(
            "out of memory (the losses listed or written take 8 bytes per vector pair: "
            "--json --no-losses keeps them on disk, or split the input)",
            ExitStatus.DATA_ERROR,
        )
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as exc:  # a bug: say so in one line, traceback only with --debug
        if debug:
            _print_traceback()
        if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
            # Not a bug: a thread's stack did not fit under a limit on the address space or processes.
            message = "out of memory: cannot start a thread (is the address space limited, ulimit -v?)"
            fail(message, ExitStatus.DATA_ERROR)
        fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug and report it)",
            ExitStatus.DATA_ERROR,
        )


def _print_traceback() -> None:
    import traceback  # only --debug needs it

    click.echo(scrub(traceback.format_exc()).rstrip("\n"), err=True)


def _arguments(ctx: click.Context | None) -> Iterator[str]:
    """Every string among a command's parameters (inside option records and tuples too)."""
    stack: list[Any] = list(ctx.params.values()) if ctx is not None else []
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, (tuple, list)):
            stack.extend(value)


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
