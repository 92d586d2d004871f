"""``compare`` for evaluation teams: tail risk, gates that say what they test, library frames, widths.

The scenario of an evaluation team: labels and four models, A the baseline, A' a fresh
copy of A (statistically the same), B slightly better on every row, C better on most
rows but far worse on 5% of them. Every figure is checked against numpy on the
oracle's losses; the gates through the real executable.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosloss_cli.base.terminal import terminal_width
from cosloss_cli.compare.models import Gate, GateOptions, TailOptions, apply_gates, compare_files
from cosloss_cli.stats.intervals import Comparison
from cosloss_cli.stats.tail import tail_risk
from cosloss_cli.status import ExitStatus

from .conftest import TERMINAL, run_cli, run_executable
from .oracle import reference_losses

ROWS, DIM, TAIL_ROWS = 1000, 32, 50


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Labels and models A, A' (A's copy, re-noised), B (better everywhere), C (better but a 5% tail)."""
    folder = tmp_path_factory.mktemp("team")
    rng = np.random.default_rng(7)
    labels = rng.normal(size=(ROWS, DIM))
    noise = rng.normal(size=(ROWS, DIM))
    models = {
        "A": labels + 0.8 * noise,
        "A2": labels + 0.8 * noise + 0.002 * rng.normal(size=(ROWS, DIM)),
        "B": labels + 0.7 * noise,
        "C": labels + 0.5 * noise,
    }
    tail = rng.choice(ROWS, TAIL_ROWS, replace=False)
    models["C"][tail] = -labels[tail] + 1.5 * rng.normal(size=(TAIL_ROWS, DIM))  # far worse on 5%
    paths = {"labels": str(folder / "labels.npy")}
    np.save(paths["labels"], labels)
    for name, values in models.items():
        paths[name] = str(folder / f"{name}.npy")
        np.save(paths[name], values)
    losses = {name: reference_losses(labels, values) for name, values in models.items()}
    return {"paths": paths, "losses": losses, "tail": np.sort(tail)}


def compare(team: dict, *names: str, extra: tuple[str, ...] = ()) -> tuple[int, dict, str]:
    paths = team["paths"]
    result = run_cli(["compare", paths["labels"], *(paths[n] for n in names), "--json", "--no-losses", *extra])
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_tail_figures_equal_numpys(team: dict) -> None:
    losses = team["losses"]
    code, document, _ = compare(team, "A", "C", extra=("--top", "5", "--bins", "8", "--worse-by", "0.2"))
    assert code == ExitStatus.OK
    d = losses["C"] - losses["A"]
    tail = document["comparisons"][0]["tail"]
    expected = np.percentile(d, [1, 5, 50, 95, 99])
    assert [tail[key] for key in ("p01", "p05", "p50", "p95", "p99")] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert (tail["worse_by"], tail["worse_count"]) == (0.2, int((d > 0.2).sum()))
    assert tail["worse_share"] == pytest.approx((d > 0.2).mean(), rel=1e-15)
    order = np.argsort(-d, kind="stable")[:5]
    assert [row["index"] for row in tail["worst"]] == order.tolist()
    assert [row["difference"] for row in tail["worst"]] == pytest.approx(d[order], rel=1e-12, abs=1e-15)
    assert [row["baseline"] for row in tail["worst"]] == pytest.approx(losses["A"][order], rel=1e-12, abs=1e-15)
    reach = np.abs(d).max()
    counts, edges = np.histogram(d, bins=8, range=(-reach, reach))
    assert tail["histogram"]["counts"] == counts.tolist()
    assert tail["histogram"]["edges"] == pytest.approx(edges, rel=1e-12)
    assert sum(tail["histogram"]["counts"]) == ROWS


def test_c_improves_the_mean_but_fails_the_worse_share_gate(team: dict) -> None:
    paths = team["paths"]
    args = ["compare", paths["labels"], paths["A"], paths["C"], "--names", "A,C", "--fail-if-worse", "0"]
    passed = run_executable([*args, "--json", "--no-losses"])
    assert passed.returncode == ExitStatus.OK, passed.stderr
    comparison = json.loads(passed.stdout)["comparisons"][0]
    assert comparison["mean_difference"] < 0 and comparison["gates"][0]["passed"] is True
    share = comparison["tail"]["worse_share"]
    assert share > 0.04  # the 5% tail made worse by more than 0.1
    assert "Warning: C vs A: the mean improves, but" in passed.stderr
    gated = run_executable([*args, "--max-worse-share", "0.02", "--json", "--no-losses"])
    assert gated.returncode == ExitStatus.THRESHOLD_EXCEEDED
    document = json.loads(gated.stdout)
    assert document["gates_passed"] is False
    assert document["comparisons"][0]["gates"][1] == {
        "rule": "max_worse_share",
        "bound": 0.02,
        "value": share,
        "passed": False,
    }
    assert gated.stderr.splitlines()[-1] == (
        f"cosloss: C: {share:.2%} of its rows are worse by more than 0.1, above 2.00% (--max-worse-share)"
    )
    assert "Traceback" not in gated.stderr


