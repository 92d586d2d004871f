"""``cosloss compare``: figures against scipy on independently computed losses, formats, files, exit codes.

The losses are recomputed with the float64 oracle, and every statistic with scipy and
numpy on them, so a wrong pairing, a wrong sign or a wrong model order fails here.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from cosloss_cli.stats.intervals import holm
from cosloss_cli.status import ExitStatus

from .conftest import TERMINAL, run_cli, run_executable, without_paths
from .oracle import reference_losses
from .test_compare_lib import three_models, write_npy
from .test_stats import scipy_bca

NAMES = ["base", "tuned", "broken"]


@pytest.fixture
def models(tmp_path: Path) -> tuple[str, list[str], list[np.ndarray]]:
    """Labels and three models' NPY files; returns their paths and the oracle's losses of each model."""
    labels, predictions = three_models()
    label_path, paths = write_npy(tmp_path, labels, predictions, NAMES)
    return label_path, paths, [reference_losses(labels, p) for p in predictions]


def bca(values: np.ndarray, confidence: float, resamples: int, seed: int) -> tuple[float, float]:
    """scipy's own paired BCa interval of a mean (the command's policy: a generator from the seed)."""
    interval = scipy_bca(values, confidence=confidence, resamples=resamples, seed=seed).confidence_interval
    return float(interval.low), float(interval.high)


TUNED_TAIL_NOTE = (
    "Warning: tuned vs base: the mean improves, but 7 row(s) (1.8%) are worse by more than 0.1 "
    "(see the tail risk; gate it with --max-worse-share)\n"
)


def test_every_figure_equals_scipys_on_the_oracles_losses(models) -> None:
    label_path, paths, losses = models
    args = ["compare", label_path, *paths, "--json", "--confidence", "0.9", "--resamples", "1000", "--seed", "3"]
    result = run_cli(args)
    assert result.exit_code == ExitStatus.OK, result.stderr
    worse = int(np.count_nonzero(losses[1] - losses[0] > 0.1))
    assert worse == 7
    assert result.stderr == TUNED_TAIL_NOTE
    document = json.loads(result.stdout)
    assert (document["schema_version"], document["baseline"], document["count"]) == (1, "base", 400)
    assert (document["confidence"], document["resamples"], document["seed"]) == (0.9, 1000, 3)
    assert (document["shape"], document["axis"], document["ids"]) == ([400, 16], 1, None)
    for model, expected, path in zip(document["models"], losses, paths, strict=True):
        assert (model["predictions"], model["count"], model["omitted"]) == (path, 400, 0)
        np.testing.assert_allclose(document["losses"][model["name"]], expected, rtol=1e-12, atol=1e-15)
        assert model["mean"] == pytest.approx(np.mean(expected), rel=1e-12)
        assert model["std"] == pytest.approx(np.std(expected), rel=1e-12)
        assert model["median"] == pytest.approx(np.median(expected), rel=1e-12)
        assert (model["ci_low"], model["ci_high"]) == pytest.approx(bca(expected, 0.9, 1000, 3), rel=1e-9)
    p_values = []
    for item, candidate in zip(document["comparisons"], losses[1:], strict=True):
        d = candidate - losses[0]
        t_test = scipy_stats.ttest_rel(candidate, losses[0])
        t_interval = t_test.confidence_interval(confidence_level=0.9)
        assert item["baseline"] == "base"
        assert item["mean_difference"] == pytest.approx(np.mean(d), rel=1e-12)
        assert (item["ci_low"], item["ci_high"]) == pytest.approx(bca(d, 0.9, 1000, 3), rel=1e-9)
        assert item["p_value_t"] == pytest.approx(t_test.pvalue, rel=1e-12)
        assert (item["t_ci_low"], item["t_ci_high"]) == pytest.approx((t_interval.low, t_interval.high), rel=1e-12)
        assert item["p_value_wilcoxon"] == pytest.approx(scipy_stats.wilcoxon(d).pvalue, rel=1e-12)
        assert item["effect_size"] == pytest.approx(np.mean(d) / np.std(d, ddof=1), rel=1e-12)
        assert (item["better"], item["worse"], item["ties"]) == (
            int((d < 0).sum()),
            int((d > 0).sum()),
            int((d == 0).sum()),
        )
        p_values.append(t_test.pvalue)
    assert [item["candidate"] for item in document["comparisons"]] == ["tuned", "broken"]
    assert [item["verdict"] for item in document["comparisons"]] == ["better", "worse"]
    assert [item["p_value_holm"] for item in document["comparisons"]] == pytest.approx(holm(p_values), rel=1e-12)


def test_table_shows_each_model_and_comparison_with_coloured_verdicts(models) -> None:
    label_path, paths, losses = models
    plain = run_cli(["compare", label_path, *paths, "--resamples", "200"])
    assert plain.exit_code == ExitStatus.OK
    assert "\x1b[" not in plain.stdout
    lines = plain.stdout.splitlines()
    assert lines[0] == (
        f"{label_path}: 3 models on 400 rows (axis 1, shape (400, 16)); "
        "95% BCa bootstrap intervals, 200 resamples, seed 0"
    )
    model_rows = [line for line in lines if line.startswith("│ ")][:3]
    for name, row, expected in zip(NAMES, model_rows, losses, strict=True):
        assert row.split()[1] == name
        assert f" {np.mean(expected):.4g} " in row and f" {np.median(expected):.4g} " in row
    table_rows = [line for line in lines if line.startswith("│ tuned") or line.startswith("│ broken")]
    assert len(table_rows) == 8  # in the models, the differences, the tests and the tail risk tables
    assert "better" in table_rows[2] and "worse" in table_rows[3]
    assert "p (t, Holm)" in plain.stdout
    coloured = run_cli(["compare", label_path, *paths, "--resamples", "200"], env=TERMINAL)
    assert "\x1b[32mbetter" in coloured.stdout and "\x1b[31mworse" in coloured.stdout


def test_two_models_have_no_holm_column_and_default_names_from_files(models) -> None:
    label_path, paths, _ = models
    result = run_cli(["compare", label_path, paths[0], paths[1], "--json", "--no-losses", "--resamples", "200"])
    document = json.loads(result.stdout)
    assert [m["name"] for m in document["models"]] == ["base", "tuned"]
    assert "p_value_holm" not in document["comparisons"][0]
    assert "losses" not in document and "ids" not in document
    table = run_cli(["compare", label_path, paths[0], paths[1], "--resamples", "200"]).stdout
    assert "Holm" not in without_paths(table)


def test_ndjson_and_csv_have_a_row_per_row_and_a_column_per_model(models) -> None:
    label_path, paths, losses = models
    args = ["compare", label_path, *paths, "--names", "a,b,c", "--resamples", "200"]
    lines = run_cli([*args, "--format", "ndjson"]).stdout.splitlines()
    assert len(lines) == 400
    first = json.loads(lines[0])
    assert list(first) == ["index", "a", "b", "c"]
    assert first["index"] == 0
    values = np.array([[json.loads(line)[k] for k in "abc"] for line in lines])
    np.testing.assert_allclose(values, np.column_stack(losses), rtol=1e-12, atol=1e-15)
    frame = pd.read_csv(io.StringIO(run_cli([*args, "--format", "csv"]).stdout))
    assert list(frame.columns) == ["index", "a", "b", "c"]
    np.testing.assert_array_equal(frame["index"], np.arange(400))
    np.testing.assert_allclose(frame[["a", "b", "c"]].to_numpy(), np.column_stack(losses), rtol=1e-12, atol=1e-15)


@pytest.fixture
def parquet_models(tmp_path: Path) -> tuple[str, list[str], list[np.ndarray], list[str]]:
    """pandas-written Parquet files with an id column, as users write them."""
    labels, predictions = three_models(n=50, dim=8, seed=5)
    ids = [f"doc-{i:03d}" for i in range(50)]

    def write(name: str, array: np.ndarray) -> str:
        path = tmp_path / f"{name}.parquet"
        frame = pd.DataFrame(array, columns=[f"f{i}" for i in range(array.shape[1])])
        frame.insert(0, "id", ids)
        frame.to_parquet(path, index=False)
        return str(path)

    paths = [write(name, array) for name, array in zip(NAMES, predictions, strict=True)]
    return write("labels", labels), paths, [reference_losses(labels, p) for p in predictions], ids


def test_ids_are_carried_into_every_per_row_format(parquet_models) -> None:
    label_path, paths, losses, ids = parquet_models
    args = ["compare", label_path, *paths, "--id-column", "id", "--resamples", "200", "-q"]
    first = json.loads(run_cli([*args, "--format", "ndjson"]).stdout.splitlines()[0])
    expected = {n: pytest.approx(x[0], rel=1e-12) for n, x in zip(NAMES, losses, strict=True)}
    assert first == {"index": 0, "id": "doc-000", **expected}
    frame = pd.read_csv(io.StringIO(run_cli([*args, "--format", "csv"]).stdout))
    assert list(frame.columns) == ["index", "id", *NAMES]
    assert frame["id"].tolist() == ids
    document = json.loads(run_cli([*args, "--json"]).stdout)
    assert document["ids"] == ids


@pytest.mark.parametrize("ext", [".csv", ".json", ".jsonl", ".parquet", ".npy"])
def test_output_file_has_a_column_per_model(parquet_models, tmp_path: Path, ext: str) -> None:
    label_path, paths, losses, ids = parquet_models
    out = tmp_path / f"losses{ext}"
    result = run_cli(["compare", label_path, *paths, "--id-column", "id", "-o", str(out), "--json", "--no-losses"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    expected = np.column_stack(losses)
    if ext == ".npy":
        np.testing.assert_allclose(np.load(out), expected, rtol=1e-12, atol=1e-15)
        return
    if ext == ".json":
        document = json.loads(out.read_text())
        assert document["ids"] == ids
        got = np.column_stack([document["losses"][n] for n in NAMES])
    else:
        if ext == ".parquet":
            frame = pd.read_parquet(out)
        elif ext == ".csv":
            frame = pd.read_csv(out)
        else:
            frame = pd.read_json(out, lines=True)
        assert list(frame.columns) == ["index", "id", *NAMES]
        assert frame["id"].tolist() == ids
        got = frame[NAMES].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".losses")] == []  # no temporary left


def test_a_bad_output_name_is_refused_before_any_work(models, tmp_path: Path) -> None:
    label_path, paths, _ = models
    result = run_cli(["compare", label_path, *paths, "-o", str(tmp_path / "losses.txt")])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "cannot tell the output format" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("side", ["labels", "predictions"])
def test_one_input_from_stdin(models, side: str) -> None:
    label_path, paths, losses = models
    if side == "labels":
        args, data = ["compare", "-", *paths, "--labels-format", "npy"], Path(label_path).read_bytes()
    else:
        args, data = ["compare", label_path, paths[0], "-", "--predictions-format", "npy"], Path(paths[1]).read_bytes()
    result = run_cli([*args, "--json", "--resamples", "200"], input=data)
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    names = [m["name"] for m in document["models"]]
    np.testing.assert_allclose(document["losses"][names[1]], losses[1], rtol=1e-12, atol=1e-15)
    assert document["labels"] == ("-" if side == "labels" else label_path)


def test_fail_if_worse_exits_3_naming_the_candidate_after_printing(models) -> None:
    label_path, paths, _ = models
    result = run_cli(["compare", label_path, *paths, "--fail-if-worse", "0", "--resamples", "200", "--json", "-q"])
    assert result.exit_code == ExitStatus.THRESHOLD_EXCEEDED
    document = json.loads(result.stdout)
    assert document["comparisons"][1]["verdict"] == "worse"
    low = document["comparisons"][1]["ci_low"]
    gate = {"rule": "fail_if_worse", "bound": 0.0, "value": low, "passed": False}
    assert document["comparisons"][1]["gates"] == [gate]
    assert document["gates_passed"] is False
    lines = result.stderr.splitlines()
    assert lines == [
        f"cosloss: broken: shown worse than base by more than 0: the 95% interval of mean(broken - base) "
        f"starts at {low:.6g} (--fail-if-worse)"
    ]
    tuned_only = run_cli(["compare", label_path, paths[0], paths[1], "--fail-if-worse", "0", "--resamples", "200"])
    assert tuned_only.exit_code == ExitStatus.OK
    lenient = run_cli(["compare", label_path, *paths, "--fail-if-worse", "10", "--resamples", "200", "-q"])
    assert (lenient.exit_code, lenient.stderr) == (ExitStatus.OK, "")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--names", "a,b"], "2 model names given for 3 predictions files"),
        (["--names", "a,a,b"], "model names must be unique; repeated: a"),
        (["--confidence", "1.5"], "Invalid value for '--confidence': must be between 0 and 1 (exclusive)"),
        (["--confidence", "0"], "Invalid value for '--confidence': must be between 0 and 1 (exclusive)"),
        (["--resamples", "50"], "Invalid value for '--resamples': 50 is not in the range x>=100"),
        (["--json", "--format", "csv"], "--json and --format csv ask for two output formats"),
        (["--fail-if-worse", "nan"], "Invalid value for '--fail-if-worse': must be a finite number"),
    ],
)
def test_usage_errors_exit_2(models, extra: list[str], message: str) -> None:
    label_path, paths, _ = models
    result = run_cli(["compare", label_path, *paths, *extra])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert message in result.stderr
    assert result.stdout == ""


def test_one_predictions_file_is_a_usage_error(models) -> None:
    label_path, paths, _ = models
    result = run_cli(["compare", label_path, paths[0]])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "Error: compare needs at least 2 predictions files" in result.stderr


def test_two_stdin_inputs_are_a_usage_error(models) -> None:
    label_path, paths, _ = models
    result = run_cli(["compare", "-", paths[0], "-", "--input-format", "npy"], input=b"")
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "only one of the inputs can be stdin" in result.stderr


def test_files_of_different_lengths_are_named_exit_1(models, tmp_path: Path) -> None:
    label_path, paths, _ = models
    short = tmp_path / "short.npy"
    np.save(short, np.load(paths[1])[:300])
    result = run_cli(["compare", label_path, paths[0], str(short)])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert result.stderr.startswith("Error: ") and str(short) in result.stderr
    assert result.stdout == ""


def test_one_row_gives_null_statistics_and_a_warning(tmp_path: Path) -> None:
    labels, predictions = three_models(n=1, dim=4)
    label_path, paths = write_npy(tmp_path, labels, predictions[:2], NAMES[:2])
    result = run_cli(["compare", label_path, *paths, "--json", "--resamples", "200"])
    assert result.exit_code == ExitStatus.OK
    assert result.stderr == "Warning: 1 row(s) to compare: the statistics need at least 2 and are null\n"
    item = json.loads(result.stdout)["comparisons"][0]
    assert (item["ci_low"], item["p_value_t"], item["p_value_wilcoxon"], item["effect_size"]) == (None,) * 4
    quiet = run_cli(["compare", label_path, *paths, "--json", "--resamples", "200", "-q"])
    assert (quiet.exit_code, quiet.stderr) == (ExitStatus.OK, "")
    assert "n/a" in run_cli(["compare", label_path, *paths, "--resamples", "200", "-q"]).stdout


def test_identical_models_say_why_p_values_are_missing(models) -> None:
    label_path, paths, _ = models
    result = run_cli(["compare", label_path, paths[0], paths[0], "--names", "a,b", "--json", "--no-losses"])
    assert result.exit_code == ExitStatus.OK
    assert result.stderr == (
        "Warning: b vs a: every row is a tie: the differences have no variance, so no p-values or effect size\n"
    )
    item = json.loads(result.stdout)["comparisons"][0]
    assert (item["ties"], item["p_value_t"], item["p_value_wilcoxon"], item["verdict"]) == (
        400,
        None,
        None,
        "no clear difference",
    )


def test_nan_omit_drops_a_row_for_every_model_and_warns(models, tmp_path: Path) -> None:
    label_path, paths, losses = models
    broken = np.load(paths[2])
    broken[7, 3] = np.nan
    nan_path = tmp_path / "nan.npy"
    np.save(nan_path, broken)
    args = ["compare", label_path, paths[0], str(nan_path), "--names", "a,b", "--json", "--resamples", "200"]
    assert run_cli(args).exit_code == ExitStatus.DATA_ERROR  # --nan-policy raise, as compute
    result = run_cli([*args, "--nan-policy", "omit"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert "Warning: 1 row(s) with NaN/Inf in some model omitted for every model" in result.stderr
    document = json.loads(result.stdout)
    kept = np.delete(np.arange(400), 7)
    assert document["count"] == 399
    np.testing.assert_allclose(document["losses"]["a"], losses[0][kept], rtol=1e-12, atol=1e-15)
    d = losses[2][kept] - losses[0][kept]
    assert document["comparisons"][0]["p_value_t"] == pytest.approx(
        scipy_stats.ttest_rel(losses[2][kept], losses[0][kept]).pvalue, rel=1e-12
    )
    assert document["comparisons"][0]["mean_difference"] == pytest.approx(np.mean(d), rel=1e-12)


def test_zero_vectors_are_warned_per_model(models, tmp_path: Path) -> None:
    label_path, paths, _ = models
    zeroed = np.load(paths[1])
    zeroed[:2] = 0
    zero_path = tmp_path / "zero.npy"
    np.save(zero_path, zeroed)
    args = ["compare", label_path, paths[0], str(zero_path), "--json", "--no-losses", "--resamples", "200"]
    result = run_cli([*args, "--worse-by", "0.5"])
    assert result.exit_code == ExitStatus.OK
    assert result.stderr == "Warning: zero: 2 vector pair(s) with a zero vector: loss 1\n"


def test_the_real_executable(models) -> None:
    label_path, paths, losses = models
    proc = run_executable(["compare", label_path, *paths, "--json", "--no-losses", "--resamples", "200"])
    assert proc.returncode == ExitStatus.OK, proc.stderr
    document = json.loads(proc.stdout)
    assert document["models"][1]["mean"] == pytest.approx(np.mean(losses[1]), rel=1e-12)
    assert not math.isnan(document["comparisons"][0]["p_value_t"])
    gate = run_executable(["compare", label_path, *paths, "--fail-if-worse", "0", "-q", "--resamples", "200"])
    assert gate.returncode == ExitStatus.THRESHOLD_EXCEEDED
    assert "broken" in gate.stderr


def test_progress_bar_counts_every_models_rows_on_a_terminal_only(models, monkeypatch) -> None:
    from contextlib import contextmanager

    from cosloss_cli.render import progress

    bars: list[dict] = []

    @contextmanager
    def fake_bar(enabled, total, description, stream=None):
        bar = {"enabled": enabled, "total": total, "description": description, "rows": 0}
        bars.append(bar)

        def advance(rows: int) -> None:
            bar["rows"] += rows

        yield advance

    monkeypatch.setattr(progress, "row_progress", fake_bar)
    monkeypatch.setattr(progress, "MIN_BYTES_FOR_PROGRESS", 0)
    label_path, paths, _ = models
    args = ["compare", label_path, *paths, "--json", "--no-losses", "--resamples", "200"]
    assert run_cli(args).exit_code == ExitStatus.OK
    assert bars == []  # piped stderr: no bar
    assert run_cli([*args, "-q"], env=TERMINAL).exit_code == ExitStatus.OK
    assert bars == []  # --quiet: no bar
    assert run_cli(args, env=TERMINAL).exit_code == ExitStatus.OK
    # the bar counts the labels' rows, not rows x models
    assert bars == [{"enabled": True, "total": 400, "description": "comparing 3 models", "rows": 400}]


def test_a_constant_difference_reports_the_wilcoxon_p_value_only(tmp_path: Path) -> None:
    """Every row 1 worse: no variance, so no t-test or d_z; the signed-rank p-value is scipy's."""
    labels = np.tile(np.eye(2), (10, 1))  # 20 rows of unit vectors
    label_path, paths = write_npy(tmp_path, labels, [labels, labels[:, ::-1].copy()], ["same", "orthogonal"])
    result = run_cli(["compare", label_path, *paths, "--json", "--no-losses", "--resamples", "200"])
    assert result.exit_code == ExitStatus.OK
    assert result.stderr == (
        "Warning: orthogonal vs same: every row differs by the same 1.0: the differences have no variance, "
        "so no t-test p-value, t interval or effect size\n"
    )
    item = json.loads(result.stdout)["comparisons"][0]
    assert (item["mean_difference"], item["ci_low"], item["ci_high"], item["verdict"]) == (1.0, 1.0, 1.0, "worse")
    assert (item["p_value_t"], item["t_ci_low"], item["t_ci_high"], item["effect_size"]) == (None,) * 4
    assert item["p_value_wilcoxon"] == pytest.approx(float(scipy_stats.wilcoxon(np.ones(20)).pvalue), rel=1e-12)


