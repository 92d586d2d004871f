"""Renderers: a :class:`LossResult` as JSON, NDJSON, CSV or a rich table.

Every writer has the signature of :data:`cosloss_cli.render.output.RESULT_WRITERS`:
``writer(result, out, view)``. Machine formats are written row by row, so that
millions of losses never become one giant string. Floats are written with ``repr``
(shortest round-trip, full precision); NaN and infinities become ``null`` so the JSON
is strictly valid.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import numpy as np

from ..base.shown import printable, shown_path
from ..base.values import json_value, number
from ..core.cosine import Summary, shape_text
from ..core.reduction import DEFAULT_REDUCTION
from ..pipeline.result import LossResult
from ..stats.distribution import PERCENTILES, sparkline
from ..stats.figures import Figures, PairRanked, Ranked
from .output import DEFAULT_VIEW, View, csv_writer

SCHEMA_VERSION = 1

#: The summary keys of ``compute --json`` and of each batch pair object, in order.
SUMMARY_KEYS = ("count", "mean", "std", "min", "max", "median", "zero_vectors", "omitted")


def float_text(value: float) -> str:
    """Full-precision text of a float, ``null`` for NaN/Inf."""
    return repr(float(value)) if math.isfinite(value) else "null"


def summary_fields(summary: Summary) -> dict[str, Any]:
    """The summary keys shared by ``compute --json`` and batch pair objects (NaN as None)."""
    return {key: number(getattr(summary, key)) for key in SUMMARY_KEYS}


def result_header(result: LossResult) -> dict[str, Any]:
    """Everything of the JSON document but the losses and ids."""
    return {
        "schema_version": SCHEMA_VERSION,
        "labels": shown_path(result.labels),
        "predictions": shown_path(result.predictions),
        "axis": result.axis,
        "shape": list(result.shape),
        **summary_fields(result.summary),
        **figure_fields(result.figures),
        **_unmatched_field(result.unmatched),
        **({} if result.groups is None else {"groups": list(result.groups)}),
    }


def figure_fields(figures: Figures) -> dict[str, Any]:
    """The reduction, percentiles and interval of the mean; worst/best rows and histogram if asked for.

    ``loss`` is TF's reduced loss (null for reduction ``none``); ``mean`` stays the
    unweighted mean. ``ci_low``/``ci_high`` are null when ``confidence`` is 0 (off).
    """
    fields: dict[str, Any] = {"reduction": figures.reduction, "weighted": figures.weighted}
    fields["loss"] = number(figures.loss)
    fields.update(percentile_fields(figures.percentiles))
    fields.update(confidence=figures.confidence, ci_low=number(figures.ci_low), ci_high=number(figures.ci_high))
    for key, ranked in (("worst", figures.worst), ("best", figures.best)):
        if ranked:
            fields[key] = [ranked_fields(item) for item in ranked]
    if figures.histogram is not None:
        edges, counts = figures.histogram
        fields["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
    return fields


def percentile_fields(values: dict[str, float] | None) -> dict[str, Any]:
    """``p05`` ... ``p99`` for JSON (null when unknown: no losses, or NaN ones)."""
    values = values or {}
    return {key: number(values.get(key, math.nan)) for key in PERCENTILES}


def ranked_fields(item: Ranked | PairRanked) -> dict[str, Any]:
    """One of the worst/best rows: ``{"index", "id", "loss"}`` (an N-D index is a list)."""
    index = list(item.index) if isinstance(item.index, tuple) else item.index
    return {"index": index, "id": json_value(item.id), "loss": number(item.loss)}


def _unmatched_field(unmatched: Any) -> dict[str, Any]:
    """``unmatched``, ``matched_rows`` and ``join_rows`` when rows were matched by id (``--join-on``)."""
    return {} if unmatched is None else {"unmatched": unmatched.to_json_dict(), **unmatched.matched_fields()}


def write_json(result: LossResult, out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """One JSON document; the losses list (unless ``view.losses`` is off) is streamed, not built as one string."""
    body = json.dumps(result_header(result), allow_nan=False)
    if not view.losses:
        out.write(body + "\n")
        return
    out.write(body[:-1])
    if result.losses.ndim == 1:
        kept = ~result.omitted
        out.write(', "losses": [')
        _write_floats(out, result.losses[kept])
        out.write("]")
        if result.summary.omitted:
            out.write(', "omitted_indices": [')
            _write_joined(out, (str(int(i)) for i in np.nonzero(result.omitted)[0]))
            out.write("]")
        if result.ids is not None:
            out.write(', "ids": [')
            _write_joined(out, (json.dumps(json_value(v), allow_nan=False) for v in result.ids[kept]))
            out.write("]")
    else:
        out.write(', "losses": ')
        out.write(json.dumps(nested_losses(result.losses, result.omitted), allow_nan=False))
    out.write("}\n")


#: Losses turned into text at a time: Python floats for a chunk, never for all of them.
_TEXT_CHUNK = 65536


def float_texts(values: np.ndarray) -> Iterator[str]:
    """The JSON text of each value of an array (:func:`float_text`: ``null`` for NaN and infinities).

    ``repr`` of Python floats when all are finite (5x faster): the losses' columns of
    every writer of many floats (``compute``'s and ``compare``'s).
    """
    items = values.tolist()
    if np.isfinite(values).all():
        return map(repr, items)
    return (float_text(x) for x in items)


def _write_floats(out: TextIO, values: np.ndarray) -> None:
    """Comma-separated full-precision floats (``null`` for NaN/Inf), a chunk at a time."""
    for start in range(0, values.size, _TEXT_CHUNK):
        out.write((", " if start else "") + ", ".join(float_texts(values[start : start + _TEXT_CHUNK])))


def _write_index_ndjson(result: LossResult, out: TextIO) -> None:
    """The NDJSON lines of 1-D losses without ids, a chunk at a time."""
    kept = np.nonzero(~result.omitted)[0]
    for start in range(0, kept.size, _TEXT_CHUNK):
        index = kept[start : start + _TEXT_CHUNK]
        texts = float_texts(result.losses[index])
        out.write("".join(f'{{"index": {i}, "loss": {t}}}\n' for i, t in zip(index.tolist(), texts, strict=True)))


def _write_joined(out: TextIO, items: Iterator[str], chunk: int = 4096) -> None:
    buffer: list[str] = []
    first = True
    for item in items:
        buffer.append(item)
        if len(buffer) >= chunk:
            out.write(("" if first else ", ") + ", ".join(buffer))
            first = False
            buffer.clear()
    if buffer:
        out.write(("" if first else ", ") + ", ".join(buffer))


def nested_losses(losses: np.ndarray, omitted: np.ndarray) -> Any:
    """N-D losses as nested lists for JSON: ``null`` where omitted, NaN or infinite."""
    if losses.ndim == 0:
        return None if omitted else number(float(losses))
    return [nested_losses(losses[i], omitted[i]) for i in range(losses.shape[0])]


def iter_rows(result: LossResult, positions: np.ndarray | None = None) -> Iterator[tuple[Any, Any, float]]:
    """(index, id, loss) for every loss that counts; index is a tuple for N-D losses.

    ``positions`` (flat indices into the losses) limits the rows, for the table's head
    and tail.
    """
    flat = result.losses.ravel()
    kept = np.nonzero(~result.omitted.ravel())[0] if positions is None else positions
    nd = result.losses.ndim != 1
    for position in kept:
        index: Any = int(position)
        if nd:
            index = tuple(int(i) for i in np.unravel_index(position, result.losses.shape))
        ident = json_value(result.ids[position]) if result.ids is not None else None
        yield index, ident, float(flat[position])


#: The figures of each group (``--group-by``) in JSON's order, after its ``key``: the CSV columns.
GROUP_FIELDS = ("count", "mean", "std", "min", "median", "max", *PERCENTILES, "ci_low", "ci_high")


def write_group_lines(out: TextIO, records: Iterable[dict[str, Any]]) -> None:
    """A JSON line per record (``--group-by --format ndjson``): the objects of the JSON's groups."""
    out.write("".join(json.dumps(record, allow_nan=False) + "\n" for record in records))


