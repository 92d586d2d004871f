"""``--report FILE.html``: one self-contained HTML page of a result, to share.

What a reviewer needs without a terminal: the summary (the same figures as ``--json``,
built from the same document, so the numbers cannot differ), histograms of the losses
and of the paired differences, the worst rows with their ids, the gates and whether
they passed. Charts are drawn by matplotlib (the optional ``report`` extra) and inlined
as SVG with text as paths, so the page needs no network, no fonts and no scripts.

Every value is escaped (file names, ids and model names are the user's data); each
number in a table carries its full-precision value in ``data-value`` beside the rounded
text it shows.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputUsageError
from ..io.guard import check_outputs
from ..render.writers import output_format_for

if TYPE_CHECKING:
    from ..compare.models import CompareResult
    from ..pipeline.result import LossResult

#: Shown for a figure that is not defined (JSON: null).
MISSING = "n/a"

#: Bins of a histogram the result does not carry already.
REPORT_BINS = 30

#: Worst rows listed when the command was not asked for any (``--top``).
REPORT_TOP = 10

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; }
th { background: #f6f8fa; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
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


# ----------------------------------------------------------------------------- the pages


def compute_report(result: LossResult, document: dict[str, Any]) -> str:
    """The page of one ``compute`` result; ``document`` is its ``--json`` document without losses."""
    from ..stats.distribution import histogram

    title = f"cosloss compute: {document['labels']} vs {document['predictions']}"
    parts = [_header(title), "<h2>Summary</h2>"]
    keys = ["count", "mean", "std", "min", "median", "max", "zero_vectors", "omitted"]
    keys += [k for k in ("loss", "ci_low", "ci_high") if document.get(k) is not None]
    parts.append(_pairs_table([(key, document.get(key)) for key in keys]))
    percentiles = [(key, document[key]) for key in ("p05", "p25", "p75", "p95", "p99") if key in document]
    if percentiles:
        parts.append(_pairs_table(percentiles, caption="percentiles of the losses"))
    if document.get("histogram"):
        edges, counts = document["histogram"]["edges"], document["histogram"]["counts"]
    else:
        edges_array, counts_array = histogram(result.kept(), REPORT_BINS)
        edges, counts = edges_array.tolist(), counts_array.tolist()
    parts.append("<h2>Distribution of the losses</h2>")
    parts.append(_figure(_histogram_svg(edges, counts, "loss"), f"{sum(counts)} losses in {len(counts)} bins"))
    worst = document.get("worst") or _worst_of(result)
    if worst:
        parts.append("<h2>Worst rows</h2>")
        columns = ["index", *(["id"] if any("id" in row for row in worst) else []), "loss"]
        parts.append(_rows_table(columns, worst))
    return _page(title, parts)


def compare_report(result: CompareResult, document: dict[str, Any]) -> str:
    """The page of one ``compare`` result; ``document`` is its ``--json`` document without losses."""
    from ..stats.distribution import histogram
    from ..stats.tail import tail_risk

    title = f"cosloss compare: {document['labels']} ({len(document['models'])} models, {document['count']} rows)"
    parts = [_header(title)]
    if document.get("gates_passed") is not None:
        verdict = "passed" if document["gates_passed"] else "failed"
        parts.append(f'<p>Gates: <span class="{verdict}">{verdict}</span></p>')
    parts.append("<h2>Models</h2>")
    model_columns = ["name", "count", "mean", "ci_low", "ci_high", "std", "median", "min", "max"]
    parts.append(_rows_table(model_columns, document["models"]))
    parts.append(f"<h2>Candidates against {html.escape(document['baseline'])}</h2>")
    comparison_columns = ["candidate", "mean_difference", "ci_low", "ci_high", "better", "worse", "ties"]
    comparison_columns += ["p_value_t", "p_value_wilcoxon", "effect_size", "verdict"]
    parts.append(_rows_table(comparison_columns, document["comparisons"]))
    tails = [{"candidate": item["candidate"], **item["tail"]} for item in document["comparisons"] if "tail" in item]
    if tails:
        parts.append("<h3>Tail risk of d = candidate - baseline</h3>")
        tail_columns = ["candidate", "p01", "p05", "p50", "p95", "p99", "worse_by", "worse_count", "worse_share"]
        parts.append(_rows_table(tail_columns, tails))
    gates = [
        {"candidate": item["candidate"], **gate} for item in document["comparisons"] for gate in item.get("gates", [])
    ]
    if gates:
        parts.append("<h3>Gates</h3>")
        parts.append(_rows_table(["candidate", "rule", "bound", "value", "passed"], gates))
    parts.append("<h2>Distribution of the losses</h2>")
    for model in document["models"]:
        model_edges, model_counts = histogram(result.losses[model["name"]], REPORT_BINS)
        svg = _histogram_svg(model_edges.tolist(), model_counts.tolist(), "loss")
        parts.append(_figure(svg, f"losses of {model['name']}"))
    parts.append("<h2>Paired differences</h2>")
    for item in document["comparisons"]:
        candidate, baseline = result.losses[item["candidate"]], result.losses[item["baseline"]]
        tail = item.get("tail", {})
        edges: list[float]
        counts: list[int]
        if "histogram" in tail:
            edges, counts = tail["histogram"]["edges"], tail["histogram"]["counts"]
        else:
            risk = tail_risk(candidate, baseline, bins=REPORT_BINS)
            edges, counts = list(risk.edges), list(risk.counts)
        caption = f"d = {item['candidate']} - {item['baseline']} per row (right of 0: the candidate is worse)"
        parts.append(_figure(_histogram_svg(edges, counts, "d", zero_line=True), caption))
        worst = tail.get("worst") or _worst_differences(result, item["candidate"], item["baseline"])
        if worst:
            parts.append(f"<h3>{html.escape(item['candidate'])}: the rows made worst</h3>")
            columns = ["index", *(["id"] if any("id" in row for row in worst) else [])]
            parts.append(_rows_table([*columns, "difference", "baseline", "candidate"], worst))
    return _page(title, parts)


def _worst_of(result: LossResult) -> list[dict[str, Any]]:
    """The :data:`REPORT_TOP` largest losses with their index and id, when the result lists none."""
    from ..base.values import json_value
    from ..stats.tail import largest

    flat = np.ravel(result.losses) if result.losses is not None else np.empty(0)
    if flat.size == 0:
        return []
    rows = largest(np.where(np.ravel(result.omitted), np.nan, flat), REPORT_TOP)
    ids = None if result.ids is None or np.size(result.ids) != flat.size else np.ravel(result.ids)
    return [
        {"index": row, **({} if ids is None else {"id": json_value(ids[row])}), "loss": float(flat[row])}
        for row in rows
    ]


def _worst_differences(result: CompareResult, candidate: str, baseline: str) -> list[dict[str, Any]]:
    from ..base.values import json_value
    from ..stats.tail import largest

    c, b = result.losses[candidate], result.losses[baseline]
    rows = largest(c - b, REPORT_TOP)
    return [
        {
            "index": int(result.positions[row]),
            **({} if result.ids is None else {"id": json_value(result.ids[row])}),
            "difference": float(c[row] - b[row]),
            "baseline": float(b[row]),
            "candidate": float(c[row]),
        }
        for row in rows
    ]


# ----------------------------------------------------------------------------- HTML pieces


def _page(title: str, parts: Iterable[str]) -> str:
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        '<p class="note">Made by cosloss. Numbers are rounded to 6 significant digits; each cell\'s '
        "<code>data-value</code> holds the full value of the JSON output.</p>\n</body>\n</html>\n"
    )


def _header(title: str) -> str:
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


def _pairs_table(pairs: Sequence[tuple[str, Any]], caption: str | None = None) -> str:
    rows = "".join(f"<tr><th>{html.escape(key)}</th>{_cell(value)}</tr>" for key, value in pairs)
    head = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{head}{rows}</table>"


def _rows_table(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(column)) for column in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _histogram_svg(edges: Sequence[float], counts: Sequence[int], what: str, zero_line: bool = False) -> str:
    """A histogram drawn by matplotlib (Agg), as inline SVG with its text as paths (no fonts needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "cosloss"}):
        figure, axes = plt.subplots(figsize=(7.0, 2.6))
        try:
            axes.stairs(counts, edges, fill=True, color="#4c72b0", alpha=0.85)
            if zero_line:
                axes.axvline(0.0, color="#cf222e", linewidth=1)
            axes.set_xlabel(what)
            axes.set_ylabel("rows")
            axes.spines[["top", "right"]].set_visible(False)
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
    return text
