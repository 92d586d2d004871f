"""compare_files: several models' predictions against one labels file, from files users write.

Figures are checked against an independent float64 reference: the losses from the
formula evaluated directly in numpy, then scipy's tests and numpy's statistics on them.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from cosloss_cli import CompareResult, ComputeOptions, ReadOptions, compare_files
from cosloss_cli.compare.models import unique_names
from cosloss_cli.errors import DataError, InputUsageError, NonFiniteError, ShapeMismatchError
from cosloss_cli.stats.intervals import holm, mean_ci
from cosloss_cli.status import ExitStatus

from .conftest import ROOT, without_paths
from .test_batch import reference_losses

MODEL_KEYS = ["name", "predictions", "count", "mean", "std", "min", "max", "median", "zero_vectors", "omitted"]
MODEL_KEYS += ["ci_low", "ci_high"]
COMPARISON_KEYS = ["baseline", "candidate", "mean_difference", "ci_low", "ci_high", "t_ci_low", "t_ci_high"]
COMPARISON_KEYS += ["better", "worse", "ties", "p_value_t", "p_value_wilcoxon", "effect_size", "verdict"]
TOP_KEYS = ["schema_version", "labels", "axis", "shape", "count", "confidence", "resamples", "seed", "baseline"]
TOP_KEYS += ["models", "comparisons", "gates_passed", "losses", "ids"]


def three_models(n: int = 400, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels and three models' predictions: a baseline, a better one, a much worse one."""
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=(n, dim)).astype(np.float32)
    noise = [0.5, 0.45, 1.2]
    return labels, [(labels + rng.normal(scale=s, size=(n, dim))).astype(np.float32) for s in noise]


def write_npy(
    folder: Path, labels: np.ndarray, predictions: list[np.ndarray], names: list[str]
) -> tuple[str, list[str]]:
    np.save(folder / "labels.npy", labels)
    paths = []
    for name, array in zip(names, predictions, strict=True):
        np.save(folder / f"{name}.npy", array)
        paths.append(str(folder / f"{name}.npy"))
    return str(folder / "labels.npy"), paths


@pytest.fixture
def npy_models(tmp_path: Path) -> tuple[str, list[str], np.ndarray, list[np.ndarray]]:
    labels, predictions = three_models()
    label_path, paths = write_npy(tmp_path, labels, predictions, ["base", "tuned", "broken"])
    return label_path, paths, labels, predictions