def write_group_csv(
    out: TextIO, names: Sequence[str], records: Iterable[dict[str, Any]], fields: Sequence[str]
) -> None:
    """A CSV row per record (``--group-by --format csv``): a column per key, then ``fields``.

    The key columns take the ``--group-by`` names; one that is also a figure's name is
    written ``key.NAME``. Nulls are empty cells, floats full precision.
    """
    writer = csv_writer(out)
    writer.writerow([f"key.{name}" if name in fields else name for name in names] + list(fields))
    for record in records:
        keys = [_csv_cell(record["key"].get(name)) for name in names]
        writer.writerow(keys + [_csv_cell(record.get(field)) for field in fields])


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def group_names(groups: Sequence[dict[str, Any]] | None, fallback: Sequence[str] = ()) -> list[str]:
    """The ``--group-by`` names of a result's groups (``fallback`` when there are none)."""
    return list(groups[0]["key"]) if groups else list(fallback)


def write_ndjson(result: LossResult, out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """One line per loss: ``{"index": i, "loss": x}`` plus ``"id"`` when there are ids.

    On stdout with ``--group-by`` (``view.groups``): one line per group instead, the
    objects of the JSON's ``groups``.
    """
    if view.groups and result.groups is not None:
        write_group_lines(out, result.groups)
        return
    if result.losses.ndim == 1 and result.ids is None:
        _write_index_ndjson(result, out)
        return
    lines: list[str] = []
    for index, ident, loss in iter_rows(result):
        index_text = json.dumps(list(index)) if isinstance(index, tuple) else str(index)
        line = f'{{"index": {index_text}, '
        if result.ids is not None:
            line += f'"id": {json.dumps(ident)}, '
        lines.append(line + f'"loss": {float_text(loss)}}}\n')
        if len(lines) >= 4096:
            out.write("".join(lines))
            lines.clear()
    out.write("".join(lines))


def write_csv(result: LossResult, out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """``index,loss`` (or ``id,loss``; ``index_0,index_1,...,loss`` for N-D losses).

    On stdout with ``--group-by`` (``view.groups``): a row per group instead, its key
    columns then :data:`GROUP_FIELDS`.
    """
    if view.groups and result.groups is not None:
        write_group_csv(out, group_names(result.groups, view.groups), result.groups, GROUP_FIELDS)
        return
    writer = csv_writer(out)
    nd = result.losses.ndim != 1
    if result.ids is not None:
        writer.writerow(["id", "loss"])
    elif nd:
        writer.writerow([f"index_{i}" for i in range(result.losses.ndim)] + ["loss"])
    else:
        writer.writerow(["index", "loss"])
    for index, ident, loss in iter_rows(result):
        text = repr(loss)  # full precision; nan, inf and -inf as Python spells them
        if result.ids is not None:
            writer.writerow([ident, text])
        elif nd:
            writer.writerow([*index, text])
        else:
            writer.writerow([index, text])


def format_stat(value: float, digits: int = 10) -> str:
    """A statistic for people: 10 significant digits, ``nan`` spelled out."""
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}g}"


