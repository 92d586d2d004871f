"""Renderers of ``cosloss compare``: a :class:`~cosloss_cli.compare.models.CompareResult` as a table, JSON, NDJSON, CSV.

Every writer has the signature of the registries in :mod:`cosloss_cli.render.output`
(``writer(result, out, view)``); the per-row formats (NDJSON, CSV, Parquet, NPY) have a
column per model, in the order the models were given, the baseline first. Floats are
written with ``repr`` (full precision); NaN and infinities become ``null`` in JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO, TextIO

import numpy as np

from ..base.shown import printable, shown_path
from ..base.values import json_value
from ..core.cosine import shape_text
from ..render.output import DEFAULT_VIEW, View, csv_writer
from ..render.result import (
    first_and_last,
    float_texts,
    group_names,
    print_titled,
    table_console,
    write_group_csv,
    write_group_lines,
)
from ..stats.distribution import sparkline
from ..stats.intervals import BETTER, WORSE
from ..stats.tail import DIFFERENCE_PERCENTILES
from .models import CompareResult

#: Rows turned into text at a time: Python objects for a chunk, never for all of them.
_CHUNK = 65536

#: Shown in the table for a figure that is not defined (JSON: null).
MISSING = "n/a"

#: Verdict colours on a terminal (lower loss is better).
VERDICT_STYLES = {BETTER: "green", WORSE: "red"}


def write_json(result: CompareResult, out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """One JSON document (:meth:`CompareResult.to_json_dict`); ``view.losses`` off leaves out losses and ids."""
    out.write(json.dumps(result.to_json_dict(include_losses=view.losses), allow_nan=False) + "\n")


def _row_chunks(result: CompareResult) -> Iterator[tuple[list[int], list[Any] | None, list[Iterator[str]]]]:
    """(positions, ids, a text iterator per model) for each chunk of the compared rows."""
    for start in range(0, result.rows, _CHUNK):
        stop = min(start + _CHUNK, result.rows)
        ids = None if result.ids is None else [json_value(v) for v in result.ids[start:stop]]
        texts = [float_texts(values[start:stop]) for values in result.losses.values()]
        yield result.positions[start:stop].tolist(), ids, texts


#: The fields of a group's comparison with one candidate (``--group-by``), after its ``key``:
#: the CSV columns (NDJSON lines also hold the ``gates`` themselves).
GROUP_FIELDS = (
    "count",
    "baseline",
    "candidate",
    "mean_difference",
    "ci_low",
    "ci_high",
    "p_value_t",
    "p_value_wilcoxon",
    "p_value_holm",
    "verdict",
    "worse_count",
    "worse_share",
    "gates_passed",
)


def group_records(result: CompareResult) -> Iterator[dict[str, Any]]:
    """A flat record per group and candidate: the group's key and count, then the comparison.

    The fields are those of the JSON's ``groups[].comparisons[]``, with the group's
    ``key`` and ``count`` first and the ``baseline`` named; ``gates_passed`` is whether
    every gate passed in that group (null without gates).
    """
    baseline = next(iter(result.losses))
    for group in result.groups or ():
        for item in group["comparisons"]:
            gates = item["gates"]
            yield {
                "key": group["key"],
                "count": group["count"],
                "baseline": baseline,
                **item,
                "gates_passed": all(gate["passed"] for gate in gates) if gates else None,
            }


def write_ndjson(result: CompareResult, out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """A line per compared row: ``{"index": 0, "id": ..., "a": 0.1, "b": 0.08}`` (``id`` only with ids).

    On stdout with ``--group-by`` (``view.groups``): a line per group and candidate
    instead (:func:`group_records`).
    """
    if view.groups and result.groups is not None:
        write_group_lines(out, group_records(result))
        return
    keys = [json.dumps(name) for name in result.losses]
    for positions, ids, texts in _row_chunks(result):
        lines = []
        for row, (position, *values) in enumerate(zip(positions, *texts, strict=True)):
            ident = "" if ids is None else f'"id": {json.dumps(ids[row])}, '
            fields = ", ".join(f"{key}: {value}" for key, value in zip(keys, values, strict=True))
            lines.append(f'{{"index": {position}, {ident}{fields}}}\n')
        out.write("".join(lines))


def write_csv(result: CompareResult, out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """``index[,id],a,b``: a row per compared row, a column per model (full precision; NaN as ``nan``).

    On stdout with ``--group-by`` (``view.groups``): a row per group and candidate
    instead, the key columns then :data:`GROUP_FIELDS`.
    """
    if view.groups and result.groups is not None:
        write_group_csv(out, group_names(result.groups, view.groups), group_records(result), GROUP_FIELDS)
        return
    writer = csv_writer(out)
    writer.writerow(["index", *(["id"] if result.ids is not None else []), *result.losses])
    for start in range(0, result.rows, _CHUNK):
        stop = min(start + _CHUNK, result.rows)
        columns: list[Any] = [result.positions[start:stop].tolist()]
        if result.ids is not None:
            columns.append([json_value(v) for v in result.ids[start:stop]])
        columns += [map(repr, values[start:stop].tolist()) for values in result.losses.values()]
        writer.writerows(zip(*columns, strict=False))


def write_parquet(result: CompareResult, handle: BinaryIO, view: View = DEFAULT_VIEW) -> None:
    """A table of ``index``, ``id`` (with ids) and a float64 column per model."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {"index": pa.array(result.positions, type=pa.int64())}
    if result.ids is not None:
        columns["id"] = pa.array(result.ids.tolist())
    for name, values in result.losses.items():
        columns[name] = pa.array(values, type=pa.float64())
    pq.write_table(pa.table(columns), handle)


