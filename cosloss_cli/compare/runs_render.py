"""Renderers of ``compare --runs``: the runs' comparisons as a table, JSON, NDJSON or CSV.

The document is :func:`cosloss_cli.compare.runs.runs_document`'s; NDJSON and CSV have a record per
run and candidate (:func:`cosloss_cli.compare.runs.comparison_rows`). Every writer has the
signature of the registries in :mod:`cosloss_cli.render.output`.
"""

from __future__ import annotations

import json
import math
from typing import Any, TextIO

from ..base.shown import printable, scrub, shown_path
from ..render.output import DEFAULT_VIEW, View, csv_writer
from ..render.result import print_titled, table_console

#: Shown in the table for a figure that is not defined (JSON: null).
MISSING = "n/a"

#: The levels of a trend line, lowest first.
LEVELS = "▁▂▃▄▅▆▇█"


def write_json(document: dict[str, Any], out: TextIO, view: View = DEFAULT_VIEW) -> None:
    out.write(json.dumps(document, allow_nan=False) + "\n")


def write_ndjson(document: dict[str, Any], out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """A line per run and candidate (a failed run: a line with its ``error``)."""
    for row in document["rows"]:
        out.write(json.dumps(row, allow_nan=False) + "\n")


def write_csv(document: dict[str, Any], out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """The records of :func:`write_ndjson` as CSV, quoted by the csv module; empty cells for nulls."""
    fields = ["run", "baseline", "candidate", "count", "mean_difference", "ci_low", "ci_high"]
    fields += ["p_value_t", "p_value_wilcoxon", "verdict", "p99", "worse_share", "gates_passed", "error"]
    writer = csv_writer(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in document["rows"]:
        writer.writerow({key: ("" if value is None else _cell(value)) for key, value in row.items()})


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value


def _figure(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}g}"


def trend_line(values: list[float | None]) -> str:
    """One character per run, its height the value's place between the series' min and max.

    >>> trend_line([0.0, 0.5, 1.0, None, 1.0])
    '▁▅█ █'
    """
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    span = high - low
    line = []
    for value in values:
        if value is None or not math.isfinite(value):
            line.append(" ")
        else:
            level = 0 if span == 0 else round((value - low) / span * (len(LEVELS) - 1))
            line.append(LEVELS[level])
    return "".join(line)


def render_table(document: dict[str, Any], out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """A row per run and candidate, then each candidate's trend of the mean difference over the runs."""
    from rich.table import Table
    from rich.text import Text

    console = table_console(out, view)
    runs = document["runs"]
    failed = document["failed"]
    console.print(
        f"{printable(shown_path(document['root']))}: {len(runs)} runs" + (f", {failed} failed" if failed else ""),
        markup=False,
        soft_wrap=True,
    )
    gated = any(row.get("gates_passed") is not None for row in document["rows"])
    table = Table()
    titles = ["run", "candidate", "mean diff", "CI", "verdict", "worse", *(["gates"] if gated else [])]
    for title in titles:
        left = title in ("run", "candidate", "verdict")
        table.add_column(title, justify="left" if left else "right", no_wrap=title in ("run", "CI"))
    for row in document["rows"]:
        if "error" in row:
            error = Text(printable(scrub(row["error"]))[:60])
            table.add_row(Text(printable(row["run"])), "-", "error", "", error, "", *([""] if gated else []))
            continue
        ci = MISSING if row["ci_low"] is None else f"[{_figure(row['ci_low'], 3)}, {_figure(row['ci_high'], 3)}]"
        share = MISSING if row["worse_share"] is None else f"{row['worse_share']:.1%}"
        names = [Text(printable(row["run"])), Text(printable(row["candidate"]))]
        cells: list[Any] = [*names, _figure(row["mean_difference"]), ci, row["verdict"], share]
        if gated:
            cells.append("" if row["gates_passed"] is None else ("passed" if row["gates_passed"] else "FAILED"))
        table.add_row(*cells)
    print_titled(console, "each run: d = candidate - baseline per row (below 0: the candidate is better)", table)
    trends = Table()
    for title in ("candidate", "mean diff over the runs", "first", "last", "min", "max"):
        trends.add_column(title, justify="left" if title in ("candidate", "mean diff over the runs") else "right")
    for name, values in document["trend"].items():
        present = [v for v in values if v is not None]
        trends.add_row(
            Text(printable(name)),
            trend_line(values),
            _figure(present[0] if present else None),
            _figure(present[-1] if present else None),
            _figure(min(present) if present else None),
            _figure(max(present) if present else None),
        )
    print_titled(console, "trend per candidate (one bar per run, in run order)", trends)
