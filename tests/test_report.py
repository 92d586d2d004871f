"""``--report FILE.html``: a self-contained page whose numbers are the JSON's.

The page is parsed with the standard library's HTML parser: every chart is there as
inline SVG, every number in its tables is the JSON output's (each cell carries the full
value in ``data-value``), nothing is fetched from the network, and hostile names are
escaped.
"""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable

pytest.importorskip("matplotlib", reason="the report needs matplotlib (make test installs it)")


class Page(HTMLParser):
    """The parts of a report the tests read: SVGs, table rows (cells' text and data-value), links."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.svgs = 0
        self.rows: list[list[tuple[str, str | None]]] = []
        self.resources: list[str] = []
        self.scripts = 0
        self._cell: list[str] | None = None
        self._value: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href", "xlink:href"):
            if found.get(key) and not str(found[key]).startswith("#"):
                self.resources.append(str(found[key]))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell, self._value = [], found.get("data-value")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(("".join(self._cell), self._value))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def value_of(self, key: str) -> str | None:
        """The data-value beside a header cell named ``key`` (the two-column summary tables)."""
        for row in self.rows:
            if len(row) == 2 and row[0][0] == key:
                return row[1][1]
        raise KeyError(key)


def same_number(shown: str | None, value: object) -> bool:
    return shown is not None and float(shown) == value


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str, list[str]]:
    rng = np.random.default_rng(2)
    labels = rng.normal(size=(200, 6))
    ids = [f"<doc & {i}>" for i in range(200)]  # ids a page must escape
    columns = [f"f{i}" for i in range(6)]
    pd.DataFrame(labels, columns=columns).assign(id=ids).to_parquet(tmp_path / "labels.parquet")
    noisy = labels + rng.normal(size=labels.shape)
    pd.DataFrame(noisy, columns=columns).assign(id=ids).to_parquet(tmp_path / "a.parquet")
    better = labels + 0.5 * rng.normal(size=labels.shape)
    better[:10] = -labels[:10]
    pd.DataFrame(better, columns=columns).assign(id=ids).to_parquet(tmp_path / "b<&>.parquet")
    return str(tmp_path / "labels.parquet"), str(tmp_path / "a.parquet"), [str(tmp_path / "b<&>.parquet")]


def test_compute_report_has_the_jsons_numbers_and_a_histogram(pair, tmp_path: Path) -> None:
    labels, a, _ = pair
    report = tmp_path / "report.html"
    result = run_cli(["compute", labels, a, "--id-column", "id", "--json", "--no-losses", "--report", str(report)])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    page = Page(report.read_text(encoding="utf-8"))
    assert page.svgs == 1 and page.scripts == 0 and page.resources == []
    for key in ("count", "mean", "std", "min", "median", "max", "ci_low", "ci_high"):
        assert same_number(page.value_of(key), document[key]), key
    for key in ("p05", "p25", "p75", "p95", "p99"):
        assert same_number(page.value_of(key), document[key]), key
    worst = [row for row in page.rows if len(row) == 3 and row[1][0].startswith("<doc & ")]
    assert len(worst) == 10
    losses = json.loads(run_cli(["compute", labels, a, "--id-column", "id", "--json"]).stdout)["losses"]
    assert [float(row[2][1] or "nan") for row in worst] == sorted(losses, reverse=True)[:10]
    text = report.read_text(encoding="utf-8")
    assert "&lt;doc &amp; " in text and "<doc " not in text  # every id escaped


def test_compare_report_has_every_model_candidate_gate_and_chart(pair, tmp_path: Path) -> None:
    labels, a, (b,) = pair
    report = tmp_path / "compare.html"
    args = ["compare", labels, a, b, "--id-column", "id", "--json", "--no-losses", "--max-worse-share", "0.01"]
    proc = run_executable([*args, "--report", str(report)])
    assert proc.returncode == ExitStatus.THRESHOLD_EXCEEDED, proc.stderr
    document = json.loads(proc.stdout)
    text = report.read_text(encoding="utf-8")
    page = Page(text)
    assert page.svgs == 2 + 1  # the losses of each model, the differences of the candidate
    assert page.scripts == 0 and page.resources == []
    assert "b&lt;&amp;&gt;" in text and "b<&>" not in text.split("<svg")[0]
    cells = {cell[0]: cell[1] for row in page.rows for cell in row}
    comparison = document["comparisons"][0]
    for key in ("mean_difference", "ci_low", "ci_high", "p_value_t", "p_value_wilcoxon"):
        assert any(same_number(value, comparison[key]) for value in cells.values()), key
    for model in document["models"]:
        assert any(same_number(value, model["mean"]) for value in cells.values())
    gate_rows = [row for row in page.rows if any(cell[0] == "max_worse_share" for cell in row)]
    assert len(gate_rows) == 1 and gate_rows[0][-1] == ("no", "false")
    assert same_number(gate_rows[0][3][1], comparison["gates"][0]["value"])
    assert '<span class="failed">failed</span>' in text


def test_report_needs_matplotlib_and_an_html_name(pair, tmp_path: Path, monkeypatch) -> None:
    labels, a, _ = pair
    bad_name = run_cli(["compute", labels, a, "--report", str(tmp_path / "r.txt")])
    assert bad_name.exit_code == ExitStatus.USAGE_ERROR and "FILE.html" in bad_name.stderr
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    missing = run_cli(["compute", labels, a, "--report", str(tmp_path / "r.html")])
    assert missing.exit_code == ExitStatus.USAGE_ERROR
    assert "pip install 'cosloss[report]'" in missing.stderr and missing.stdout == ""
    assert not (tmp_path / "r.html").exists()


def test_no_report_no_matplotlib_import(pair) -> None:
    labels, a, _ = pair
    code = (
        "import sys; from cosloss_cli.cli import cli; from click.testing import CliRunner;"
        f"CliRunner().invoke(cli, ['compute', {labels!r}, {a!r}, '--json']);"
        "print('matplotlib' in sys.modules)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("False"), out.stderr


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_a_browser_draws_the_report_offline(pair, tmp_path: Path) -> None:
    """Where Chromium is installed: it renders the page (no network) into a screenshot of the charts."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium here (the HTML parser tests above check the page)")
    labels, a, (b,) = pair
    report = tmp_path / "compare.html"
    assert run_cli(["compare", labels, a, b, "--id-column", "id", "-q", "--report", str(report)]).exit_code == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,1400",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=90,
    )
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a page with charts, not a blank one


def test_a_report_never_replaces_an_input(pair, tmp_path: Path) -> None:
    labels, a, _ = pair
    link = tmp_path / "labels.html"
    link.symlink_to(labels)  # the report's name leads to the labels file
    before = Path(labels).read_bytes()
    result = run_cli(["compute", labels, a, "--report", str(link)])
    assert result.exit_code == ExitStatus.USAGE_ERROR and result.stderr.startswith("Error: ")
    assert Path(labels).read_bytes() == before