def write_npy(result: CompareResult, handle: BinaryIO, view: View = DEFAULT_VIEW) -> None:
    """A float64 array of shape (rows, models): a column per model, in the order given."""
    np.save(handle, np.column_stack(list(result.losses.values())), allow_pickle=False)


#: Significant digits of the table (JSON, NDJSON and CSV have full precision).
DIGITS = 4
P_DIGITS = 3


def _figure(value: float | None, digits: int = DIGITS) -> str:
    return MISSING if value is None else f"{value:.{digits}g}"


def _p_value(value: float | None) -> str:
    """A p-value for the table: one that underflowed to 0.0 is below every double near it, not zero.

    scipy's t and Wilcoxon p-values of two clearly different models reach 0.0; "0" would
    read as a certainty no test gives. JSON keeps the float itself.
    """
    if value == 0.0:
        return "< 1e-300"
    return _figure(value, P_DIGITS)


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return MISSING
    return f"[{_figure(low)}, {_figure(high)}]"


def _estimate(name: str, value: float | None, low: float | None, high: float | None) -> list[Any]:
    """The first cells of a model's or a candidate's row: its name, a mean and the interval of it."""
    from rich.text import Text

    return [Text(printable(name)), _figure(value), _interval(low, high)]


def _table(*titles: str) -> Any:
    """A rich table whose first column is a model name (left, cyan) and the others figures (right)."""
    from rich.table import Table

    table = Table()
    for i, title in enumerate(titles):
        table.add_column(
            title,
            justify="left" if i == 0 or title in ("verdict", "gate", "differences") else "right",
            style="cyan" if i == 0 else None,
            no_wrap=title == "differences",
        )
    return table


def render_table(result: CompareResult, out: TextIO, view: View = DEFAULT_VIEW) -> None:
    """The models (mean and its interval), then a row per candidate: its differences, then its tests.

    Two tables per comparison keep each under 100 columns; the verdict is green
    (better) or red (worse) on a terminal.
    """
    from rich.text import Text

    console = table_console(out, view)
    settings = result.settings
    level = f"{settings.confidence * 100:g}%"
    console.print(
        f"{printable(shown_path(result.labels))}: {len(result.models)} models on {result.rows} rows "
        f"(axis {result.axis}, "
        f"shape {shape_text(result.shape)}); {level} BCa bootstrap intervals, "
        + (
            "computed (no resamples)"
            if settings.resamples is None
            else f"{settings.resamples} resamples, seed {settings.seed}"
        ),
        markup=False,
        soft_wrap=True,
    )
    models = _table("model", "mean loss", f"{level} CI", "std", "median", "min", "max")
    for model in result.models:
        summary = model.summary
        models.add_row(
            *_estimate(model.name, summary.mean, model.ci_low, model.ci_high),
            *(_figure(x) for x in (summary.std, summary.median, summary.min, summary.max)),
        )
    print_titled(console, "models", models)

    differences = _table("candidate", "mean diff", f"{level} CI", "better", "worse", "ties", "verdict")
    holm = len(result.models) > 2
    tests = _table("candidate", "p (t-test)", "p (Wilcoxon)", *(["p (t, Holm)"] if holm else []), "effect size d_z")
    for item in result.comparisons:
        s = item.statistics
        differences.add_row(
            *_estimate(item.candidate, s.mean_difference, s.ci_low, s.ci_high),
            str(s.better),
            str(s.worse),
            str(s.ties),
            Text(s.verdict, style=VERDICT_STYLES.get(s.verdict, "")),
        )
        p_values = [s.p_value_t, s.p_value_wilcoxon, *([item.p_value_holm] if holm else [])]
        p_texts = (_p_value(p) for p in p_values)
        tests.add_row(Text(printable(item.candidate)), *p_texts, _figure(s.effect_size, P_DIGITS))
    print_titled(
        console,
        f"loss differences, candidate - {printable(result.baseline)} (below 0: the candidate is better)",
        differences,
    )
    print_titled(console, f"paired tests against {printable(result.baseline)}", tests)
    _render_tail(console, result)
    _render_gates(console, result)
    if result.groups is not None:
        _render_groups(console, result, view.max_rows)


#: Half the width of the differences' histogram: the bars share it out per bin.
HISTOGRAM_WIDTH = 20