def test_the_labels_are_read_once_for_every_model(npy_models, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three models of small NPY files: one read of the labels, one of each model; outside, every pair reads."""
    from cosloss_cli.pipeline import compute

    label_path, paths, labels, predictions = npy_models
    reads: list[str] = []
    real = compute.read_small_npy
    monkeypatch.setattr(compute, "read_small_npy", lambda path, scratch=None: reads.append(path) or real(path, scratch))
    result = compare_files(label_path, paths)
    assert reads.count(label_path) == 1 and sorted(reads) == sorted([label_path, *paths])
    for model, p in zip(result.models, predictions, strict=True):
        np.testing.assert_allclose(model.summary.mean, reference_losses(labels, p).mean(), rtol=1e-12)
    np.save(label_path, -labels)  # the same path, other labels: a later comparison reads them again
    again = compare_files(label_path, paths)
    assert reads.count(label_path) == 2
    for model, p in zip(again.models, predictions, strict=True):
        np.testing.assert_allclose(model.summary.mean, reference_losses(-labels, p).mean(), rtol=1e-12)


def test_every_figure_against_an_independent_reference(npy_models) -> None:
    label_path, paths, labels, predictions = npy_models
    result = compare_files(label_path, paths, confidence=0.9, resamples=1000, seed=3)
    losses = [reference_losses(labels, p) for p in predictions]
    assert isinstance(result, CompareResult)
    assert [m.name for m in result.models] == ["base", "tuned", "broken"]
    assert result.baseline == "base"
    assert (result.labels, result.axis, result.shape, result.rows) == (label_path, 1, (400, 16), 400)
    for model, expected, path in zip(result.models, losses, paths, strict=True):
        assert model.predictions == path
        np.testing.assert_allclose(result.losses[model.name], expected, rtol=1e-12, atol=1e-15)
        summary = model.summary
        assert summary.count == 400 and summary.omitted == 0 and summary.zero_vectors == 0
        assert summary.mean == pytest.approx(np.mean(expected), rel=1e-12)
        assert summary.std == pytest.approx(np.std(expected), rel=1e-12)
        assert summary.median == pytest.approx(np.median(expected), rel=1e-12)
        assert (summary.min, summary.max) == pytest.approx((expected.min(), expected.max()), rel=1e-12)
        low, high = mean_ci(expected, confidence=0.9, resamples=1000, seed=3)
        assert (model.ci_low, model.ci_high) == pytest.approx((low, high), rel=1e-9)
        assert model.ci_low < summary.mean < model.ci_high
    p_values = []
    for item, candidate in zip(result.comparisons, losses[1:], strict=True):
        s = item.statistics
        d = candidate - losses[0]
        t_test = scipy_stats.ttest_rel(candidate, losses[0])
        assert item.baseline == "base"
        assert s.mean_difference == pytest.approx(np.mean(d), rel=1e-12)
        assert s.p_value_t == pytest.approx(t_test.pvalue, rel=1e-9, abs=1e-300)
        interval = t_test.confidence_interval(0.9)
        assert (s.t_ci_low, s.t_ci_high) == pytest.approx((interval.low, interval.high), rel=1e-12)
        assert s.p_value_wilcoxon == pytest.approx(scipy_stats.wilcoxon(d).pvalue, rel=1e-9, abs=1e-300)
        assert s.effect_size == pytest.approx(np.mean(d) / np.std(d, ddof=1), rel=1e-12)
        assert (s.better, s.worse, s.ties) == (int((d < 0).sum()), int((d > 0).sum()), int((d == 0).sum()))
        p_values.append(s.p_value_t)
    assert [c.candidate for c in result.comparisons] == ["tuned", "broken"]
    assert [c.p_value_holm for c in result.comparisons] == holm(p_values)
    assert [c.statistics.verdict for c in result.comparisons] == ["better", "worse"]
    # the one note: tuned improves the mean while some rows get worse by more than 0.1
    worse = int(np.count_nonzero(losses[1] - losses[0] > 0.1))
    assert worse > 0.01 * 400
    assert result.notes() == [
        f"tuned vs base: the mean improves, but {worse} row(s) ({worse / 400:.1%}) are worse by more than 0.1 "
        "(see the tail risk; gate it with --max-worse-share)"
    ]


def test_json_document_has_the_documented_keys_and_is_strict_json(npy_models) -> None:
    label_path, paths, _, _ = npy_models
    result = compare_files(label_path, paths, resamples=200)
    document = result.to_json_dict()
    assert list(document) == TOP_KEYS
    assert document["schema_version"] == 1
    assert (document["count"], document["confidence"], document["resamples"], document["seed"]) == (400, 0.95, 200, 0)
    assert document["shape"] == [400, 16]
    assert [list(m) for m in document["models"]] == [MODEL_KEYS] * 3
    assert [list(c) for c in document["comparisons"]] == [[*COMPARISON_KEYS, "p_value_holm", "tail", "gates"]] * 2
    assert list(document["losses"]) == ["base", "tuned", "broken"]
    assert document["losses"]["tuned"] == result.losses["tuned"].tolist()
    assert document["ids"] is None
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert "losses" not in result.to_json_dict(include_losses=False)


def test_two_models_have_no_holm_p_value(npy_models) -> None:
    label_path, paths, _, _ = npy_models
    result = compare_files(label_path, paths[:2], resamples=200)
    assert result.comparisons[0].p_value_holm is None
    assert "p_value_holm" not in result.to_json_dict()["comparisons"][0]


def test_csv_files_written_by_pandas_with_ids(tmp_path: Path) -> None:
    labels, predictions = three_models(n=50, dim=4, seed=1)
    ids = [f"doc-{i:03d}" for i in range(50)]
    columns = [f"f{i}" for i in range(4)]
    pd.DataFrame(labels, columns=columns).assign(id=ids).to_csv(tmp_path / "labels.csv", index=False)
    paths = []
    for name, array in zip(["a", "b"], predictions[:2], strict=True):
        pd.DataFrame(array, columns=columns).assign(id=ids).to_csv(tmp_path / f"{name}.csv", index=False)
        paths.append(str(tmp_path / f"{name}.csv"))
    result = compare_files(str(tmp_path / "labels.csv"), paths, read_options=ReadOptions(id_column="id"), resamples=200)
    assert result.ids is not None and result.ids.tolist() == ids
    frame = result.to_frame()
    assert list(frame.columns) == ["a", "b"]
    assert frame.index.name == "id" and frame.index.tolist() == ids  # indexed as LossResult.to_frame is
    # CSV holds float32 values printed as text: compare with the reference on what was written
    written = [pd.read_csv(p)[columns].to_numpy() for p in paths]
    read_labels = pd.read_csv(tmp_path / "labels.csv")[columns].to_numpy()
    np.testing.assert_allclose(frame["b"], reference_losses(read_labels, written[1]), rtol=1e-12, atol=1e-15)
    assert result.to_json_dict()["ids"] == ids


def test_parquet_and_npy_models_mixed(tmp_path: Path) -> None:
    labels, predictions = three_models(n=60, dim=8, seed=2)
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "a.npy", predictions[0])
    pd.DataFrame(predictions[1], columns=[f"c{i}" for i in range(8)]).to_parquet(tmp_path / "b.parquet")
    result = compare_files(str(tmp_path / "labels.npy"), [str(tmp_path / "a.npy"), str(tmp_path / "b.parquet")])
    np.testing.assert_allclose(result.losses["b"], reference_losses(labels, predictions[1]), rtol=1e-12, atol=1e-15)


def test_default_names_are_file_names_made_unique(tmp_path: Path) -> None:
    assert unique_names(["x/model.csv", "y/model.csv.gz", "model-2.npy"]) == ["model", "model-3", "model-2"]
    assert unique_names(["runs/id.csv", "index.parquet"]) == ["id-2", "index-2"]
    assert unique_names(["a.csv", "a.csv", "a.csv"]) == ["a", "a-2", "a-3"]
    labels, predictions = three_models(n=20, dim=4)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    label_path, first = write_npy(tmp_path / "one", labels, predictions[:1], ["model"])
    _, second = write_npy(tmp_path / "two", labels, predictions[1:2], ["model"])
    result = compare_files(label_path, first + second, resamples=100)
    assert [m.name for m in result.models] == ["model", "model-2"]
    assert list(result.losses) == ["model", "model-2"]


def test_explicit_names(npy_models) -> None:
    label_path, paths, _, _ = npy_models
    result = compare_files(label_path, paths, names=["A", "B", "C"], resamples=100)
    assert [m.name for m in result.models] == ["A", "B", "C"]
    assert [(c.baseline, c.candidate) for c in result.comparisons] == [("A", "B"), ("A", "C")]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a", "b"], "2 model names given for 3 predictions files"),
        (["a", "b", "c", "d"], "4 model names given for 3"),
        (["a", "b", "a"], "repeated: a"),
        (["a", "", "c"], "must not be empty"),
        (["a", "index", "c"], "'index' cannot be a model name"),
    ],
)
def test_bad_names_are_usage_errors(npy_models, names: list[str], message: str) -> None:
    label_path, paths, _, _ = npy_models
    with pytest.raises(InputUsageError, match=message) as caught:
        compare_files(label_path, paths, names=names)
    assert caught.value.exit_status == ExitStatus.USAGE_ERROR


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 0.0}, "between 0 and 1"),
        ({"confidence": 1.0}, "between 0 and 1"),
        ({"confidence": 95.0}, "between 0 and 1"),
        ({"confidence": math.nan}, "between 0 and 1"),
        ({"resamples": 99}, "at least 100 bootstrap resamples"),
    ],
)
def test_bad_settings_are_usage_errors(npy_models, kwargs: dict, message: str) -> None:
    label_path, paths, _, _ = npy_models
    with pytest.raises(InputUsageError, match=message):
        compare_files(label_path, paths, **kwargs)


def test_fewer_than_two_predictions_files_is_a_usage_error(npy_models) -> None:
    label_path, paths, _, _ = npy_models
    for predictions in ([], paths[:1], paths[0]):
        with pytest.raises(InputUsageError, match="at least 2 predictions files"):
            compare_files(label_path, predictions)


def test_only_one_input_may_be_stdin(npy_models) -> None:
    label_path, paths, _, _ = npy_models
    with pytest.raises(InputUsageError, match="only one of the inputs can be stdin"):
        compare_files("-", ["-", paths[0]])


def test_different_row_counts_name_the_files(tmp_path: Path) -> None:
    labels, predictions = three_models(n=30, dim=4)
    label_path, paths = write_npy(tmp_path, labels, [predictions[0], predictions[1][:29]], ["a", "short"])
    with pytest.raises(ShapeMismatchError) as caught:
        compare_files(label_path, paths)
    assert caught.value.exit_status == ExitStatus.DATA_ERROR
    assert "short.npy" in str(caught.value) and "labels.npy" in str(caught.value)


def test_different_row_counts_in_csv_name_the_files(tmp_path: Path) -> None:
    """CSV row counts are only known at the end: the error still names both files."""
    labels, predictions = three_models(n=30, dim=4)
    columns = ["w", "x", "y", "z"]
    pd.DataFrame(labels, columns=columns).to_csv(tmp_path / "labels.csv", index=False)
    pd.DataFrame(predictions[0], columns=columns).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(predictions[1][:28], columns=columns).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match="row counts differ: labels has 2 more rows") as caught:
        compare_files(str(tmp_path / "labels.csv"), [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    assert "b.csv" in str(caught.value) and "labels.csv" in str(caught.value)


def test_ids_that_differ_between_predictions_files_are_an_error(tmp_path: Path) -> None:
    """Labels without ids: each predictions file's ids must agree with the others'."""
    labels, predictions = three_models(n=5, dim=3)
    columns = ["x", "y", "z"]
    pd.DataFrame(labels, columns=columns).to_csv(tmp_path / "labels.csv", index=False)
    paths = []
    for name, array, ids in (("a", predictions[0], "pqrst"), ("b", predictions[1], "pqrsx")):
        pd.DataFrame(array, columns=columns).assign(id=list(ids)).to_csv(tmp_path / f"{name}.csv", index=False)
        paths.append(str(tmp_path / f"{name}.csv"))
    with pytest.raises(DataError, match="row ids differ at row 4: 't' in .*a.csv, 'x' in .*b.csv"):
        compare_files(str(tmp_path / "labels.csv"), paths, read_options=ReadOptions(id_column="id"))


def with_bad_rows(tmp_path: Path) -> tuple[str, list[str]]:
    """Three models over 6 rows; model b has NaN in row 1, model c an infinity in row 4."""
    labels, predictions = three_models(n=6, dim=3, seed=4)
    predictions[1][1, 0] = np.nan
    predictions[2][4, 2] = np.inf
    return write_npy(tmp_path, labels, predictions, ["a", "b", "c"])


def test_omit_drops_a_row_for_every_model(tmp_path: Path) -> None:
    label_path, paths = with_bad_rows(tmp_path)
    result = compare_files(label_path, paths, options=ComputeOptions(nan_policy="omit"), resamples=100)
    assert result.positions.tolist() == [0, 2, 3, 5]
    assert result.rows == 4
    for model in result.models:
        assert (model.summary.count, model.summary.omitted) == (4, 2)
        assert np.isfinite(result.losses[model.name]).all()
        assert len(result.losses[model.name]) == 4
    assert all(c.statistics.rows == 4 for c in result.comparisons)
    assert result.to_frame().index.tolist() == [0, 2, 3, 5]


def test_propagate_gives_no_statistics_where_losses_are_nan(tmp_path: Path) -> None:
    label_path, paths = with_bad_rows(tmp_path)
    result = compare_files(label_path, paths, options=ComputeOptions(nan_policy="propagate"), resamples=100)
    assert result.rows == 6
    a, b, _ = result.models
    assert a.ci_low is not None and a.summary.count == 6
    assert (b.ci_low, b.ci_high) == (None, None) and math.isnan(b.summary.mean)
    for item in result.comparisons:
        assert item.statistics.mean_difference is None and item.statistics.p_value_t is None
        assert item.p_value_holm is None
    assert result.notes() == [
        "b vs a: NaN or infinite losses: no statistics",
        "c vs a: NaN or infinite losses: no statistics",
    ]
    document = json.loads(json.dumps(result.to_json_dict(), allow_nan=False))
    assert document["models"][1]["mean"] is None
    assert document["losses"]["b"][1] is None and document["losses"]["c"][4] is None


def test_raise_names_the_file_with_the_nan(tmp_path: Path) -> None:
    label_path, paths = with_bad_rows(tmp_path)
    with pytest.raises(NonFiniteError, match=r"b\.npy: row 1, column 0 is NaN"):
        compare_files(label_path, paths)


def test_one_row_gives_no_statistics_and_a_note(tmp_path: Path) -> None:
    labels, predictions = three_models(n=1, dim=3)
    label_path, paths = write_npy(tmp_path, labels, predictions[:2], ["a", "b"])
    result = compare_files(label_path, paths)
    assert result.models[0].summary.count == 1 and result.models[0].ci_low is None
    statistics = result.comparisons[0].statistics
    assert statistics.mean_difference is not None and statistics.ci_low is None and statistics.p_value_t is None
    assert result.notes() == ["b vs a: 1 row(s) to compare: at least 2 are needed for the statistics"]


def test_identical_models_are_all_ties_quietly(tmp_path: Path, capfd) -> None:
    labels, predictions = three_models(n=50, dim=3)
    label_path, paths = write_npy(tmp_path, labels, [predictions[0], predictions[0]], ["a", "same"])
    result = compare_files(label_path, paths, resamples=100)
    s = result.comparisons[0].statistics
    assert (s.ties, s.p_value_t, s.p_value_wilcoxon, s.verdict) == (50, None, None, "no clear difference")
    assert "every row is a tie" in result.notes()[0]
    assert capfd.readouterr() == ("", "")


def test_labels_from_stdin_are_read_for_every_model(npy_models, monkeypatch) -> None:
    label_path, paths, _, _ = npy_models
    expected = compare_files(label_path, paths, resamples=100)
    stdin = SimpleNamespace(buffer=io.BytesIO(Path(label_path).read_bytes()))
    monkeypatch.setattr("sys.stdin", stdin)
    result = compare_files("-", paths, read_options=ReadOptions(input_format="npy"), resamples=100)
    assert result.labels == "-"
    assert result.to_json_dict() == {**expected.to_json_dict(), "labels": "-"}


def test_stdin_labels_errors_name_stdin(npy_models, monkeypatch, tmp_path: Path) -> None:
    _, paths, labels, _ = npy_models
    np.save(tmp_path / "short.npy", labels[:10])
    monkeypatch.setattr("sys.stdin", SimpleNamespace(buffer=io.BytesIO((tmp_path / "short.npy").read_bytes())))
    with pytest.raises(ShapeMismatchError) as caught:
        compare_files("-", paths, read_options=ReadOptions(input_format="npy"))
    assert "labels - (10, 16)" in str(caught.value)
    assert "cosloss-" not in without_paths(str(caught.value), tmp_path)  # no spooled copy named


def test_stdin_without_a_format_is_the_usual_usage_error(npy_models) -> None:
    _, paths, _, _ = npy_models
    with pytest.raises(InputUsageError, match="reading from stdin needs --input-format"):
        compare_files("-", paths)


def test_sample_data_second_model() -> None:
    """sample_data/predictions_b.csv: labels.csv with one entry per row moved by 1 (a better model)."""
    labels = pd.read_csv(ROOT / "sample_data" / "labels.csv").to_numpy()
    b = pd.read_csv(ROOT / "sample_data" / "predictions_b.csv").to_numpy()
    assert b.shape == labels.shape and np.abs(b - labels).sum(axis=1).tolist() == [1, 1]
    result = compare_files(
        str(ROOT / "sample_data" / "labels.csv"),
        [str(ROOT / "sample_data" / "predictions.csv"), str(ROOT / "sample_data" / "predictions_b.csv")],
    )
    assert [m.name for m in result.models] == ["predictions", "predictions_b"]
    assert result.comparisons[0].statistics.better == 2


def test_progress_counts_every_models_rows(npy_models) -> None:
    label_path, paths, _, _ = npy_models
    done: list[int] = []
    compare_files(label_path, paths, resamples=100, progress=done.append)
    assert sum(done) == 3 * 400


def test_importing_the_library_layer_loads_neither_scipy_nor_pandas() -> None:
    """scipy and pandas are imported by the functions that use them, not at start-up."""
    code = "import sys, cosloss_cli.compare.models, cosloss_cli.stats.intervals; "
    code += "print(sorted({'scipy', 'pandas'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == "[]"
