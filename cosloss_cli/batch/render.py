"""Renderers of a batch: pair objects as JSON / NDJSON / CSV, and a rich table.

Every writer has the signature of :data:`cosloss_cli.render.output.BATCH_WRITERS`:
``writer(report, out, view)`` (a pair line: ``writer(result, out, view)``).

The pair object is the same in the JSON document, on each NDJSON line and (flattened)
in each CSV row, so a pipeline can switch formats without renaming keys. NaN and
infinities become ``null``; floats keep full precision.
"""

from __future__ import annotations

import json
import math
from typing import Any, TextIO

import numpy as np

from ..base.shown import printable, scrub, shown_path
from ..base.values import json_value, number
from ..core.reduction import DEFAULT_REDUCTION
from ..render.output import View, csv_writer
from ..render.result import (
    GROUP_FIELDS,
    SCHEMA_VERSION,
    SUMMARY_KEYS,
    format_stat,
    group_names,
    nested_losses,
    percentile_fields,
    print_titled,
    ranked_fields,
    summary_fields,
    table_console,
    write_group_csv,
    write_group_lines,
)
from ..stats.distribution import PERCENTILES
from ..stats.figures import PairRanked, Ranked
from .merge import Overall, Report
from .pair import PairResult

#: The figures of each pair besides its summary: TF's reduction and the percentiles.
FIGURE_KEYS = ("reduction", "weighted", "loss", *PERCENTILES)

#: Columns of ``--format csv``.
CSV_COLUMNS = ("name", "labels", "predictions", "status", "error", *SUMMARY_KEYS, *FIGURE_KEYS)

#: Columns added after them when rows were matched by id: ``matched N of M rows``.
JOIN_COLUMNS = ("matched_rows", "join_rows")


def pair_object(result: PairResult, *, include_losses: bool = False, with_output: bool = False) -> dict[str, Any]:
    """One pair as a JSON-ready dict: the same keys whether it succeeded or failed."""
    stats = summary_fields(result.summary) if result.summary is not None else dict.fromkeys(SUMMARY_KEYS)
    figures = dict.fromkeys(FIGURE_KEYS)
    if result.figures is not None:
        pair = result.figures
        figures.update(reduction=pair.reduction, weighted=pair.weighted, loss=number(pair.loss))
        figures.update(percentile_fields(pair.percentiles))
    obj: dict[str, Any] = {
        "name": result.name,
        "labels": shown_path(result.pair.labels),
        "predictions": shown_path(result.pair.predictions),
        "status": result.status,
        "error": None if result.error is None else scrub(result.error),
        **stats,
        **figures,
    }
    if result.unmatched is not None:
        obj["unmatched"] = result.unmatched.to_json_dict()
        obj.update(result.unmatched.matched_fields())
    if with_output:
        obj["output"] = None if result.output is None else shown_path(result.output)
    if include_losses:
        obj.update(_loss_fields(result))
    return obj


def _loss_fields(result: PairResult) -> dict[str, Any]:
    """``losses`` like ``compute --json``: flat for 2-D inputs (omitted ones left out), nested otherwise."""
    if result.losses is None or result.omitted is None:
        return {"losses": None}
    losses, omitted = result.losses, result.omitted
    if losses.ndim != 1:
        return {"losses": nested_losses(losses, omitted)}
    kept = ~omitted
    fields: dict[str, Any] = {"losses": [number(float(x)) for x in losses[kept]]}
    if omitted.any():
        fields["omitted_indices"] = [int(i) for i in np.nonzero(omitted)[0]]
    if result.ids is not None:
        fields["ids"] = [json_value(v) for v in result.ids[kept]]
    return fields


def overall_object(summary: Overall) -> dict[str, Any]:
    """The pooled figures; ``worst`` (with each row's pair name) when ``--top`` asked for it."""
    figures = summary.figures
    obj: dict[str, Any] = {
        "pairs": summary.pairs,
        "ok": summary.ok,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "count": summary.count,
        "mean": number(summary.mean),
        "mean_of_means": number(summary.mean_of_means),
        "reduction": figures.reduction,
        "weighted": figures.weighted,
        "loss": number(figures.loss),
        **percentile_fields(figures.percentiles),
    }
    if summary.matched is not None:
        obj.update(matched_rows=summary.matched, join_rows=summary.join_rows)
    if figures.worst:
        obj["worst"] = [_ranked_object(item) for item in figures.worst]
    if summary.groups is not None:
        obj["groups"] = list(summary.groups)
    return obj


