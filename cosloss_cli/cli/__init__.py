"""The ``cosloss`` command group, :func:`main`, and the console script's entry point :func:`run`.

Each command lives in its own module (``compute``, ``batch``, ``compare``), loaded only when it is
used; the error edge they share (``Error:`` lines, exit statuses, warnings) is
:mod:`cosloss_cli.cli.edge`. No command module imports another.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys
from typing import NoReturn

import click

from .. import __version__
from ..status import ExitStatus
from .edge import Terminated, on_sigterm, silence_stdout
from .options import CONTEXT_SETTINGS

__all__ = ["Terminated", "cli", "main", "run"]


class LazyGroup(click.Group):
    """A group whose heavier subcommands are imported only when they are used.

    ``cosloss compute`` should not pay for importing ``batch`` and its process pool;
    ``lazy`` maps a command name to ``module:attribute``.

    Every ``--help`` imports its command's module (``cosloss --help`` imports all three),
    and a help page must not wait for numpy (``tests/test_startup.py``). So a command
    module imports at its top only what its options and its help need (click, the option
    groups, the output registries, the error edge, ``batch/``), and the library it runs,
    which loads numpy, inside the function that runs it: :mod:`cosloss_cli.pipeline`,
    ``stats``, ``compare``, ``render.result``, ``render.writers``, ``render.progress``
    and the ``--report`` page (the same holds for ``ComputeOptions`` in ``cli/options.py``
    and the kernel of ``--version`` here). docs/design.md lists every import kept in a
    function, and why.
    """

    lazy: dict[str, str] = {
        "batch": "cosloss_cli.cli.batch:batch",
        "compare": "cosloss_cli.cli.compare:compare",
        "compute": "cosloss_cli.cli.compute:compute",
    }

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
    from ..core.cosine import native_kernel_in_use

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
      cosloss compare labels.npy base.npy tuned.npy
    """
    ctx.ensure_object(dict)


#: One OpenBLAS thread unless the user chose otherwise: cosloss does no large matrix
#: products, and OpenBLAS's idle threads spin after numpy starts them (6% of the CPU of
#: a 2 x 2 GB NPY run, measured with perf). Set before numpy is imported.
BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1"}

#: The cyclic collector's thresholds for the rest of a ``cosloss`` process. Importing
#: numpy, pyarrow and a command's modules allocates tens of thousands of containers: at
#: Python's default (700, 10, 10) a compute of two Arrow files made 43 collections that
#: found next to nothing (bench/RESULTS.md, round 11). Cycles are still collected, in
#: larger batches: every 50,000 new containers rather than every 700.
GC_THRESHOLDS = (50_000, 50, 100)


def use_malloc_under_an_address_space_limit() -> None:
    """Under a limit on the address space (``ulimit -v``, RLIMIT_AS), pyarrow allocates with malloc.

    Its default allocator, mimalloc, reserves address space in large segments ahead of
    use: under a limit of 1 GiB, a CSV read failed to allocate while the process used
    under 400 MB. The system's malloc reserves what it uses. Set before pyarrow is
    imported, and inherited by worker processes; an explicit choice is kept.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    import resource

    if resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: the BLAS threads, signals, then click."""
    for name, value in BLAS_THREADS.items():
        os.environ.setdefault(name, value)
    use_malloc_under_an_address_space_limit()
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        cli.main(args=argv, prog_name="cosloss")
    except BrokenPipeError:
        silence_stdout()
        sys.exit(int(ExitStatus.OK))


def run() -> NoReturn:
    """The ``cosloss`` command: :func:`main`, then an exit without the interpreter's teardown.

    Once a command has finished, tearing down the modules and objects of numpy, click
    and the command is the last thing it does (a sixth of a small-file ``compute``'s CPU,
    bench/RESULTS.md round 10). What an exit must do still happens here:
    the atexit handlers run (temporary folders, multiprocessing, dask) and the standard
    streams are flushed. Every output file is closed by the command that wrote it.

    The collector's thresholds are raised (:data:`GC_THRESHOLDS`) and never lowered
    again: lowering them at the end would collect every object the command made, the
    work the raise saved (a caller of :func:`main` keeps its own thresholds).
    """
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = _exit_status(stop.code)
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after the atexit handlers and a flush of stdout and stderr.

    The normal exit is kept when a thread that is not a daemon still runs (the
    interpreter would wait for it) or on an interpreter without ``atexit._run_exitfuncs``.
    """
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None or _other_threads_running():
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a reader that went away (head), a closed stream
            if stream is sys.stdout:
                silence_stdout()
    os._exit(code)


def _exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` would give: None is 0, text is printed and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _other_threads_running() -> bool:
    threading = sys.modules.get("threading")
    if threading is None:
        return False
    main_thread = threading.main_thread()
    return any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate())
