"""Which writer writes which result in which format: one registry per result kind, one :func:`emit`.

The registries map a format name to ``module:function`` and are resolved when something is
written, so ``--format`` takes its choices from their keys without importing numpy or
rich at start. Every writer has the same signature, ``writer(document, out, view)``.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple, TextIO

from ..base.terminal import Environment, columns_from_environment, terminal_width
from ..errors import OutputError

#: Width of tables off a terminal: wide enough that rich does not wrap at 80 columns.
TABLE_WIDTH = 100

#: How one :class:`~cosloss_cli.pipeline.result.LossResult` is written to stdout or a text file.
RESULT_WRITERS = {
    "table": "cosloss_cli.render.result:render_table",
    "json": "cosloss_cli.render.result:write_json",
    "ndjson": "cosloss_cli.render.result:write_ndjson",
    "csv": "cosloss_cli.render.result:write_csv",
}

#: How a whole batch report is written at the end. NDJSON lines were written as each pair
#: finished (:data:`PAIR_WRITERS`), so nothing is left to write then.
BATCH_WRITERS = {
    "table": "cosloss_cli.batch.render:render_table",
    "json": "cosloss_cli.batch.render:write_json",
    "ndjson": "cosloss_cli.batch.render:write_nothing_more",
    "csv": "cosloss_cli.batch.render:write_csv",
}

#: How one finished pair of a batch is written the moment it finishes (formats that stream).
PAIR_WRITERS = {"ndjson": "cosloss_cli.batch.render:write_pair_line"}

#: How one finished pair is encoded the moment it finishes, for the report at the end
#: (``encoder(result, view) -> str``, given to its writer as ``Report.encoded``).
PAIR_ENCODERS = {"json": "cosloss_cli.batch.render:pair_json"}

#: Per-vector loss files (``--output``, ``--output-dir``): the text formats of a result, and binary ones.
FILE_WRITERS = {
    "csv": RESULT_WRITERS["csv"],
    "json": RESULT_WRITERS["json"],
    "ndjson": RESULT_WRITERS["ndjson"],
    "parquet": "cosloss_cli.render.writers:write_parquet",
    "npy": "cosloss_cli.render.writers:write_npy",
}

#: How a :class:`~cosloss_cli.compare.models.CompareResult` is written to stdout or a text file.
COMPARE_WRITERS = {
    "table": "cosloss_cli.compare.render:render_table",
    "json": "cosloss_cli.compare.render:write_json",
    "ndjson": "cosloss_cli.compare.render:write_ndjson",
    "csv": "cosloss_cli.compare.render:write_csv",
}

#: ``compare --runs``: the runs' comparisons (a record per run and candidate in NDJSON and CSV).
RUNS_WRITERS = {
    "table": "cosloss_cli.compare.runs_render:render_table",
    "json": "cosloss_cli.compare.runs_render:write_json",
    "ndjson": "cosloss_cli.compare.runs_render:write_ndjson",
    "csv": "cosloss_cli.compare.runs_render:write_csv",
}

#: ``compare --output`` files: a column per model (the same formats and extensions as :data:`FILE_WRITERS`).
COMPARE_FILE_WRITERS = {
    "csv": COMPARE_WRITERS["csv"],
    "json": COMPARE_WRITERS["json"],
    "ndjson": COMPARE_WRITERS["ndjson"],
    "parquet": "cosloss_cli.compare.render:write_parquet",
    "npy": "cosloss_cli.compare.render:write_npy",
}

#: Loss file formats by file name extension (``--output FILE``).
FILE_EXTENSIONS = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
    ".parquet": "parquet",
    ".npy": "npy",
}

#: ``--output-format`` choices of ``--output-dir`` (the extension each file gets) and their formats.
OUTPUT_DIR_FORMATS = {ext[1:]: FILE_EXTENSIONS[ext] for ext in (".csv", ".parquet", ".npy", ".jsonl")}


class View(NamedTuple):
    """What a writer may need besides the document; each writer reads the fields it uses."""

    #: JSON/NDJSON: include the per-vector losses.
    losses: bool = True
    #: Tables: losses shown at most.
    max_rows: int = 20
    color: bool = False
    width: int = TABLE_WIDTH
    #: Batch: each pair object names its ``--output-dir`` file.
    with_output: bool = False
    #: Whether stdout is a terminal: off one, tables never wrap a name (scripts cut lines).
    terminal: bool = False
    #: ``--group-by``'s names, on stdout: NDJSON and CSV write a record per group (per group
    #: and candidate in ``compare``) instead of one per loss; ``--output`` files keep the losses.
    groups: tuple[str, ...] = ()


#: The view of a writer called without one (library use, loss files).
DEFAULT_VIEW = View()


def view_for(env: Environment, **fields: Any) -> View:
    """A :class:`View` on this terminal: its width and colour, or the fixed width off a terminal."""
    if env.stdout_isatty:
        width = terminal_width(TABLE_WIDTH)
    else:  # off a terminal: a fixed width, so that logs and pipes do not depend on a terminal
        width = columns_from_environment() or TABLE_WIDTH
    return View(color=env.stdout_color, width=width, terminal=env.stdout_isatty, **fields)


def writer(registry: dict[str, str], fmt: str) -> Any:
    """The writer function registered for ``fmt``, imported now."""
    import importlib

    module, function = registry[fmt].split(":")
    return getattr(importlib.import_module(module), function)


def emit(registry: dict[str, str], fmt: str, document: Any, view: View, out: TextIO | None = None) -> None:
    """Write ``document`` in ``fmt`` with the writer ``registry`` has for it, to stdout by default.

    A failed write to stdout (a full disk, a file-size limit) is an :class:`OutputError`;
    a reader that went away (``BrokenPipeError``) is left to the edge's silent exit.
    """
    out = stdout() if out is None else out
    try:
        writer(registry, fmt)(document, out, view)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        if out is not sys.stdout and out is not sys.__stdout__:
            raise
        raise OutputError(f"cannot write the results to stdout: {exc.strerror or exc}") from None


def stdout() -> TextIO:
    """``sys.stdout``; an :class:`OutputError` when the process was started with it closed (``>&-``)."""
    if sys.stdout is None:
        raise OutputError(
            "stdout is closed: there is nowhere to write the results",
            hint="run with stdout open or redirected, e.g. > results.txt",
        )
    return sys.stdout


class _LineFeedRows:
    """A text file taking a CSV writer's rows, each written with ``\\n`` instead of its ``\\r\\n``.

    The csv module quotes a field holding a character of its line terminator; with ``\\n``
    alone, a lone ``\\r`` (in an id, a pair name) went out bare and readers split the row
    there. Rows are made with ``\\r\\n`` so both are quoted, and written ending in ``\\n``:
    the bytes of every row without such a character stay as they were.
    """

    def __init__(self, out: TextIO):
        self._out = out

    def write(self, row: str) -> int:
        return self._out.write(row[:-2] + "\n")


def csv_writer(out: TextIO, fieldnames: list[str] | None = None, **options: Any) -> Any:
    """A :func:`csv.writer` of ``\\n``-ended rows whose fields are quoted when they hold a
    delimiter, a quote, ``\\r`` or ``\\n``: every CSV cosloss writes goes through it.

    With ``fieldnames``, a :class:`csv.DictWriter` (``options`` are its own)."""
    import csv

    if fieldnames is not None:
        return csv.DictWriter(_LineFeedRows(out), fieldnames=fieldnames, lineterminator="\r\n", **options)
    return csv.writer(_LineFeedRows(out), lineterminator="\r\n")