def _ranked_object(item: Ranked | PairRanked) -> dict[str, Any]:
    """One of the worst rows of the batch: its pair's name, then as ``compute`` lists it."""
    return {"name": _pair_name(item), **ranked_fields(item)}


def _pair_name(item: Ranked | PairRanked) -> str:
    """The pair a pooled worst row is of (every pooled row names one)."""
    assert isinstance(item, PairRanked), item
    return item.name


def pair_json(result: PairResult, view: View) -> str:
    """One pair object as JSON text: an NDJSON line, or an item of the JSON document's ``pairs``."""
    return json.dumps(pair_object(result, include_losses=view.losses, with_output=view.with_output), allow_nan=False)


def write_pair_line(result: PairResult, out: TextIO, view: View) -> None:
    """One NDJSON line, flushed at once so a pipeline sees each pair as it finishes."""
    out.write(pair_json(result, view))
    out.write("\n")
    out.flush()


def write_nothing_more(report: Report, out: TextIO, view: View) -> None:
    """NDJSON: every pair's line was written as it finished (:func:`write_pair_line`).

    With ``--group-by`` (``view.groups``) no pair lines were written: a line per pooled
    group now, the objects of the JSON's ``overall.groups``.
    """
    if view.groups:
        write_group_lines(out, report.final().groups or ())


def write_json(report: Report, out: TextIO, view: View) -> None:
    """The whole batch as one JSON document, pairs sorted by name.

    The text is ``json.dumps`` of the whole document, encoded in parts: the pairs'
    objects as they were encoded when each finished (:attr:`Report.encoded`) or now, and
    the overall figures last, so that pooled percentiles still being computed
    (:attr:`Report.pending`) are waited for as late as possible.
    """
    discovery = report.discovery
    encoded = report.encoded or {}
    pairs = ", ".join(encoded.get(r.pair) or pair_json(r, view) for r in report.results)
    parts = {"schema_version": json.dumps(SCHEMA_VERSION), "pairs": f"[{pairs}]"}
    parts["overall"] = json.dumps(overall_object(report.final()), allow_nan=False)
    unmatched = {
        "labels": [shown_path(path) for path in discovery.unmatched_labels],
        "predictions": [shown_path(path) for path in discovery.unmatched_predictions],
    }
    parts["unmatched"] = json.dumps(unmatched)
    out.write("{" + ", ".join(f"{json.dumps(key)}: {text}" for key, text in parts.items()) + "}")
    out.write("\n")


def write_csv(report: Report, out: TextIO, view: View) -> None:
    """One row per pair; empty cells for the statistics of failed pairs.

    With ``--group-by`` (``view.groups``): a row per pooled group instead, its key
    columns then the figures of ``overall.groups``.
    """
    if view.groups:
        groups = report.final().groups or ()
        write_group_csv(out, group_names(groups, view.groups), groups, GROUP_FIELDS)
        return
    writer = csv_writer(out)
    columns = CSV_COLUMNS + (JOIN_COLUMNS if _joined(report.results) else ())
    writer.writerow(columns)
    for result in report.results:
        obj = pair_object(result)
        writer.writerow([_csv_cell(obj.get(column)) for column in columns])


def _joined(results: list[PairResult]) -> bool:
    """Whether rows were matched by id (``--join-on``): the reports then say how many."""
    return any(result.unmatched is not None for result in results)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "nan"
    return str(value)