def test_a_copy_passes_fail_if_worse_but_not_non_inferiority_at_zero(team: dict) -> None:
    code, document, stderr = compare(team, "A", "A2", extra=("--fail-if-worse", "0"))
    comparison = document["comparisons"][0]
    assert comparison["verdict"] == "no clear difference"
    assert (code, comparison["gates"][0]["passed"], document["gates_passed"]) == (ExitStatus.OK, True, True)
    # non-inferiority at margin 0 asks the copy to be shown no worse at all: its interval reaches above 0
    code, document, stderr = compare(team, "A", "A2", extra=("--require-non-inferior", "0"))
    gate = document["comparisons"][0]["gates"][0]
    assert gate["rule"] == "require_non_inferior" and gate["value"] == document["comparisons"][0]["ci_high"]
    assert gate["passed"] is (gate["value"] <= 0)
    assert code == (ExitStatus.OK if gate["passed"] else ExitStatus.THRESHOLD_EXCEEDED)
    margin = gate["value"] + 1e-6
    code, document, _ = compare(team, "A", "A2", extra=("--require-non-inferior", repr(margin)))
    assert (code, document["comparisons"][0]["gates"][0]["passed"]) == (ExitStatus.OK, True)


def test_b_better_everywhere_passes_every_gate(team: dict) -> None:
    gates = ("--fail-if-worse", "0", "--require-non-inferior", "0", "--max-worse-share", "0.02")
    code, document, stderr = compare(team, "A", "B", extra=gates)
    assert code == ExitStatus.OK, stderr
    comparison = document["comparisons"][0]
    assert comparison["verdict"] == "better"
    assert [gate["rule"] for gate in comparison["gates"]] == [
        "fail_if_worse",
        "require_non_inferior",
        "max_worse_share",
    ]
    assert all(gate["passed"] for gate in comparison["gates"])


def test_without_gates_the_json_says_none_were_applied(team: dict) -> None:
    code, document, _ = compare(team, "A", "B")
    assert code == ExitStatus.OK
    assert document["gates_passed"] is None and document["comparisons"][0]["gates"] == []


def test_a_gate_never_passes_on_a_figure_it_could_not_compute() -> None:
    nothing = Comparison(1, None, None, None, None, None, 0, 0, 1, None, None, None, "no clear difference")
    gates = apply_gates(nothing, None, GateOptions(fail_if_worse=0.5, require_non_inferior=0.5, max_worse_share=1.0))
    assert gates == (
        Gate("fail_if_worse", 0.5, None, False),
        Gate("require_non_inferior", 0.5, None, False),
        Gate("max_worse_share", 1.0, None, False),
    )


def test_nan_differences_give_no_tail_figures_and_fail_the_share_gate() -> None:
    risk = tail_risk([0.1, np.nan, 0.3], [0.2, 0.2, 0.2], worse_by=0.05, top=2, bins=4)
    assert risk.percentiles == dict.fromkeys(["p01", "p05", "p50", "p95", "p99"])
    assert (risk.worse_count, risk.worse_share, risk.worst) == (1, None, (2, 0))
    assert sum(risk.counts) == 2


def test_gates_table_and_tail_tables_on_a_terminal(team: dict) -> None:
    paths = team["paths"]
    args = ["compare", paths["labels"], paths["A"], paths["C"], "--names", "A,C", "--max-worse-share", "0.02"]
    result = run_cli([*args, "--top", "3", "--bins", "10", "-q"], env=TERMINAL)
    assert result.exit_code == ExitStatus.THRESHOLD_EXCEEDED
    out = result.stdout
    for title in ("tail risk: d = candidate - A", "histogram of d", "C: the 3 rows made worst", "gates"):
        assert title in out
    assert "share worse <= bound" in out