def _render_tail(console: Any, result: CompareResult) -> None:
    """The spread of each candidate's differences: percentiles, worse share, histogram; then the worst rows."""
    from rich.text import Text

    tail_options = result.tail_options
    table = _table("candidate", *DIFFERENCE_PERCENTILES, f"worse > {tail_options.worse_by:g}")
    histograms = _table("candidate", "differences")
    for item in result.comparisons:
        tail = item.tail
        if tail is None:
            continue
        share = MISSING if tail.worse_share is None else f"{tail.worse_count} ({tail.worse_share:.1%})"
        percentiles = (_figure(tail.percentiles[key]) for key in DIFFERENCE_PERCENTILES)
        table.add_row(Text(printable(item.candidate)), *percentiles, share)
        if tail.counts:
            histograms.add_row(Text(printable(item.candidate)), _spark(tail, console))
    print_titled(console, f"tail risk: d = candidate - {printable(result.baseline)} per row (above 0: worse)", table)
    if histograms.row_count:
        print_titled(console, "histogram of d (symmetric around 0: right of the middle is worse)", histograms)
    if not tail_options.top:
        return
    for item in result.comparisons:
        if item.tail is None or not item.tail.worst:
            continue
        names = (printable(item.baseline), printable(item.candidate))
        worst = _table("row", *(["id"] if result.ids is not None else []), "d", *names)
        candidate, baseline = result.losses[item.candidate], result.losses[item.baseline]
        for row in item.tail.worst:
            ident = [Text(escape_cell(json_value(result.ids[row])))] if result.ids is not None else []
            worst.add_row(
                str(int(result.positions[row])),
                *ident,
                _figure(float(candidate[row] - baseline[row])),
                _figure(float(baseline[row])),
                _figure(float(candidate[row])),
            )
        print_titled(console, f"{printable(item.candidate)}: the {len(item.tail.worst)} rows made worst", worst)


def _spark(tail: Any, console: Any) -> Any:
    """The histogram of the differences as one row of bars over their edges (symmetric around 0)."""
    return sparkline(tail.counts, tail.edges, width=HISTOGRAM_WIDTH * 2, color=console.is_terminal)


def _render_gates(console: Any, result: CompareResult) -> None:
    """The gates asked for, a row per candidate and gate: what was tested, and the outcome."""
    if not result.gated:
        return
    from rich.text import Text

    table = _table("candidate", "gate", "bound", "value", "passed")
    for item in result.comparisons:
        for gate in item.gates:
            share = gate.rule == "max_worse_share"
            value = MISSING if gate.value is None else (f"{gate.value:.2%}" if share else _figure(gate.value))
            bound = f"{gate.bound:.2%}" if share else f"{gate.bound:g}"
            verdict = Text("yes" if gate.passed else "no", style="green" if gate.passed else "red")
            table.add_row(Text(printable(item.candidate)), GATE_RULES[gate.rule], bound, value, verdict)
    print_titled(console, "gates", table)


#: What each gate tests, as the gates table says it.
GATE_RULES = {
    "fail_if_worse": "CI low <= bound (not shown worse)",
    "require_non_inferior": "CI high <= bound (non-inferior)",
    "max_worse_share": "share worse <= bound",
}


def escape_cell(value: Any) -> str:
    """A value as table text, control characters escaped (a name cannot move the cursor)."""
    return printable(str(value))


def _render_groups(console: Any, result: CompareResult, max_rows: int) -> None:
    """A row per group and candidate (the first and last ``max_rows`` groups of many), its key columns first.

    Each model's mean per group is in the JSON; the table keeps to what a verdict needs.
    """
    from rich.text import Text

    groups = list(result.groups or ())
    names = list(groups[0]["key"]) if groups else []
    level = f"{result.settings.confidence * 100:g}%"
    baseline = printable(result.baseline)
    titles = ["candidate", "rows", "mean diff", f"{level} CI", "p (Holm)", "worse", "verdict"]
    if result.gated:
        titles.append("gates")
    table = _table(*names, *titles)
    head, tail, left_out = first_and_last(groups, max_rows)
    for number, group in enumerate(head + tail):
        if left_out and number == len(head):
            table.add_row(*(["..."] * (len(names) + len(titles))))
        keys = ["null" if value is None else printable(str(value)) for value in group["key"].values()]
        for item in group["comparisons"]:
            verdict = item["verdict"] or MISSING
            share = item["worse_share"]
            gates = ["failed" if any(not gate["passed"] for gate in item["gates"]) else "passed"]
            table.add_row(
                *keys,
                Text(printable(item["candidate"])),
                str(group["count"]),
                _figure(item["mean_difference"]),
                _interval(item["ci_low"], item["ci_high"]),
                _p_value(item["p_value_holm"]),
                MISSING if share is None else f"{share:.1%}",
                Text(verdict, style=VERDICT_STYLES.get(verdict, "")),
                *(gates if result.gated else []),
            )
    title = f"by {', '.join(printable(name) for name in names)}: {len(groups)} groups, candidate - {baseline}"
    worse_by = result.tail_options.worse_by
    print_titled(console, f"{title} (p: t-test, Holm over every group; worse: by > {worse_by:g})", table)