def test_join_on_pairs_shuffled_models_by_id_and_warns_of_unmatched_rows(parquet_models, tmp_path: Path) -> None:
    """A model's rows in another order, one of them missing: matched by id; the missing row out for every model."""
    label_path, paths, losses, ids = parquet_models
    frame = pd.read_parquet(paths[1]).sample(frac=1.0, random_state=0)
    frame = frame[frame["id"] != "doc-007"]
    shuffled = tmp_path / "shuffled.parquet"
    frame.to_parquet(shuffled, index=False)
    args = ["compare", label_path, paths[0], str(shuffled), "--names", "a,b", "--join-on", "id", "--resamples", "200"]
    args += ["--worse-by", "1"]  # no tail note here
    result = run_cli([*args, "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert (
        result.stderr
        == "Warning: b: rows without a partner id left out: 1 of the labels (ids 'doc-007'), 0 of the predictions\n"
    )
    document = json.loads(result.stdout)
    kept = [i for i in range(50) if i != 7]
    assert document["ids"] == [ids[i] for i in kept]
    np.testing.assert_allclose(document["losses"]["b"], losses[1][kept], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(document["losses"]["a"], losses[0][kept], rtol=1e-12, atol=1e-15)
    strict = run_cli([*args, "--strict"])
    assert strict.exit_code == ExitStatus.DATA_ERROR
    assert strict.stderr.startswith("Error: ") and strict.stdout == ""