def render_table(report: Report, out: TextIO, view: View) -> None:
    """A row per pair (sorted by name), the failed pairs' errors, then the overall figures."""
    from rich.table import Table
    from rich.text import Text

    results = report.results
    table = Table()
    table.add_column("name", style="cyan", overflow="fold", no_wrap=not view.terminal)
    for column in ("count", "mean", "min", "p95", "max"):
        table.add_column(column, justify="right")
    joined = _joined(results)
    if joined:
        table.add_column("matched", justify="right")
    table.add_column("status")
    for result in results:
        if result.summary is not None:
            s = result.summary
            percentiles = result.figures.percentiles if result.figures is not None else None
            p95 = (percentiles or {}).get("p95", math.nan)
            cells = [str(s.count), format_stat(s.mean), format_stat(s.min), format_stat(p95), format_stat(s.max)]
        else:
            cells = ["-"] * 5
        if joined:
            u = result.unmatched
            cells.append("-" if u is None else f"{u.matched} of {u.rows}")
        status = Text(result.status, style="green" if result.ok else "bold red")
        table.add_row(Text(printable(result.name)), *cells, status)
    summary = report.final()
    pooled_worst = summary.figures.worst
    worst = _worst_table(pooled_worst, view) if pooled_worst else None
    console = table_console(out, _unwrapped(view, table, worst))
    print_titled(console, "pairs", table)
    failed = [result for result in results if not result.ok]
    if failed:
        console.print(Text("failed pairs:", style="bold red"))
        for result in failed:
            console.print(Text(f"  {printable(result.name)}: {printable(scrub(result.error or ''))}"), soft_wrap=True)
    print_titled(console, "overall", _overall_table(summary))
    if worst is not None:
        print_titled(console, f"worst {len(pooled_worst)}", worst)
    if summary.groups is not None:
        from ..render.result import print_groups

        print_groups(console, summary.groups, view.max_rows, pooled=True)


def _unwrapped(view: View, *tables: Any) -> View:
    """The view to print ``tables`` with: off a terminal, wide enough that no pair name wraps.

    A pair name folded over two lines breaks ``grep NAME | awk``; on a terminal the
    terminal's width wins, and names fold to fit it.
    """
    if view.terminal:
        return view
    from rich.console import Console

    measuring = Console(width=1 << 20, no_color=True)
    widest = max(measuring.measure(table).maximum for table in tables if table is not None)
    return view._replace(width=max(view.width, widest))


def _overall_table(summary: Overall) -> Any:
    from rich.table import Table

    table = Table(show_header=False)
    table.add_column("statistic", style="bold")
    table.add_column("value", justify="right")
    table.add_row("pairs", str(summary.pairs))
    table.add_row("ok", str(summary.ok))
    table.add_row("failed", str(summary.failed))
    if summary.skipped:
        table.add_row("not run (--fail-fast)", str(summary.skipped))
    table.add_row("losses", str(summary.count))
    table.add_row("pooled mean", format_stat(summary.mean))
    if summary.matched is not None:
        table.add_row("matched", f"{summary.matched} of {summary.join_rows} rows")
    table.add_row("mean of pair means", format_stat(summary.mean_of_means))
    figures = summary.figures
    for name, value in percentile_fields(figures.percentiles).items():
        table.add_row(f"pooled {name}", format_stat(math.nan if value is None else value))
    if figures.weighted or figures.reduction != DEFAULT_REDUCTION:
        loss = "weighted losses listed" if figures.reduction == "none" else format_stat(figures.loss)
        table.add_row(f"pooled loss ({figures.reduction})", loss)
    return table


def _worst_table(worst: tuple[Ranked, ...] | tuple[PairRanked, ...], view: View) -> Any:
    """The worst rows over all pairs: pair name, index (id when the pair has ids), loss."""
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("name", style="cyan", overflow="fold", no_wrap=not view.terminal)
    table.add_column("index", justify="right")
    with_ids = any(item.id is not None for item in worst)
    if with_ids:
        table.add_column("id")
    table.add_column("loss", justify="right")
    for item in worst:
        index = ", ".join(map(str, item.index)) if isinstance(item.index, tuple) else str(item.index)
        ident = [Text("" if item.id is None else printable(str(item.id)))] if with_ids else []
        table.add_row(Text(printable(_pair_name(item))), index, *ident, format_stat(item.loss))
    return table