def _closed_pipe() -> None:
    """Let a closed stdout (``| head``) reach the CLI, which ends quietly with status 0."""
    raise BrokenPipeError


def table_console(out: TextIO, view: View) -> Any:
    """The rich console every table is printed on.

    Colour only when asked, a chosen width (rich would wrap at 80 columns off a
    terminal), and a closed pipe left to the CLI, which ends quietly.
    """
    from rich.console import Console

    console = Console(
        file=out,
        force_terminal=view.color,
        no_color=not view.color,
        highlight=False,
        width=view.width,
        soft_wrap=False,
    )
    console.on_broken_pipe = _closed_pipe  # type: ignore[method-assign]  # rich would exit 1; the CLI exits 0
    return console


def render_table(result: LossResult, out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """A rich table of the first and last ``view.max_rows`` losses, then the summary."""
    from rich.table import Table

    console = table_console(out, view)
    console.print(
        f"{printable(shown_path(result.labels))} vs {printable(shown_path(result.predictions))}: "
        f"axis {result.axis}, shape {shape_text(result.shape)}",
        markup=False,
        soft_wrap=True,
    )
    if view.max_rows > 0:  # --max-rows 0: the summary only, no empty table
        key = "id" if result.ids is not None else "index"
        table = Table()
        table.add_column(key, justify="right" if key == "index" else "left", style="cyan")
        table.add_column("loss", justify="right")
        from rich.text import Text

        for row in _table_rows(result, view.max_rows):
            table.add_row(*map(Text, row))  # ids as text: "[b]" is an id, not markup
        console.print(table)
    print_titled(console, "summary", _summary_table(result))
    figures = result.figures
    for title, ranked in ((f"worst {len(figures.worst)}", figures.worst), (f"best {len(figures.best)}", figures.best)):
        if ranked:
            print_titled(console, title, _ranked_table(ranked, result.ids is not None))
    if figures.histogram is not None:
        from rich.text import Text

        edges, counts = figures.histogram
        console.print(Text("histogram", style="table.title"))
        console.print(sparkline(counts, edges, width=min(view.width, 80), color=view.color))
    if result.groups is not None:
        print_groups(console, result.groups, view.max_rows)


#: The figures of the groups table (``--group-by``), each group a row.
GROUP_COLUMNS = ("count", "mean", "ci_low", "ci_high", "std", "median", "p95", "max")


def print_groups(console: Any, groups: Sequence[dict[str, Any]], max_rows: int = 20, *, pooled: bool = False) -> None:
    """A row per group (the first and last ``max_rows`` of many), its key columns first.

    ``pooled``: a batch's groups, over every pair.
    """
    from rich.table import Table

    names = list(groups[0]["key"]) if groups else []
    table = Table()
    for name in names:
        table.add_column(printable(name), style="cyan")
    columns = list(GROUP_COLUMNS)
    for column in columns:
        table.add_column(column, justify="right")
    head, tail, left_out = first_and_last(groups, max_rows)
    for position, group in enumerate(head + tail):
        if left_out and position == len(head):
            table.add_row(*(["..."] * (len(names) + len(columns))))
        keys = ["null" if value is None else printable(str(value)) for value in group["key"].values()]
        table.add_row(*keys, *(_group_cell(group.get(column)) for column in columns))
    where = ", pooled over every pair" if pooled else ""
    print_titled(console, f"by {', '.join(names)}: {len(groups)} groups{where}", table)


def first_and_last(items: Sequence[Any], max_rows: int) -> tuple[list[Any], list[Any], int]:
    """The first and last ``max_rows`` (at least one) of more than twice as many items, and how many are left out.

    One rule for every list of groups cut short: the terminal's tables and the HTML
    report show the same groups.
    """
    keep = max(max_rows, 1)
    if len(items) <= 2 * keep:
        return list(items), [], 0
    return list(items[:keep]), list(items[-keep:]), len(items) - 2 * keep


def _group_cell(value: Any) -> str:
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def print_titled(console: Any, title: str, table: Any) -> None:
    """A table under a title line: rich pads a table's own title to its width (trailing spaces)."""
    from rich.text import Text

    console.print(Text(title, style="table.title"))
    console.print(table)


def _table_rows(result: LossResult, max_rows: int) -> Iterator[tuple[str, str]]:
    kept = np.nonzero(~result.omitted.ravel())[0]
    total = int(kept.size)
    if max_rows <= 0:
        return
    head = total if total <= max_rows else (max_rows + 1) // 2
    tail = 0 if total <= max_rows else max_rows - head
    for index, ident, loss in iter_rows(result, kept[:head]):
        yield (printable(str(ident)) if result.ids is not None else str(index)), format_stat(loss)
    if tail:
        yield "…", f"({total - head - tail} more)"
        for index, ident, loss in iter_rows(result, kept[total - tail :]):
            yield (printable(str(ident)) if result.ids is not None else str(index)), format_stat(loss)


def _summary_table(result: LossResult) -> Any:
    """count, mean, std, the quantiles from min to max, the interval of the mean, TF's loss, counts."""
    from rich.table import Table

    summary = result.summary
    table = Table(show_header=False)
    table.add_column("statistic", style="bold")
    table.add_column("value", justify="right")
    table.add_row("count", str(summary.count))
    table.add_row("mean", format_stat(summary.mean))
    if result.unmatched is not None:  # rows matched by id: how many of them the mean is over
        table.add_row("matched", f"{result.unmatched.matched} of {result.unmatched.rows} rows")
    table.add_row("std", format_stat(summary.std))
    figures = result.figures
    for name, value in quantile_rows(summary, figures.percentiles):
        table.add_row(name, format_stat(value))
    if figures.confidence:
        interval = f"{format_stat(figures.ci_low)} to {format_stat(figures.ci_high)}"
        table.add_row(f"mean {figures.confidence:.0%} CI", interval)
    if figures.weighted or figures.reduction != DEFAULT_REDUCTION:
        loss = "weighted losses listed" if figures.reduction == "none" else format_stat(figures.loss)
        table.add_row(f"loss ({figures.reduction})", loss)
    table.add_row("zero vectors", str(summary.zero_vectors))
    table.add_row("omitted", str(summary.omitted))
    return table


def quantile_rows(summary: Summary, values: dict[str, float] | None) -> list[tuple[str, float]]:
    """min, p05, p25, median, p75, p95, p99, max: the rows of a table, in order."""
    values = values or {}
    rows = [("min", summary.min)]
    rows += [(key, values[key]) for key in ("p05", "p25") if key in values]
    rows.append(("median", summary.median))
    rows += [(key, values[key]) for key in ("p75", "p95", "p99") if key in values]
    rows.append(("max", summary.max))
    return rows


def _ranked_table(ranked: tuple[Ranked, ...] | tuple[PairRanked, ...], with_ids: bool) -> Any:
    """The worst or best rows: index (and id) and loss."""
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("index", justify="right", style="cyan")
    if with_ids:
        table.add_column("id")
    table.add_column("loss", justify="right")
    for item in ranked:
        index = ", ".join(map(str, item.index)) if isinstance(item.index, tuple) else str(item.index)
        table.add_row(index, *([Text(printable(str(item.id)))] if with_ids else []), format_stat(item.loss))
    return table
