"""``--report FILE.html``: one self-contained HTML page of a result, to share.

What a reviewer needs without a terminal: the summary (the same figures as ``--json``,
built from the same document, so the numbers cannot differ), histograms of the losses,
the worst rows with their ids, the gates and whether they passed, the ``--group-by``
groups (a table, cut as the terminal cuts it, and a chart of each group's mean with its
interval). This module holds what every page shares (the page frame, tables, cells,
the charts) and the page of ``compute``; the pages of ``compare`` and ``compare --runs``
are in :mod:`cosloss_cli.compare.report`, that of ``batch`` in
:mod:`cosloss_cli.batch.report`, each beside its command's other renderers. Charts are
drawn by matplotlib (the optional ``report`` extra, imported only when a chart is drawn)
and inlined as SVG with text as paths, so the page needs no network, no fonts and no
scripts.

Every value is escaped (file names, ids and model names are the user's data); each
number in a table carries its full-precision value in ``data-value`` beside the rounded
text it shows.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base.shown import printable
from ..base.values import json_value
from ..errors import InputUsageError
from ..io.guard import check_outputs
from ..stats.distribution import histogram
from ..stats.tail import largest
from .result import first_and_last
from .writers import output_format_for

if TYPE_CHECKING:
    from ..pipeline.result import LossResult

#: Shown for a figure that is not defined (JSON: null).
MISSING = "n/a"

#: Bins of a histogram the result does not carry already.
REPORT_BINS = 30

#: Worst rows listed when the command was not asked for any (``--top``).
REPORT_TOP = 10

#: Groups shown at each end of a long list of groups (the terminal's default ``--max-rows``).
REPORT_GROUPS = 20

#: The figures of a group, in the order of their columns; any other figure a group has follows.
GROUP_FIGURES: tuple[str, ...] = ("count", "mean", "loss", "ci_low", "ci_high", "std", "min", "p05", "p25")
GROUP_FIGURES += ("median", "p75", "p95", "p99", "max")

#: A row of a chart of intervals: its name, the value, the interval's low and high ends.
ForestRow = tuple[str, float | None, float | None, float | None]

STYLE = """
tr.cut td { text-align: center; color: #57606a; font-style: italic; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; }
th { background: #f6f8fa; text-align: left; }
td { white-space: nowrap; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
.passed { color: #1a7f37; font-weight: 600; } .failed { color: #cf222e; font-weight: 600; }
.better { color: #1a7f37; } .worse { color: #cf222e; }
figure { margin: 0.5rem 0 1.5rem; } figcaption { font-size: 0.85rem; color: #57606a; }
p.note { color: #57606a; font-size: 0.9rem; }
"""


def require_matplotlib() -> None:
    """A usage error naming the extra when matplotlib is not installed (checked before the work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise InputUsageError(
            "--report draws its charts with matplotlib, which is not installed",
            hint="pip install 'cosloss[report]'",
        ) from exc


def check_outputs_first(output_file: str | None, report_file: str | None, inputs: list[str | None]) -> None:
    """``-o FILE`` and ``--report FILE.html``, refused before any work: an output name without a
    format, a report without matplotlib, or an output that is one of the ``inputs``."""
    if output_file:
        output_format_for(output_file)
    if report_file:
        require_matplotlib()
    check_outputs([output_file, report_file], inputs)


# ----------------------------------------------------------------------------- the compute page


def compute_report(result: LossResult, document: dict[str, Any], max_rows: int = REPORT_GROUPS) -> str:
    """The page of one ``compute`` result; ``document`` is its ``--json`` document without losses.

    ``max_rows``: with more than twice as many groups, the first and last ``max_rows``
    are shown (``--max-rows``, as the terminal's table of groups).
    """
    title = f"cosloss compute: {document['labels']} vs {document['predictions']}"
    parts = [page_heading(title), "<h2>Summary</h2>"]
    keys = ["count", "mean", "std", "min", "median", "max", "zero_vectors", "omitted"]
    keys += [k for k in ("loss", "ci_low", "ci_high") if document.get(k) is not None]
    parts.append(pairs_table([(key, document.get(key)) for key in keys]))
    percentiles = [(key, document[key]) for key in ("p05", "p25", "p75", "p95", "p99") if key in document]
    if percentiles:
        parts.append(pairs_table(percentiles, caption="percentiles of the losses"))
    if document.get("histogram"):
        edges, counts = document["histogram"]["edges"], document["histogram"]["counts"]
    else:
        edges_array, counts_array = histogram(result.kept(), REPORT_BINS)
        edges, counts = edges_array.tolist(), counts_array.tolist()
    parts.append("<h2>Distribution of the losses</h2>")
    parts.append(svg_figure(histogram_svg(edges, counts, "loss"), f"{sum(counts)} losses in {len(counts)} bins"))
    worst = document.get("worst") or _worst_of(result)
    if worst:
        parts.append("<h2>Worst rows</h2>")
        columns = ["index", *(["id"] if any("id" in row for row in worst) else []), "loss"]
        parts.append(rows_table(columns, worst))
    if document.get("groups") is not None:
        parts.extend(loss_groups_section(document["groups"], document.get("confidence"), max_rows))
    return html_page(title, parts)


def _worst_of(result: LossResult) -> list[dict[str, Any]]:
    """The :data:`REPORT_TOP` largest losses with their index and id, when the result lists none."""
    flat = np.ravel(result.losses) if result.losses is not None else np.empty(0)
    if flat.size == 0:
        return []
    rows = largest(np.where(np.ravel(result.omitted), np.nan, flat), REPORT_TOP)
    ids = None if result.ids is None or np.size(result.ids) != flat.size else np.ravel(result.ids)
    return [
        {"index": row, **({} if ids is None else {"id": json_value(ids[row])}), "loss": float(flat[row])}
        for row in rows
    ]


# ----------------------------------------------------------------------------- groups (--group-by, on every page)


def group_key_cells(key: dict[str, Any]) -> list[Any]:
    """A group's key values as cells: a missing value is shown as ``null``, as the terminal shows it."""
    return ["null" if value is None else value for value in key.values()]


def group_key_text(key: dict[str, Any]) -> str:
    return ", ".join(f"{name}={'null' if value is None else value}" for name, value in key.items())


def loss_groups_section(groups: Sequence[dict[str, Any]], confidence: float | None, max_rows: int) -> list[str]:
    """``compute --group-by``: a row per group (key columns, then its figures) and a chart of the means."""
    names = list(groups[0]["key"]) if groups else []
    figures = [key for key in GROUP_FIGURES if any(key in group for group in groups)]
    figures += [key for group in groups for key in group if key != "key" and key not in figures]
    figures = list(dict.fromkeys(figures))
    head, tail, left_out = first_and_last(groups, max_rows)
    rows = [[*group_key_cells(group["key"]), *(group.get(key) for key in figures)] for group in head + tail]
    parts = [f"<h2>By {html.escape(', '.join(names))}: {len(groups)} groups</h2>"]
    parts.append(grid_table([*names, *figures], rows, cut_after=len(head) if left_out else None, left_out=left_out))
    if groups:
        level = f" with its {confidence * 100:g}% interval" if confidence else ""
        if confidence is None and any(group.get("ci_low") is not None for group in groups):
            level = " with its interval"
        shown: list[ForestRow] = [
            (group_key_text(group["key"]), group.get("mean"), group.get("ci_low"), group.get("ci_high"))
            for group in head + tail
        ]
        shown = with_gap_row(shown, len(head), left_out)
        caption = f"mean loss per group of {', '.join(names)}{level}" + left_out_words(left_out, len(groups))
        parts.append(svg_figure(forest_svg(shown, "mean loss", zero_line=False), caption))
    return parts


def with_gap_row(rows: list[ForestRow], at: int, left_out: int) -> list[ForestRow]:
    """The rows of a chart with an empty row naming the groups left out, where the table's cut is."""
    if not left_out:
        return rows
    return [*rows[:at], (f"... {left_out} left out", None, None, None), *rows[at:]]


def left_out_words(left_out: int, total: int) -> str:
    return f"; the first and last {(total - left_out) // 2} of {total} groups" if left_out else ""


# ----------------------------------------------------------------------------- HTML pieces


def html_page(title: str, parts: Iterable[str]) -> str:
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        '<p class="note">Made by cosloss. Numbers are rounded to 6 significant digits; each cell\'s '
        "<code>data-value</code> holds the full value of the JSON output.</p>\n</body>\n</html>\n"
    )


def page_heading(title: str) -> str:
    return f"<h1>{html.escape(title)}</h1>"


def _cell(value: Any) -> str:
    """A table cell: numbers right-aligned with their full value in ``data-value``; text escaped."""
    if value is None:
        return f"<td>{MISSING}</td>"
    if isinstance(value, bool):
        word = "yes" if value else "no"
        return f'<td class="{"passed" if value else "failed"}" data-value="{str(value).lower()}">{word}</td>'
    if isinstance(value, (int, float)):
        shown = f"{value:.6g}" if isinstance(value, float) and math.isfinite(value) else str(value)
        return f'<td class="number" data-value="{html.escape(repr(value))}">{html.escape(shown)}</td>'
    text = str(value)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        text = text.encode("unicode_escape").decode("ascii")
    css = f' class="{text}"' if text in ("better", "worse") else ""
    return f"<td{css}>{html.escape(text)}</td>"


def pairs_table(pairs: Sequence[tuple[str, Any]], caption: str | None = None) -> str:
    rows = "".join(f"<tr><th>{html.escape(key)}</th>{_cell(value)}</tr>" for key, value in pairs)
    head = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{head}{rows}</table>"


def rows_table(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(column)) for column in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def grid_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], cut_after: int | None = None, left_out: int = 0
) -> str:
    """A table of rows given as lists (group keys may share a name with a figure); maybe a cut line.

    ``cut_after``: the row after which ``left_out`` rows are not shown, said in one line
    spanning the table (the JSON output has them all).
    """
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    lines = ["<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows]
    if cut_after is not None:
        words = f"... {left_out} group{'s' if left_out != 1 else ''} left out here (the JSON output has them all)"
        lines.insert(cut_after, f'<tr class="cut"><td colspan="{len(columns)}">{words}</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def svg_figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def histogram_svg(edges: Sequence[float], counts: Sequence[int], what: str, zero_line: bool = False) -> str:
    """A histogram drawn by matplotlib (Agg), as inline SVG with its text as paths (no fonts needed)."""
    with _chart((7.0, 2.6)) as (drawn, axes):
        axes.stairs(counts, edges, fill=True, color="#4c72b0", alpha=0.85)
        if zero_line:
            axes.axvline(0.0, color="#cf222e", linewidth=1)
        axes.set_xlabel(what)
        axes.set_ylabel("rows")
    return drawn.svg


def forest_svg(rows: Sequence[ForestRow], what: str, zero_line: bool) -> str:
    """A point per row (name, value, low, high) with its interval as a bar, the first row on top."""
    count = max(len(rows), 1)
    with _chart((7.0, min(1.0 + 0.26 * count, 14.0))) as (drawn, axes):
        where = np.arange(len(rows))[::-1]
        values, low, high = _floats([row[1:] for row in rows])
        drawn_at = np.isfinite(low) & np.isfinite(high)
        axes.hlines(where[drawn_at], low[drawn_at], high[drawn_at], color="#4c72b0")
        axes.plot(values, where, "o", color="#4c72b0")
        if zero_line:
            axes.axvline(0.0, color="#cf222e", linewidth=1)
        axes.set_yticks(where, [_chart_text(name, 40) for name, *_ in rows])
        axes.set_ylim(-0.7, len(rows) - 0.3)
        axes.set_xlabel(_chart_text(what, 80))
    return drawn.svg


def trend_svg(
    runs: Sequence[str],
    differences: Sequence[tuple[float | None, float | None, float | None]],
    baseline: Sequence[float | None],
) -> str:
    """Above: the mean difference per run with its interval (0 marked); below: the baseline's mean loss."""
    import matplotlib.pyplot as plt

    where = np.arange(len(runs))
    with _chart((7.0, 4.2), rows=2) as (drawn, (top, bottom)):
        values, low, high = _floats(differences)
        drawn_at = np.isfinite(low) & np.isfinite(high)
        top.vlines(where[drawn_at], low[drawn_at], high[drawn_at], color="#4c72b0")
        top.plot(where, values, "o-", color="#4c72b0")
        top.axhline(0.0, color="#cf222e", linewidth=1)
        top.set_ylabel("mean difference")
        plt.setp(top.get_xticklabels(), visible=False)
        bottom.plot(where, [np.nan if v is None else v for v in baseline], "s-", color="#57606a")
        bottom.set_ylabel("baseline mean")
        step = max(1, math.ceil(len(runs) / 12))  # a name every step-th run: 12 names at most
        bottom.set_xticks(where[::step], [_chart_text(name, 24) for name in runs[::step]])
        if len(runs) > 6:
            plt.setp(bottom.get_xticklabels(), rotation=45, ha="right")
        bottom.set_xlabel("run")
    return drawn.svg


def _floats(rows: Sequence[tuple[float | None, float | None, float | None]]) -> tuple[np.ndarray, ...]:
    """Values, lows and highs as three float arrays, NaN for null; an interval is drawn as its two
    ends, not as distances from the value (a bootstrap interval need not hold its estimate)."""
    table = np.array([[np.nan if x is None else x for x in row] for row in rows], dtype=float).reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2]


def _chart_text(text: str, width: int) -> str:
    """A name as chart text: control characters escaped, ``$`` not read as mathtext, long names cut."""
    shown = printable(str(text))
    if len(shown) > width:
        shown = shown[: width - 1] + "…"
    return shown.replace("$", r"\$")


class _Drawn:
    """The SVG text of a chart, set when its ``with _chart(...)`` block ends."""

    svg = ""


@contextmanager
def _chart(size: tuple[float, float], rows: int = 1) -> Iterator[tuple[_Drawn, Any]]:
    """A matplotlib figure (Agg) to draw on; on leaving, its SVG (text as paths, no fonts) is in ``.svg``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    drawn = _Drawn()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "cosloss"}):
        figure, axes = plt.subplots(rows, 1, figsize=size, sharex=rows > 1)
        try:
            yield drawn, axes
            for each in np.atleast_1d(axes):
                each.spines[["top", "right"]].set_visible(False)
            figure.tight_layout()
            buffer = io.StringIO()
            figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        finally:
            plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if 0 <= start < end:  # matplotlib's RDF block: namespaces and a tool name, nothing a reader sees
        text = text[:start] + text[end + len("</metadata>") :]
    drawn.svg = text
