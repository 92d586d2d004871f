"""``--report`` with ``--group-by``, of ``compare --runs`` and of ``batch``: the page holds what the JSON holds.

Each page is parsed with the standard library's HTML parser: every chart is an inline SVG
inside a figure whose caption names it, every number of the group and run tables is the
JSON output's (each cell's ``data-value`` holds the full value), many groups are cut as
the terminal's table cuts them, and nothing is fetched from the network.
"""

from __future__ import annotations

import json
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable

pytest.importorskip("matplotlib", reason="the report needs matplotlib (make test installs it)")

COLUMNS = [f"f{i}" for i in range(5)]


class Report(HTMLParser):
    """A report's tables (header and rows of cells: text and data-value), figures (SVGs, caption), links."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[dict[str, Any]] = []
        self.figures: list[dict[str, Any]] = []
        self.headings: list[str] = []
        self.resources: list[str] = []
        self.scripts = 0
        self.svgs = 0
        self._cell: list[str] | None = None
        self._value: str | None = None
        self._row: list[tuple[str, str | None]] | None = None
        self._cut = False
        self._caption: list[str] | None = None
        self._heading: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for key in ("src", "href", "xlink:href"):
            if found.get(key) and not str(found[key]).startswith("#"):
                self.resources.append(str(found[key]))
        if tag == "script":
            self.scripts += 1
        elif tag == "svg":
            self.svgs += 1
            if self.figures and self.figures[-1]["caption"] is None:
                self.figures[-1]["svgs"] += 1
        elif tag == "figure":
            self.figures.append({"svgs": 0, "caption": None})
        elif tag == "figcaption":
            self._caption = []
        elif tag in ("h2", "h3"):
            self._heading = []
        elif tag == "table":
            self.tables.append({"header": [], "rows": [], "cuts": [], "lines": []})
        elif tag == "tr":
            self._row, self._cut = [], found.get("class") == "cut"
        elif tag in ("td", "th"):
            self._cell, self._value = [], found.get("data-value")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(("".join(self._cell), self._value))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            table["lines"].append(self._row)
            if self._cut:
                table["cuts"].append((len(table["rows"]), self._row[0][0]))
            elif not table["header"]:
                table["header"] = [text for text, _ in self._row]
            else:
                table["rows"].append(self._row)
            self._row = None
        elif tag == "figcaption" and self._caption is not None:
            self.figures[-1]["caption"] = "".join(self._caption)
            self._caption = None
        elif tag in ("h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._caption, self._heading):
            if part is not None:
                part.append(data)

    def table_with(self, *columns: str) -> dict[str, Any]:
        """The one table whose header holds every one of ``columns``."""
        found = [table for table in self.tables if set(columns) <= set(table["header"])]
        assert len(found) == 1, (columns, [table["header"] for table in self.tables])
        return found[0]

    def records(self, table: dict[str, Any]) -> list[dict[str, tuple[str, str | None]]]:
        return [dict(zip(table["header"], row, strict=True)) for row in table["rows"]]

    def captions(self) -> list[str]:
        return [figure["caption"] for figure in self.figures]


def same(cell: tuple[str, str | None], value: Any) -> bool:
    """A cell shows ``value``: a number by its full data-value, a boolean as yes/no, null as n/a, text as is."""
    text, data = cell
    if value is None:
        return text == "n/a" and data is None
    if isinstance(value, bool):
        return data == str(value).lower()
    if isinstance(value, (int, float)):
        return data is not None and float(data) == value
    return text == str(value)


def assert_offline_and_charted(page: Report, charts: int) -> None:
    """No script, no link out; every SVG alone in a figure with a caption."""
    assert page.scripts == 0 and page.resources == []
    assert page.svgs == charts == len(page.figures)
    assert all(figure["svgs"] == 1 and figure["caption"] for figure in page.figures)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Labels with a ``lang`` column (one value written ``<b>$x$`` a page must escape and a chart must not
    read as mathtext), a baseline and two candidates; ``c`` is worse on ``fr`` only."""
    root = tmp_path_factory.mktemp("grouped")
    rng = np.random.default_rng(7)
    rows = 240
    labels = rng.normal(size=(rows, len(COLUMNS)))
    lang = np.array(["en", "de", "fr", "<b>$x$"])[np.arange(rows) % 4]
    pd.DataFrame(labels, columns=COLUMNS).assign(id=[f"r{i}" for i in range(rows)], lang=lang).to_parquet(
        root / "labels.parquet"
    )
    files = {"labels": str(root / "labels.parquet")}
    for name, noise in (("a", 1.0), ("b", 0.7), ("c", 0.8)):
        predictions = labels + noise * rng.normal(size=labels.shape)
        if name == "c":
            predictions[lang == "fr"] = -labels[lang == "fr"] + 0.1 * rng.normal(size=(rows // 4, len(COLUMNS)))
        pd.DataFrame(predictions, columns=COLUMNS).assign(id=[f"r{i}" for i in range(rows)]).to_parquet(
            root / f"{name}.parquet"
        )
        files[name] = str(root / f"{name}.parquet")
    return files


def test_compute_report_has_every_group_of_the_json_and_their_chart(grouped, tmp_path: Path) -> None:
    report = tmp_path / "groups.html"
    args = ["compute", grouped["labels"], grouped["a"], "--group-by", "lang", "--json", "--no-losses", "-q"]
    result = run_cli([*args, "--report", str(report)])
    assert result.exit_code == ExitStatus.OK, result.stderr
    groups = json.loads(result.stdout)["groups"]
    text = report.read_text(encoding="utf-8")
    page = Report(text)
    assert_offline_and_charted(page, 2)  # the histogram of the losses, the means of the groups
    assert page.captions()[1] == "mean loss per group of lang with its 95% interval"
    table = page.table_with("lang", "count", "mean", "ci_low", "ci_high", "p95")
    assert table["cuts"] == []
    records = page.records(table)
    assert len(records) == len(groups) == 4
    for record, group in zip(records, groups, strict=True):
        assert record["lang"][0] == group["key"]["lang"]
        figures = {key: value for key, value in group.items() if key != "key"}
        assert set(record) == {"lang", *figures}
        for key, value in figures.items():
            assert same(record[key], value), (key, record[key], value)
    assert "By lang: 4 groups" in page.headings
    assert "&lt;b&gt;$x$" in text and "<b>" not in text


def test_many_groups_are_cut_as_the_terminal_cuts_them(grouped, tmp_path: Path) -> None:
    """By id: 240 groups; with --max-rows 3 the page shows the terminal table's first and last 3."""
    report = tmp_path / "many.html"
    args = ["compute", grouped["labels"], grouped["a"], "--group-by", "id", "--max-rows", "3", "-q"]
    table_output = run_cli(args).stdout.split("by id: 240 groups", 1)[1]
    result = run_cli([*args, "--json", "--no-losses", "--report", str(report)])
    assert result.exit_code == ExitStatus.OK, result.stderr
    groups = json.loads(result.stdout)["groups"]
    page = Report(report.read_text(encoding="utf-8"))
    table = page.table_with("id", "count", "mean")
    shown = [group["key"]["id"] for group in [*groups[:3], *groups[-3:]]]
    assert [row[0][0] for row in table["rows"]] == shown
    assert table["cuts"] == [(3, "... 234 groups left out here (the JSON output has them all)")]
    assert all(f"│ {name} " in table_output for name in shown)  # the terminal's table shows the same groups
    assert not any(f"│ {group['key']['id']} " in table_output for group in groups[3:-3])
    for record, group in zip(page.records(table), [*groups[:3], *groups[-3:]], strict=True):
        assert same(record["mean"], group["mean"]) and same(record["ci_high"], group["ci_high"])
    assert page.captions()[1].endswith("; the first and last 3 of 240 groups")


def test_compare_report_has_each_group_and_candidate_its_gates_and_a_chart_each(grouped, tmp_path: Path) -> None:
    report = tmp_path / "compare.html"
    files = [grouped[name] for name in ("labels", "a", "b", "c")]
    args = ["compare", *files, "--group-by", "lang", "--max-worse-share", "0.4", "--json", "--no-losses"]
    result = run_cli([*args, "--report", str(report)])
    assert result.exit_code == ExitStatus.THRESHOLD_EXCEEDED, result.stderr
    document = json.loads(result.stdout)
    page = Report(report.read_text(encoding="utf-8"))
    # the losses of 3 models, the differences of 2 candidates, then the groups' chart of each candidate
    assert_offline_and_charted(page, 3 + 2 + 2)
    assert page.captions()[5:] == [
        f"{name}: mean difference from a per group of lang with its 95% interval (right of 0: the candidate is worse)"
        for name in ("b", "c")
    ]
    table = page.table_with("lang", "candidate", "mean_difference", "p_value_holm", "gates_passed")
    records = page.records(table)
    expected = [(group, entry) for group in document["groups"] for entry in group["comparisons"]]
    assert len(records) == len(expected) == 8
    for record, (group, entry) in zip(records, expected, strict=True):
        means = {model["name"]: model["mean"] for model in group["models"]}
        assert record["lang"][0] == group["key"]["lang"] and record["candidate"][0] == entry["candidate"]
        assert same(record["count"], group["count"]) and same(record["baseline_mean"], means["a"])
        assert same(record["candidate_mean"], means[entry["candidate"]])
        for key in ("mean_difference", "ci_low", "ci_high", "p_value_t", "p_value_wilcoxon", "p_value_holm"):
            assert same(record[key], entry[key]), key
        for key in ("verdict", "worse_count", "worse_share"):
            assert same(record[key], entry[key]), key
        assert same(record["gates_passed"], all(gate["passed"] for gate in entry["gates"]))
    failed = [
        (group["key"]["lang"], entry["candidate"], gate)
        for group in document["groups"]
        for entry in group["comparisons"]
        for gate in entry["gates"]
        if not gate["passed"]
    ]
    assert ("fr", "c") in [(lang, candidate) for lang, candidate, _ in failed]
    gates = page.records(page.table_with("lang", "candidate", "rule", "bound", "value", "passed"))
    assert len(gates) == len(failed)
    for record, (lang, candidate, gate) in zip(gates, failed, strict=True):
        assert (record["lang"][0], record["candidate"][0], record["rule"][0]) == (lang, candidate, gate["rule"])
        assert same(record["bound"], gate["bound"]) and same(record["value"], gate["value"])
        assert same(record["passed"], False)
    assert f"Failed gates in the groups ({len(failed)})" in page.headings


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/2026-12-01 ... 04 (natural order puts 'day-10' after 'day-9'), labels and models A, B, C."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(11)
    for day in (1, 2, 9, 10):
        folder = root / f"day-{day}"
        folder.mkdir()
        labels = rng.normal(size=(60, 6))
        np.save(folder / "labels.npy", labels)
        for name, noise in (("A", 0.8), ("B", 0.7), ("C", 0.6)):
            predictions = labels + noise * rng.normal(size=labels.shape)
            if name == "C":
                predictions[: 2 * day] = -labels[: 2 * day]
            np.save(folder / f"{name}.npy", predictions)
    return root


@pytest.fixture(scope="module")
def runs_page(runs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The JSON and the page of ``compare --runs`` with a gate, on a copy of the runs where day-9 fails."""
    copy = tmp_path_factory.mktemp("broken") / "runs"
    shutil.copytree(runs, copy)
    (copy / "day-9" / "B.npy").write_bytes(b"\x93NUMPY broken")  # a failed run: a gap and an error row
    report = copy.parent / "runs.html"
    args = ["compare", "--runs", str(copy), "--max-worse-share", "0.1", "--json"]
    proc = run_executable([*args, "--report", str(report)])
    assert proc.returncode == ExitStatus.DATA_ERROR, proc.stderr
    return json.loads(proc.stdout), report


def test_runs_report_has_a_trend_per_candidate_and_the_jsons_numbers(runs_page) -> None:
    document, report = runs_page
    text = report.read_text(encoding="utf-8")
    page = Report(text)
    assert_offline_and_charted(page, 2)  # B and C, each over the runs
    assert [caption.split(":")[0] for caption in page.captions()] == ["B", "C"]
    assert all(caption.endswith("the mean loss of A; runs in the order of the table") for caption in page.captions())
    table = page.table_with("run", "candidate", "baseline_mean", "mean_difference", "error")
    records = page.records(table)
    names = [run["run"] for run in document["runs"]]
    assert names == ["day-1", "day-2", "day-9", "day-10"]
    assert list(dict.fromkeys(record["run"][0] for record in records)) == names  # the runs in the table's order
    expected = []
    for run in document["runs"]:
        if "error" in run:
            expected.append((run, None))
        expected += [(run, item) for item in run.get("comparisons", [])]
    assert len(records) == len(expected) == 7
    for record, (run, item) in zip(records, expected, strict=True):
        assert record["run"][0] == run["run"]
        if item is None:
            assert record["error"][0] == run["error"] and record["verdict"][0] == "error"
            continue
        assert record["candidate"][0] == item["candidate"] and same(record["count"], run["count"])
        baseline = next(model["mean"] for model in run["models"] if model["name"] == item["baseline"])
        assert same(record["baseline_mean"], baseline)
        for key in ("mean_difference", "ci_low", "ci_high", "p_value_t", "p_value_wilcoxon", "verdict"):
            assert same(record[key], item[key]), key
        assert same(record["p_value_holm"], item.get("p_value_holm"))
        assert same(record["p99"], item["tail"]["p99"]) and same(record["worse_share"], item["tail"]["worse_share"])
        assert same(record["gates_passed"], all(gate["passed"] for gate in item["gates"]))
    models = page.records(page.table_with("run", "model", "mean"))
    assert [(m["run"][0], m["model"][0]) for m in models] == [
        (run["run"], model["name"]) for run in document["runs"] for model in run.get("models", [])
    ]
    failed = [
        (run["run"], item["candidate"], gate)
        for run in document["runs"]
        for item in run.get("comparisons", [])
        for gate in item["gates"]
        if not gate["passed"]
    ]
    assert failed and document["gates_passed"] is False
    gates = page.records(page.table_with("run", "candidate", "rule", "bound", "value", "passed"))
    assert [(g["run"][0], g["candidate"][0]) for g in gates] == [(run, name) for run, name, _ in failed]
    assert all(same(g["value"], gate["value"]) for g, (_, _, gate) in zip(gates, failed, strict=True))
    assert '<span class="failed">failed</span>' in text


def test_runs_report_is_refused_inside_the_runs_and_without_matplotlib(runs: Path, tmp_path: Path, monkeypatch) -> None:
    inside = run_cli(["compare", "--runs", str(runs), "--report", str(runs / "report.html")])
    assert inside.exit_code == ExitStatus.USAGE_ERROR and inside.stderr.startswith("Error: ")
    assert "inside the input folder" in inside.stderr and not (runs / "report.html").exists()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    missing = run_cli(["compare", "--runs", str(runs), "--report", str(tmp_path / "r.html")])
    assert missing.exit_code == ExitStatus.USAGE_ERROR and missing.stdout == ""
    assert "pip install 'cosloss[report]'" in missing.stderr and not (tmp_path / "r.html").exists()


def test_a_browser_reads_the_runs_page_as_the_parser_does(runs_page, tmp_path: Path) -> None:
    """Where Chromium is installed: the DOM it builds, offline, holds the same charts, captions and cells."""
    import subprocess

    from .test_report import CHROMIUM_FLAGS

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium here (the HTML parser tests above check the page)")
    _, report = runs_page
    proc = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
    )
    drawn, written = Report(proc.stdout), Report(report.read_text(encoding="utf-8"))
    assert drawn.svgs == written.svgs == 2 and drawn.captions() == written.captions()
    assert [table["rows"] for table in drawn.tables] == [table["rows"] for table in written.tables]
    assert drawn.resources == [] and len(drawn.tables[0]["rows"]) == 7


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """labels/ and predictions/ of three Parquet pairs with a ``lang`` column, and one pair that fails."""
    root = tmp_path_factory.mktemp("batch")
    rng = np.random.default_rng(3)
    for side in ("labels", "predictions"):
        (root / side).mkdir()
    for number, rows in enumerate((30, 45, 25)):
        labels = rng.normal(size=(rows, len(COLUMNS)))
        lang = np.array(["en", "de"])[np.arange(rows) % 2]
        pd.DataFrame(labels, columns=COLUMNS).assign(lang=lang).to_parquet(root / "labels" / f"p{number}.parquet")
        predictions = labels + (0.5 + 0.3 * number) * rng.normal(size=labels.shape)
        pd.DataFrame(predictions, columns=COLUMNS).to_parquet(root / "predictions" / f"p{number}.parquet")
    pd.DataFrame(rng.normal(size=(5, 3)), columns=COLUMNS[:3]).assign(lang="en").to_parquet(
        root / "labels" / "broken.parquet"
    )
    pd.DataFrame(rng.normal(size=(5, 4)), columns=COLUMNS[:4]).to_parquet(root / "predictions" / "broken.parquet")
    return root / "labels", root / "predictions"


def test_batch_report_has_the_overall_figures_each_pair_the_pooled_histogram(pairs, tmp_path: Path) -> None:
    labels, predictions = pairs
    report = tmp_path / "batch.html"
    args = ["batch", str(labels), str(predictions), "--top", "4", "--group-by", "lang", "--json", "-j", "1"]
    result = run_cli([*args, "--report", str(report)])
    assert result.exit_code == ExitStatus.DATA_ERROR, result.stderr  # the broken pair
    document = json.loads(result.stdout)
    overall = document["overall"]
    page = Report(report.read_text(encoding="utf-8"))
    assert_offline_and_charted(page, 2)  # the pooled losses, the groups' means
    assert page.captions()[0] == f"{overall['count']} losses of 3 pairs in 30 bins" and overall["count"] == 100
    assert page.captions()[1] == "mean loss per group of lang with its 95% interval"
    (summary,) = [table for table in page.tables if table["lines"][0][0][0] == "pairs"]
    figures = {line[0][0]: line[1] for line in summary["lines"]}
    assert list(figures) == [key for key in overall if key not in ("reduction", "weighted", "worst", "groups")]
    assert all(same(cell, overall[key]) for key, cell in figures.items())
    table = page.table_with("name", "status", "count", "mean", "p99")
    records = page.records(table)
    assert [record["name"][0] for record in records] == [pair["name"] for pair in document["pairs"]]
    for record, pair in zip(records, document["pairs"], strict=True):
        assert set(record) <= set(pair) and {"count", "mean", "std", "p05", "p99", "status"} <= set(record)
        for key, cell in record.items():
            assert same(cell, pair[key]), (pair["name"], key)
    assert records[0]["status"][0] == "error" and records[0]["error"][0] == document["pairs"][0]["error"]
    worst = page.records(page.table_with("name", "index", "loss"))
    assert [(w["name"][0], w["index"][1], w["loss"][1]) for w in worst] == [
        (row["name"], repr(row["index"]), repr(row["loss"])) for row in overall["worst"]
    ]
    groups = page.records(page.table_with("lang", "count", "mean", "p95"))
    assert len(groups) == len(overall["groups"]) == 2
    for record, group in zip(groups, overall["groups"], strict=True):
        assert all(same(record[key], value) for key, value in group.items() if key != "key")


@pytest.mark.parametrize("spread", [2.0, 0.05])  # the loss range [0, 2], and a narrow range of its own
def test_the_pooled_histogram_is_the_histogram_of_every_loss(spread: float) -> None:
    """Chunk by chunk, in memory and spilled to disk, as ``histogram`` bins every loss at once."""
    from cosloss_cli.batch.report import pooled_histogram
    from cosloss_cli.render.report import REPORT_BINS
    from cosloss_cli.stats.distribution import histogram
    from cosloss_cli.stats.pooled import PooledLosses

    rng = np.random.default_rng(4)
    parts = [0.3 + spread * rng.random(size) / 2 for size in (50, 700, 1)]
    pooled = PooledLosses(memory_values=60)  # the second part spills
    try:
        for part in parts:
            pooled.add(part)
        pooled.add(np.array([np.nan]))  # not binned
        edges, counts = pooled_histogram(pooled.chunks)
    finally:
        pooled.close()
    expected_edges, expected_counts = histogram(np.concatenate(parts), REPORT_BINS)
    assert edges == expected_edges.tolist() and counts == expected_counts.tolist()
    assert pooled_histogram(lambda: [np.array([np.nan])]) is None


def test_a_batch_report_is_refused_inside_an_input_folder(pairs) -> None:
    labels, predictions = pairs
    result = run_cli(["batch", str(labels), str(predictions), "--report", str(predictions / "batch.html")])
    assert result.exit_code == ExitStatus.USAGE_ERROR and "inside the input folder" in result.stderr
    assert result.stdout == "" and not (predictions / "batch.html").exists()


def test_many_compared_groups_are_cut_in_the_table_the_gates_and_the_charts() -> None:
    """50 groups, 2 candidates, every gate failed: the first and last 3 groups of each, with a line for the rest."""
    from cosloss_cli.compare.report import _compared_groups

    def entry(candidate: str, number: int) -> dict[str, Any]:
        gate = {"rule": "max_worse_share", "bound": 0.0, "value": 0.5, "passed": False}
        figures = dict.fromkeys(("ci_low", "ci_high", "p_value_t", "p_value_wilcoxon", "p_value_holm"), 0.5)
        return {"candidate": candidate, "mean_difference": number / 100, **figures, "verdict": "worse"} | {
            "worse_count": 1,
            "worse_share": 0.5,
            "gates": [gate],
        }

    groups = [
        {"key": {"g": number}, "count": 2, "models": [], "comparisons": [entry("b", number), entry("c", number)]}
        for number in range(50)
    ]
    page = Report("".join(_compared_groups({"groups": groups, "baseline": "a", "confidence": 0.9}, 3)))
    table = page.table_with("g", "candidate", "mean_difference", "gates_passed")
    assert [row[0][0] for row in table["rows"]] == [str(n) for n in (0, 0, 1, 1, 2, 2, 47, 47, 48, 48, 49, 49)]
    assert table["cuts"] == [(6, "... 44 groups left out here (the JSON output has them all)")]
    gates = page.table_with("g", "candidate", "rule", "bound", "value", "passed")
    assert [row[0][0] for row in gates["rows"]] == ["0", "0", "1", "48", "49", "49"]  # 100 failed gates, cut
    assert gates["cuts"] == [(3, "... 94 groups left out here (the JSON output has them all)")]
    assert page.svgs == 2  # each interval above its estimate: drawn from its ends
    assert all(caption.endswith("; the first and last 3 of 50 groups") for caption in page.captions())
    assert "Failed gates in the groups (100)" in page.headings


def test_a_runs_report_where_no_run_could_be_compared(tmp_path: Path) -> None:
    """Every run broken: no chart, a line saying why, each run's error as the JSON has it."""
    for run in ("r1", "r2"):
        (tmp_path / "runs" / run).mkdir(parents=True)
        for name in ("labels", "a", "b"):
            (tmp_path / "runs" / run / f"{name}.npy").write_bytes(b"\x93NUMPY broken")
    report = tmp_path / "runs.html"
    result = run_cli(["compare", "--runs", str(tmp_path / "runs"), "--json", "--report", str(report)])
    assert result.exit_code == ExitStatus.DATA_ERROR
    document = json.loads(result.stdout)
    page = Report(report.read_text(encoding="utf-8"))
    assert page.svgs == 0 and "No run could be compared" in report.read_text(encoding="utf-8")
    records = page.records(page.table_with("run", "verdict", "error"))
    assert [(r["run"][0], r["error"][0]) for r in records] == [(run["run"], run["error"]) for run in document["runs"]]
