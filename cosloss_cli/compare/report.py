"""The ``--report FILE.html`` pages of ``compare`` and ``compare --runs``.

Beside :mod:`.render` and :mod:`.runs_render`, the terminal and JSON renderings of the
same results: for ``compare``, the models, the candidates against the baseline, their
tail risk and gates, the histograms of the losses and of the paired differences with the
rows made worst, and the ``--group-by`` groups (a table, cut as the terminal cuts it, and
a chart per candidate of each group's mean difference with its interval); for ``--runs``,
each candidate's trend over the runs and a table per run and candidate. The page frame,
tables and charts are :mod:`cosloss_cli.render.report`'s.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ..base.values import json_value
from ..render.report import (
    REPORT_BINS,
    REPORT_GROUPS,
    REPORT_TOP,
    ForestRow,
    forest_svg,
    grid_table,
    group_key_cells,
    group_key_text,
    histogram_svg,
    html_page,
    left_out_words,
    page_heading,
    rows_table,
    svg_figure,
    trend_svg,
    with_gap_row,
)
from ..render.result import first_and_last
from ..stats.distribution import histogram
from ..stats.tail import largest, tail_risk

if TYPE_CHECKING:
    from .models import CompareResult

#: The columns of a group's comparison with one candidate.
GROUP_COMPARISON: tuple[str, ...] = ("mean_difference", "ci_low", "ci_high", "p_value_t", "p_value_wilcoxon")
GROUP_COMPARISON += ("p_value_holm",)
GROUP_COMPARISON += ("verdict", "worse_count", "worse_share")


def compare_report(result: CompareResult, document: dict[str, Any], max_rows: int = REPORT_GROUPS) -> str:
    """The page of one ``compare`` result; ``document`` is its ``--json`` document without losses."""
    title = f"cosloss compare: {document['labels']} ({len(document['models'])} models, {document['count']} rows)"
    parts = [page_heading(title)]
    if document.get("gates_passed") is not None:
        verdict = "passed" if document["gates_passed"] else "failed"
        parts.append(f'<p>Gates: <span class="{verdict}">{verdict}</span></p>')
    parts.append("<h2>Models</h2>")
    model_columns = ["name", "count", "mean", "ci_low", "ci_high", "std", "median", "min", "max"]
    parts.append(rows_table(model_columns, document["models"]))
    parts.append(f"<h2>Candidates against {html.escape(document['baseline'])}</h2>")
    comparison_columns = ["candidate", "mean_difference", "ci_low", "ci_high", "better", "worse", "ties"]
    comparison_columns += ["p_value_t", "p_value_wilcoxon", "effect_size", "verdict"]
    parts.append(rows_table(comparison_columns, document["comparisons"]))
    tails = [{"candidate": item["candidate"], **item["tail"]} for item in document["comparisons"] if "tail" in item]
    if tails:
        parts.append("<h3>Tail risk of d = candidate - baseline</h3>")
        tail_columns = ["candidate", "p01", "p05", "p50", "p95", "p99", "worse_by", "worse_count", "worse_share"]
        parts.append(rows_table(tail_columns, tails))
    gates = [
        {"candidate": item["candidate"], **gate} for item in document["comparisons"] for gate in item.get("gates", [])
    ]
    if gates:
        parts.append("<h3>Gates</h3>")
        parts.append(rows_table(["candidate", "rule", "bound", "value", "passed"], gates))
    parts.append("<h2>Distribution of the losses</h2>")
    for model in document["models"]:
        model_edges, model_counts = histogram(result.losses[model["name"]], REPORT_BINS)
        svg = histogram_svg(model_edges.tolist(), model_counts.tolist(), "loss")
        parts.append(svg_figure(svg, f"losses of {model['name']}"))
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
        parts.append(svg_figure(histogram_svg(edges, counts, "d", zero_line=True), caption))
        worst = tail.get("worst") or _worst_differences(result, item["candidate"], item["baseline"])
        if worst:
            parts.append(f"<h3>{html.escape(item['candidate'])}: the rows made worst</h3>")
            columns = ["index", *(["id"] if any("id" in row for row in worst) else [])]
            parts.append(rows_table([*columns, "difference", "baseline", "candidate"], worst))
    if document.get("groups") is not None:
        parts.extend(_compared_groups(document, max_rows))
    return html_page(title, parts)


def _worst_differences(result: CompareResult, candidate: str, baseline: str) -> list[dict[str, Any]]:
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


def runs_report(document: dict[str, Any]) -> str:
    """The page of ``compare --runs``: ``document`` is its ``--json`` document (``runs_document``).

    Each candidate's trend over the runs (mean difference with its interval, and the
    baseline's mean loss), in the order of the runs in the document (the table's); a row
    per run and candidate with the JSON's figures; the models of each run; the failed gates.
    """
    runs = document["runs"]
    failed = document["failed"]
    title = f"cosloss compare --runs: {document['root']} ({len(runs)} runs" + (f", {failed} failed)" if failed else ")")
    parts = [page_heading(title)]
    if document.get("gates_passed") is not None:
        verdict = "passed" if document["gates_passed"] else "failed"
        parts.append(f'<p>Gates: <span class="{verdict}">{verdict}</span></p>')
    names = [str(run["run"]) for run in runs]
    parts.append("<h2>Trend per candidate</h2>")
    if not document["trend"]:
        parts.append('<p class="note">No run could be compared: no trend to draw (each run says why below).</p>')
    for candidate in document["trend"]:
        found = [_comparison_of(run, candidate) for run in runs]
        differences = [(None, None, None) if item is None else _interval_of(item) for item in found]
        baseline = [
            None if item is None else _model_mean(run, item["baseline"]) for run, item in zip(runs, found, strict=True)
        ]
        baselines = sorted({item["baseline"] for item in found if item is not None})
        caption = (
            f"{candidate}: mean difference from {', '.join(baselines)} per run with its interval "
            f"(above 0: the candidate is worse), and the mean loss of {', '.join(baselines)}; "
            "runs in the order of the table"
        )
        parts.append(svg_figure(trend_svg(names, differences, baseline), caption))
    parts.append("<h2>Each run</h2>")
    columns = ["run", "baseline", "candidate", "count", "baseline_mean", "mean_difference", "ci_low", "ci_high"]
    columns += ["p_value_t", "p_value_wilcoxon", "p_value_holm", "verdict", "p99", "worse_share", "gates_passed"]
    columns += ["error"] if failed else []
    records: list[dict[str, Any]] = []
    for run in runs:
        if "error" in run:
            records.append({"run": run["run"], "verdict": "error", "error": run["error"]})
            continue
        for item in run["comparisons"]:
            tail = item.get("tail") or {}
            gates = item.get("gates") or []
            records.append(
                {
                    **{key: item.get(key) for key in columns if key in item},
                    "run": run["run"],
                    "count": run["count"],
                    "baseline_mean": _model_mean(run, item["baseline"]),
                    "p99": tail.get("p99"),
                    "worse_share": tail.get("worse_share"),
                    "gates_passed": all(gate["passed"] for gate in gates) if gates else None,
                }
            )
    rows = [[record.get(column) for column in columns] for record in records]
    parts.append(grid_table(columns, rows))
    models = [
        [run["run"], model["name"], *(model.get(key) for key in ("count", "mean", "ci_low", "ci_high", "median"))]
        for run in runs
        for model in run.get("models", [])
    ]
    parts.append("<h2>Models of each run</h2>")
    parts.append(grid_table(["run", "model", "count", "mean", "ci_low", "ci_high", "median"], models))
    gated = [
        [run["run"], item["candidate"], gate["rule"], gate["bound"], gate["value"], gate["passed"]]
        for run in runs
        for item in run.get("comparisons", [])
        for gate in item.get("gates", [])
    ]
    if gated:
        failing = [row for row in gated if not row[-1]]
        parts.append("<h2>Failed gates</h2>")
        if failing:
            parts.append(grid_table(["run", "candidate", "rule", "bound", "value", "passed"], failing))
        else:
            parts.append(f"<p>Every gate passed ({len(gated)} in all).</p>")
    return html_page(title, parts)


def _comparison_of(run: dict[str, Any], candidate: str) -> dict[str, Any] | None:
    return next((item for item in run.get("comparisons", []) if item["candidate"] == candidate), None)


def _model_mean(run: dict[str, Any], name: str) -> float | None:
    return next((model.get("mean") for model in run.get("models", []) if model["name"] == name), None)


def _interval_of(item: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    return item.get("mean_difference"), item.get("ci_low"), item.get("ci_high")


def _compared_groups(document: dict[str, Any], max_rows: int) -> list[str]:
    """``compare --group-by``: a row per group and candidate, the failed gates, a chart per candidate."""
    groups = document["groups"]
    baseline = document["baseline"]
    names = list(groups[0]["key"]) if groups else []
    gated = any(entry["gates"] for group in groups for entry in group["comparisons"])
    columns = [*names, "candidate", "count", "baseline_mean", "candidate_mean", *GROUP_COMPARISON]
    columns += ["gates_passed"] if gated else []
    head, tail, left_out = first_and_last(groups, max_rows)
    rows: list[list[Any]] = []
    cut_after = None
    for number, group in enumerate(head + tail):
        if left_out and number == len(head):
            cut_after = len(rows)
        means = {model["name"]: model.get("mean") for model in group.get("models", [])}
        for entry in group["comparisons"]:
            row = [*group_key_cells(group["key"]), entry["candidate"], group["count"], means.get(baseline)]
            row += [means.get(entry["candidate"]), *(entry.get(key) for key in GROUP_COMPARISON)]
            if gated:
                row.append(all(gate["passed"] for gate in entry["gates"]) if entry["gates"] else None)
            rows.append(row)
    title = f"By {', '.join(names)}: {len(groups)} groups, candidate - {baseline}"
    parts = [f"<h2>{html.escape(title)}</h2>"]
    parts.append(grid_table(columns, rows, cut_after=cut_after, left_out=left_out))
    failing = [
        [*group_key_cells(group["key"]), entry["candidate"], gate["rule"], gate["bound"], gate["value"], gate["passed"]]
        for group in groups
        for entry in group["comparisons"]
        for gate in entry["gates"]
        if not gate["passed"]
    ]
    if failing:
        first, last, cut = first_and_last(failing, max_rows)
        parts.append(f"<h3>Failed gates in the groups ({len(failing)})</h3>")
        gate_columns = [*names, "candidate", "rule", "bound", "value", "passed"]
        parts.append(grid_table(gate_columns, first + last, cut_after=len(first) if cut else None, left_out=cut))
    elif gated:
        parts.append("<p>Every gate passed in every group.</p>")
    level = f"{document['confidence'] * 100:g}%"
    parts.append(f"<h3>Mean difference per group, a chart per candidate against {html.escape(baseline)}</h3>")
    candidates = list(dict.fromkeys(entry["candidate"] for group in groups for entry in group["comparisons"]))
    for candidate in candidates:
        shown: list[ForestRow] = []
        for group in head + tail:
            entry = next((item for item in group["comparisons"] if item["candidate"] == candidate), None)
            found = (None, None, None) if entry is None else _interval_of(entry)
            shown.append((group_key_text(group["key"]), *found))
        shown = with_gap_row(shown, len(head), left_out)
        caption = (
            f"{candidate}: mean difference from {baseline} per group of {', '.join(names)} with its {level} "
            "interval (right of 0: the candidate is worse)" + left_out_words(left_out, len(groups))
        )
        parts.append(svg_figure(forest_svg(shown, f"mean({candidate} - {baseline})", zero_line=True), caption))
    return parts