def test_to_frame_is_indexed_like_loss_results_and_has_a_long_form(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    labels = rng.normal(size=(20, 4))
    ids = [f"q{i:02d}" for i in range(20)]
    columns = [f"f{i}" for i in range(4)]
    pd.DataFrame(labels, columns=columns).assign(doc=ids).to_parquet(tmp_path / "l.parquet")
    paths = []
    for name in ("a", "b"):
        frame = pd.DataFrame(labels + rng.normal(size=labels.shape), columns=columns).assign(doc=ids)
        frame.to_parquet(tmp_path / f"{name}.parquet")
        paths.append(str(tmp_path / f"{name}.parquet"))
    from cosloss_cli.io import ReadOptions

    result = compare_files(str(tmp_path / "l.parquet"), paths, read_options=ReadOptions(id_column="doc"))
    wide = result.to_frame()
    assert (wide.index.name, wide.index.tolist(), list(wide.columns)) == ("doc", ids, ["a", "b"])
    long = result.to_frame(long=True)
    assert list(long.columns) == ["doc", "model", "loss"]
    assert long["model"].tolist() == ["a"] * 20 + ["b"] * 20
    assert long.set_index(["doc", "model"])["loss"].unstack()[["a", "b"]].equals(wide[["a", "b"]])
    lang = pd.DataFrame({"doc": ids, "lang": ["en", "de"] * 10}).set_index("doc")
    assert wide.join(lang)["lang"].notna().all()  # joins on the ids, not an empty frame


def test_compare_prints_the_notes_compute_prints(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    labels = rng.normal(size=(30, 3))
    frames = [pd.DataFrame(values, columns=["x", "y", "z"]) for values in (labels, labels + 0.1, labels + 0.2)]
    for frame, name in zip(frames, ("l", "a", "b"), strict=True):
        frame.to_csv(tmp_path / f"{name}.csv")  # pandas' unnamed index column: ids, with a note
    compute = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "a.csv")])
    notes = [line for line in compute.stderr.splitlines() if line.startswith("Note: ")]
    assert notes
    result = run_cli(["compare", *(str(tmp_path / f"{n}.csv") for n in ("l", "a", "b")), "--worse-by", "2"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    printed = [line for line in result.stderr.splitlines() if line.startswith("Note: ")]
    assert printed[: len(notes)] == notes  # the labels' and a's notes, as compute words them
    assert len(printed) == len(notes) + 1 and printed[-1].startswith(f"Note: {tmp_path / 'b.csv'}: ")


def test_a_note_when_the_interval_and_the_t_test_disagree() -> None:
    from cosloss_cli.compare.models import CompareSettings, ModelComparison, _disagreement

    s = Comparison(30, -0.01, -0.02, 0.001, -0.018, -0.002, 20, 10, 0, 0.003, 0.01, -0.5, "no clear difference")
    notes = _disagreement(ModelComparison("a", "b", s), CompareSettings(0.95, None, 0, "raise"))
    assert notes == [
        "the 95% bootstrap interval says 'no clear difference' but the t-test's interval [-0.018, -0.002] "
        "says 'better' on 30 rows: with few rows or heavy tails the two can disagree; more rows settle it"
    ]
    agreeing = s._replace(verdict="better", ci_high=-0.001)
    assert _disagreement(ModelComparison("a", "b", agreeing), CompareSettings(0.95, None, 0, "raise")) == []


def test_tables_honour_columns_and_a_terminal_that_reports_no_width(team: dict, monkeypatch) -> None:
    paths = team["paths"]
    args = ["compare", paths["labels"], paths["A"], paths["B"], "-q"]
    monkeypatch.setenv("COLUMNS", "140")
    wide = run_cli(args)
    assert max(len(line) for line in wide.stdout.splitlines()) > 100  # the header line is not cut at 100
    monkeypatch.setenv("COLUMNS", "70")
    narrow = run_cli(args)
    table_lines = [line for line in narrow.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert max(len(line) for line in table_lines) <= 70
    monkeypatch.delenv("COLUMNS")
    import os

    monkeypatch.setattr(os, "get_terminal_size", lambda fd=0: os.terminal_size((0, 0)))
    assert terminal_width(100) == 100  # CI runners report 0 columns: a readable width, not 60


def test_worse_by_and_gate_bounds_are_checked(team: dict) -> None:
    paths = team["paths"]
    base = ["compare", paths["labels"], paths["A"], paths["B"]]
    for option, value in (("--worse-by", "-1"), ("--worse-by", "nan"), ("--max-worse-share", "1.5")):
        result = run_cli([*base, option, value])
        assert result.exit_code == ExitStatus.USAGE_ERROR and option in result.stderr


def test_tail_options_reach_the_library(team: dict) -> None:
    paths = team["paths"]
    result = compare_files(paths["labels"], [paths["A"], paths["C"]], tail=TailOptions(worse_by=0.3, top=2, bins=4))
    tail = result.comparisons[0].tail
    assert tail is not None and tail.worse_by == 0.3 and len(tail.worst) == 2 and len(tail.counts) == 4
    d = team["losses"]["C"] - team["losses"]["A"]
    assert tail.worse_count == int((d > 0.3).sum())


def comparison_figures(document: dict) -> list[object]:
    item = document["comparisons"][0]
    keys = ("mean_difference", "ci_low", "ci_high", "t_ci_low", "t_ci_high", "p_value_t", "p_value_wilcoxon")
    return [item[key] for key in keys] + [item["better"], item["worse"], item["ties"], item["tail"]["p99"]]


@pytest.mark.parametrize("extension", [".parquet", ".csv", ".jsonl"])
def test_saved_losses_as_the_baseline_give_the_same_statistics(team: dict, tmp_path: Path, extension: str) -> None:
    paths = team["paths"]
    saved = str(tmp_path / f"yesterday{extension}")
    written = run_cli(["compute", paths["labels"], paths["A"], "-o", saved, "-q"])
    assert written.exit_code == ExitStatus.OK, written.stderr
    _, direct, _ = compare(team, "A", "C")
    result = run_cli(
        ["compare", paths["labels"], paths["C"], "--baseline-losses", saved, "--json", "--no-losses", "-q"]
    )
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    assert [m["name"] for m in document["models"]] == ["yesterday", "C"]
    assert document["count"] == ROWS
    assert comparison_figures(document) == pytest.approx(comparison_figures(direct), rel=1e-12, abs=1e-15)


def test_saved_losses_matched_by_id_in_another_order_with_rows_missing(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    labels = rng.normal(size=(60, 5))
    ids = [f"doc-{i}" for i in range(60)]
    columns = [f"f{i}" for i in range(5)]
    frames = {
        name: pd.DataFrame(values, columns=columns).assign(doc_id=ids)
        for name, values in {
            "labels": labels,
            "old": labels + rng.normal(size=labels.shape),
            "new": labels + 0.8 * rng.normal(size=labels.shape),
        }.items()
    }
    for name, frame in frames.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    path = {name: str(tmp_path / f"{name}.parquet") for name in frames}
    saved = tmp_path / "old-losses.parquet"
    assert run_cli(["compute", path["labels"], path["old"], "-o", str(saved), "-q"]).exit_code == ExitStatus.OK
    table = pd.read_parquet(saved)
    assert list(table.columns) == ["id", "loss"]
    table.sample(frac=1.0, random_state=1).iloc[:-3].to_parquet(saved, index=False)  # shuffled, 3 rows gone
    gone = set(ids) - set(table.sample(frac=1.0, random_state=1).iloc[:-3]["id"])
    result = run_cli(["compare", path["labels"], path["new"], "--baseline-losses", str(saved), "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    kept = [i for i, ident in enumerate(ids) if ident not in gone]
    assert document["ids"] == [ids[i] for i in kept]
    old = reference_losses(labels, frames["old"][columns].to_numpy())
    new = reference_losses(labels, frames["new"][columns].to_numpy())
    np.testing.assert_allclose(document["losses"]["old-losses"], old[kept], rtol=1e-12)
    d = new[kept] - old[kept]
    assert document["comparisons"][0]["mean_difference"] == pytest.approx(d.mean(), rel=1e-12)
    assert f"Note: 3 row(s) have no saved loss in {saved}" in result.stderr.splitlines()


def test_a_saved_compare_file_needs_its_model_named(team: dict, tmp_path: Path) -> None:
    paths = team["paths"]
    saved = str(tmp_path / "run.csv")
    written = run_cli(["compare", paths["labels"], paths["A"], paths["B"], "--names", "A,B", "-o", saved, "-q"])
    assert written.exit_code == ExitStatus.OK
    base = ["compare", paths["labels"], paths["C"], "--baseline-losses", saved, "--json", "--no-losses", "-q"]
    ambiguous = run_cli(base)
    assert ambiguous.exit_code == ExitStatus.USAGE_ERROR
    assert ambiguous.stderr.startswith("Error: ") and "--baseline-column" in ambiguous.stderr
    chosen = run_cli([*base, "--baseline-column", "B"])
    assert chosen.exit_code == ExitStatus.OK, chosen.stderr
    _, direct, _ = compare(team, "B", "C")
    assert comparison_figures(json.loads(chosen.stdout)) == pytest.approx(comparison_figures(direct), rel=1e-12)
    stray = run_cli(["compare", paths["labels"], paths["A"], paths["C"], "--baseline-column", "B"])
    assert stray.exit_code == ExitStatus.USAGE_ERROR and "--baseline-losses" in stray.stderr
