"""Weights, TF's reductions and the distribution of the losses, through the library and the command.

Every figure is checked against an independent float64 reference: the reductions against
the TensorFlow golden files (tests/golden_reductions, made by TensorFlow itself), the
percentiles against ``np.percentile``, the worst/best rows against a full stable sort,
the histogram against ``np.histogram`` and the interval of the mean against
``scipy.stats.bootstrap``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.errors import DataError, InputUsageError, ParameterError
from cosloss_cli.io import ReadOptions
from cosloss_cli.pipeline.compute import compute_files
from cosloss_cli.status import ExitStatus

from .conftest import ROOT, property_settings, run_cli

GOLDEN = ROOT / "tests" / "golden_reductions"
CASES = ("no_weights", "per_row", "some_zero", "all_zero", "scalar")
REDUCTIONS = ("none", "sum", "mean", "sum_over_batch_size", "sum_by_nonzero_weights")
PERCENTILES = {"p05": 5, "p25": 25, "p75": 75, "p95": 95, "p99": 99}


def reference_losses(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """1 - cos of each row pair, in float64 (a zero vector gives 1)."""
    a = labels.astype(np.float64)
    b = predictions.astype(np.float64)
    a = a / np.maximum(np.sqrt((a * a).sum(axis=1, keepdims=True)), 1e-6)
    b = b / np.maximum(np.sqrt((b * b).sum(axis=1, keepdims=True)), 1e-6)
    return 1.0 - (a * b).sum(axis=1)


def json_of(args: list[str], *, input: bytes | str | None = None) -> dict[str, Any]:
    result = run_cli([*args, "--json"], input=input)
    assert result.exit_code == ExitStatus.OK, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """3,000 x 16 float32 vectors in NPY, with tied losses (repeated rows), and their float64 losses."""
    folder = tmp_path_factory.mktemp("pair")
    rng = np.random.default_rng(5)
    labels = rng.standard_normal((3000, 16)).astype(np.float32)
    predictions = (labels + rng.standard_normal((3000, 16)) * 1.5).astype(np.float32)
    predictions[100:110] = predictions[50]  # ten equal losses: ties are ranked by index
    labels[100:110] = labels[50]
    np.save(folder / "labels.npy", labels)
    np.save(folder / "predictions.npy", predictions)
    return folder / "labels.npy", folder / "predictions.npy", reference_losses(labels, predictions)


# --- TensorFlow's reductions, through the real command ---------------------------------


def golden(case: str) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads((GOLDEN / case / "expected.json").read_text())
    return expected


def weights_args(case: str, tmp_path: Path) -> list[str]:
    """How the case's weights are given to the command: its committed file, or a file of the scalar."""
    expected = golden(case)
    if isinstance(expected.get("weights"), str):
        return ["--weights", str(GOLDEN / case / expected["weights"])]
    if case == "scalar":  # TF broadcasts a scalar: the same as that weight on every row
        path = tmp_path / "half.csv"
        path.write_text("\n".join([str(expected["weights"])] * 9) + "\n")
        return ["--weights", str(path)]
    return []


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reductions_match_tensorflow_through_the_command(case: str, reduction: str, tmp_path: Path) -> None:
    expected = golden(case)
    args = [
        "compute",
        str(GOLDEN / "labels.npy"),
        str(GOLDEN / "predictions.npy"),
        "--axis",
        "1",
        "--reduction",
        reduction,
        *weights_args(case, tmp_path),
    ]
    document = json_of(args)
    tf, exact = expected["tensorflow"], expected["float64_reference"]
    assert document["reduction"] == reduction
    assert document["weighted"] is (case != "no_weights")
    assert document["mean"] == pytest.approx(float(np.mean(exact["losses"])), abs=1e-15)  # unweighted, always
    if reduction == "none":
        assert document["loss"] is None
        np.testing.assert_allclose(document["losses"], exact["none"], rtol=0, atol=1e-15)
        np.testing.assert_allclose(document["losses"], tf["none"], rtol=0, atol=2e-6)  # TF computes in float32
    else:
        assert document["loss"] == pytest.approx(exact[reduction], rel=1e-14, abs=1e-15)
        assert document["loss"] == pytest.approx(tf[reduction], rel=2e-6, abs=2e-7)


def test_all_zero_weights_give_zero_as_tf_does() -> None:
    document = json_of(
        ["compute", str(GOLDEN / "labels.npy"), str(GOLDEN / "predictions.npy"), "--axis", "1"]
        + ["--weights", str(GOLDEN / "all_zero" / "weights.csv"), "--reduction", "mean"]
    )
    assert document["loss"] == 0.0 and document["mean"] > 0


# --- weights from a column of the labels --------------------------------------------------


def weighted_frames(rows: int = 40, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.standard_normal((rows, 4))
    predictions = labels + rng.standard_normal((rows, 4))
    weights = rng.integers(0, 4, rows) / 2
    ids = [f"r{i}" for i in range(rows)]
    left = pd.DataFrame(labels, columns=["a", "b", "c", "d"])
    left.insert(0, "w", weights)
    left.insert(0, "id", ids)
    right = pd.DataFrame(predictions[:, ::-1], columns=["d", "c", "b", "a"])  # another order: paired by name
    right.insert(0, "id", ids)
    return left, right, reference_losses(labels, predictions) * 1.0


def weighted_reference(losses: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    weighted = losses * weights
    return {
        "sum": float(math.fsum(weighted)),
        "mean": float(math.fsum(weighted) / math.fsum(weights)),
        "sum_over_batch_size": float(math.fsum(weighted) / len(losses)),
        "sum_by_nonzero_weights": float(math.fsum(weighted) / np.count_nonzero(weights)),
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_weight_column_with_ids_and_columns_paired_by_name(fmt: str, tmp_path: Path) -> None:
    left, right, losses = weighted_frames()
    labels, predictions = tmp_path / f"l.{fmt}", tmp_path / f"p.{fmt}"
    for frame, path in ((left, labels), (right, predictions)):
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    expected = weighted_reference(losses, left["w"].to_numpy())
    for reduction, value in expected.items():
        document = json_of(
            ["compute", str(labels), str(predictions), "--weight-column", "w", "--reduction", reduction, "--top", "3"]
        )
        assert document["loss"] == pytest.approx(value, rel=1e-12)
        assert document["ids"] == list(left["id"])
        np.testing.assert_allclose(document["losses"], losses, rtol=1e-12)
    worst = np.argsort(-losses, kind="stable")[:3]
    assert [item["id"] for item in document["worst"]] == [f"r{i}" for i in worst]
    assert [item["index"] for item in document["worst"]] == worst.tolist()


def test_weight_column_with_an_explicit_id_column_in_tsv_and_read_options(tmp_path: Path) -> None:
    left, right, losses = weighted_frames(rows=9)
    left.rename(columns={"id": "name"}).to_csv(tmp_path / "l.tsv", sep="\t", index=False)
    right.rename(columns={"id": "name"}).to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    args = ["compute", str(tmp_path / "l.tsv"), str(tmp_path / "p.tsv"), "--id-column", "name", "--weight-column", "w"]
    document = json_of([*args, "--reduction", "sum", "--best", "2"])
    assert document["loss"] == pytest.approx(weighted_reference(losses, left["w"].to_numpy())["sum"], rel=1e-12)
    assert document["ids"] == list(left["id"])
    best = np.argsort(losses, kind="stable")[:2]
    assert [item["id"] for item in document["best"]] == [f"r{i}" for i in best]
    library = compute_files(
        str(tmp_path / "l.tsv"), str(tmp_path / "p.tsv"), ReadOptions(weight_column="w", id_column="name")
    )
    assert library.figures.weighted and library.figures.loss == pytest.approx(
        document["loss"] / np.count_nonzero(left["w"])
    )


def test_weight_column_of_labels_read_from_stdin(tmp_path: Path) -> None:
    left, right, losses = weighted_frames(rows=12)
    right.to_csv(tmp_path / "p.csv", index=False)
    document = json_of(
        ["compute", "-", str(tmp_path / "p.csv"), "--input-format", "csv", "--weight-column", "w"],
        input=left.to_csv(index=False),
    )
    assert document["loss"] == pytest.approx(weighted_reference(losses, left["w"].to_numpy())["sum_by_nonzero_weights"])


def test_weights_file_in_any_format_equals_the_column(tmp_path: Path) -> None:
    left, right, losses = weighted_frames(rows=30)
    left.to_csv(tmp_path / "l.csv", index=False)
    right.to_csv(tmp_path / "p.csv", index=False)
    np.save(tmp_path / "w.npy", left["w"].to_numpy())
    left[["w"]].to_parquet(tmp_path / "w.parquet")  # with pandas' index, which is not a weight
    by_column = json_of(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--weight-column", "w"])
    for weights in ("w.npy", "w.parquet"):
        # The labels keep their w column: named in neither --weight-column nor --columns, it is data.
        left.drop(columns="w").to_csv(tmp_path / "l2.csv", index=False)
        by_file = json_of(
            ["compute", str(tmp_path / "l2.csv"), str(tmp_path / "p.csv"), "--weights", str(tmp_path / weights)]
        )
        assert by_file["loss"] == by_column["loss"]
        assert by_file["weighted"] is True


def test_omitted_rows_lose_their_weights(tmp_path: Path) -> None:
    labels = np.array([[1.0, 0.0], [np.nan, 1.0], [1.0, 1.0], [0.0, 1.0]])
    predictions = np.array([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [1.0, 0.0]])
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    (tmp_path / "w.csv").write_text("2\n100\n1\n0\n")
    base = ["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--weights", str(tmp_path / "w.csv")]
    kept_losses = np.array([1 - 1 / math.sqrt(2), 2.0, 1.0])
    kept_weights = np.array([2.0, 1.0, 0.0])
    for reduction, value in weighted_reference(kept_losses, kept_weights).items():
        document = json_of([*base, "--nan-policy", "omit", "--reduction", reduction])
        assert document["loss"] == pytest.approx(value, rel=1e-14)
    propagated = json_of([*base, "--nan-policy", "propagate"])
    assert propagated["loss"] is None  # NaN: a NaN loss propagates into the sums


def test_reduction_none_lists_weighted_losses_in_every_output(tmp_path: Path) -> None:
    left, right, losses = weighted_frames(rows=6)
    left.to_csv(tmp_path / "l.csv", index=False)
    right.to_csv(tmp_path / "p.csv", index=False)
    args = ["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--weight-column", "w", "--reduction", "none"]
    weighted = losses * left["w"].to_numpy()
    document = json_of(args)
    np.testing.assert_allclose(document["losses"], weighted, rtol=1e-12)
    assert document["mean"] == pytest.approx(losses.mean(), rel=1e-12)  # the summary stays unweighted
    csv = run_cli([*args, "--format", "csv", "-o", str(tmp_path / "out.parquet")])
    assert csv.exit_code == ExitStatus.OK
    np.testing.assert_allclose(pd.read_csv(pd.io.common.StringIO(csv.stdout))["loss"], weighted, rtol=1e-12)
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "out.parquet")["loss"], weighted, rtol=1e-12)


# --- weights errors -------------------------------------------------------------------------


def test_negative_weight_in_column_is_exit_1_naming_row_and_line(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("w,a,b\n1,1,0\n-2,0,1\n")
    (tmp_path / "p.csv").write_text("a,b\n1,1\n1,1\n")
    result = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--weight-column", "w"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "the weight of row 1 (line 3) is -2.0: negative" in result.stderr
    assert "l.csv" in result.stderr


def test_empty_weight_cell_is_exit_1_naming_its_line(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("a,b,w\n1,0,1\n0,1,1\n1,1,\n")
    (tmp_path / "p.csv").write_text("a,b\n1,1\n1,1\n1,0\n")
    result = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--weight-column", "w"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "the weight of row 2 (line 4) is nan: not a finite number" in result.stderr


def test_bad_weights_file_is_exit_1_naming_row_and_line(tmp_path: Path) -> None:
    np.save(tmp_path / "l.npy", np.ones((3, 2)))
    np.save(tmp_path / "p.npy", np.ones((3, 2)))
    (tmp_path / "w.csv").write_text("weight\n1\nnan\n1\n")
    result = run_cli(
        ["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--weights", str(tmp_path / "w.csv")]
    )
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "the weight of row 1 (line 3) is nan: not a finite number" in result.stderr


@pytest.mark.parametrize("labels_format", ["npy", "csv"])
def test_weights_of_another_count_are_exit_1_naming_both_files(labels_format: str, tmp_path: Path) -> None:
    labels = tmp_path / f"l.{labels_format}"
    if labels_format == "npy":
        np.save(labels, np.ones((3, 2)))
    else:
        labels.write_text("a,b\n1,0\n0,1\n1,1\n")
    np.save(tmp_path / "p.npy", np.ones((3, 2)))
    for weights in ("1\n1\n", "1\n1\n1\n1\n"):
        (tmp_path / "w.csv").write_text(weights)
        result = run_cli(
            ["compute", str(labels), str(tmp_path / "p.npy"), "--weights", str(tmp_path / "w.csv")]
            + (["--predictions-format", "npy"] if labels_format == "csv" else [])
        )
        assert result.exit_code == ExitStatus.DATA_ERROR, result.stderr
        assert "w.csv" in result.stderr and "weights, but" in result.stderr and str(labels) in result.stderr


def test_weight_usage_errors_are_exit_2(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("a,b\n1,0\n")
    (tmp_path / "p.csv").write_text("a,b\n1,1\n")
    np.save(tmp_path / "l.npy", np.ones((1, 2)))
    (tmp_path / "w.csv").write_text("1\n")
    l_csv, p_csv = str(tmp_path / "l.csv"), str(tmp_path / "p.csv")
    missing = run_cli(["compute", l_csv, p_csv, "--weight-column", "weight"])
    assert missing.exit_code == ExitStatus.USAGE_ERROR
    assert "no column named 'weight' for --weight-column" in missing.stderr and "'a', 'b'" in missing.stderr
    npy = run_cli(["compute", str(tmp_path / "l.npy"), p_csv, "--weight-column", "w"])
    assert npy.exit_code == ExitStatus.USAGE_ERROR
    assert "--weight-column needs labels with columns (CSV, TSV, Parquet" in npy.stderr
    both = run_cli(["compute", l_csv, p_csv, "--weight-column", "a", "--weights", str(tmp_path / "w.csv")])
    assert both.exit_code == ExitStatus.USAGE_ERROR and "not both" in both.stderr
    axis0 = run_cli(["compute", l_csv, p_csv, "--axis", "0", "--weights", str(tmp_path / "w.csv")])
    assert axis0.exit_code == ExitStatus.USAGE_ERROR and "per column" in axis0.stderr


def test_library_options_are_checked() -> None:
    labels, predictions = "sample_data/labels.csv", "sample_data/predictions.csv"
    with pytest.raises(ParameterError, match="confidence"):
        compute_files(labels, predictions, confidence=1.5)
    with pytest.raises(InputUsageError, match="unknown reduction"):
        compute_files(labels, predictions, reduction="average")
    with pytest.raises(TypeError, match="unexpected keyword argument 'weight'"):
        compute_files(labels, predictions, weight=[1, 2])


def test_library_takes_weights_as_numbers_arrays_and_files(tmp_path: Path) -> None:
    labels, predictions = ROOT / "sample_data" / "labels.csv", ROOT / "sample_data" / "predictions.csv"
    plain = compute_files(str(labels), str(predictions), axis=1)
    scalar = compute_files(str(labels), str(predictions), axis=1, weights=2.0, reduction="sum")
    array = compute_files(str(labels), str(predictions), axis=1, weights=[2.0, 0.0], reduction="mean")
    assert scalar.figures.loss == pytest.approx(2 * plain.losses.sum(), rel=1e-15) and scalar.figures.weighted
    assert array.figures.loss == pytest.approx(plain.losses[0], rel=1e-15)
    assert plain.figures.loss == plain.summary.mean and not plain.figures.weighted
    with pytest.raises(DataError, match="has 2 weights, but .* has more rows"):
        compute_files(
            str(ROOT / "sample_data" / "weighted_labels.csv"),
            str(ROOT / "sample_data" / "weighted_predictions.csv"),
            ReadOptions(),
            columns="f0,f1,f2",
            weights=str(ROOT / "sample_data" / "weights.csv"),
        )


# --- the distribution -------------------------------------------------------------------------


def test_percentiles_top_best_histogram_against_numpy_over_many_blocks(pair: tuple[Path, Path, np.ndarray]) -> None:
    labels, predictions, losses = pair
    result = compute_files(
        str(labels), str(predictions), top=15, best=12, bins=7, confidence=0, block_bytes=16 * 1024, threads=2
    )
    np.testing.assert_allclose(result.losses, losses, rtol=1e-6, atol=1e-7)
    exact = result.losses  # the reference ranks the very losses the tool computed
    for key, q in PERCENTILES.items():
        assert result.figures.percentiles is not None
        assert result.figures.percentiles[key] == np.percentile(exact, q)
    worst = np.argsort(-exact, kind="stable")[:15]
    best = np.argsort(exact, kind="stable")[:12]
    assert [item.index for item in result.figures.worst] == worst.tolist()
    assert [item.loss for item in result.figures.worst] == exact[worst].tolist()
    assert [item.index for item in result.figures.best] == best.tolist()
    assert result.figures.histogram is not None
    counts, edges = np.histogram(exact, bins=7, range=(0.0, 2.0))
    np.testing.assert_array_equal(result.figures.histogram[1], counts)
    np.testing.assert_array_equal(result.figures.histogram[0], edges)
    assert math.isnan(result.figures.ci_low) and result.figures.confidence == 0


def test_ties_are_ranked_by_index(pair: tuple[Path, Path, np.ndarray]) -> None:
    labels, predictions, _ = pair
    result = compute_files(str(labels), str(predictions), top=3000, confidence=0, block_bytes=16 * 1024)
    tied = [item.index for item in result.figures.worst if 100 <= item.index < 110 or item.index == 50]
    assert tied == [50, *range(100, 110)]


def test_confidence_interval_matches_scipy_bootstrap(pair: tuple[Path, Path, np.ndarray]) -> None:
    from scipy import stats

    labels, predictions, _ = pair
    document = json_of(
        ["compute", str(labels), str(predictions), "--confidence", "0.9", "--resamples", "2000", "--seed", "4"]
    )
    losses = np.asarray(document["losses"])
    reference = stats.bootstrap(
        (losses,), np.mean, method="BCa", confidence_level=0.9, n_resamples=2000, random_state=np.random.default_rng(4)
    ).confidence_interval
    # Up to 5,000 losses the interval is scipy's own, drawn with the same seed: the same numbers.
    assert document["ci_low"] == pytest.approx(reference.low, rel=1e-12)
    assert document["ci_high"] == pytest.approx(reference.high, rel=1e-12)
    other = json_of(["compute", str(labels), str(predictions), "--confidence", "0.9", "--resamples", "2000"])
    assert other["ci_low"] != document["ci_low"]  # another seed, another draw


def test_confidence_interval_of_many_losses_within_monte_carlo_error(tmp_path: Path) -> None:
    """Above 5,000 losses the grouped resampler: scipy's interval on the same losses, within its noise."""
    from scipy import stats

    rng = np.random.default_rng(11)
    labels = rng.standard_normal((8000, 8))
    predictions = labels + rng.exponential(2.0, (8000, 8))  # skewed losses
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    document = json_of(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--resamples", "4000"])
    losses = np.asarray(document["losses"])
    reference = stats.bootstrap(
        (losses,), np.mean, method="BCa", n_resamples=4000, random_state=np.random.default_rng(1), batch=200
    ).confidence_interval
    width = reference.high - reference.low
    assert abs(document["ci_low"] - reference.low) < 0.1 * width
    assert abs(document["ci_high"] - reference.high) < 0.1 * width


def test_nd_losses_rank_with_index_lists(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    labels, predictions = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    document = json_of(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--axis", "2", "--top", "2"])
    losses = np.asarray(document["losses"])
    order = np.argsort(-losses.ravel(), kind="stable")[:2]
    assert [item["index"] for item in document["worst"]] == [list(np.unravel_index(i, losses.shape)) for i in order]


def test_json_keys_are_additive_and_off_by_default(pair: tuple[Path, Path, np.ndarray]) -> None:
    labels, predictions, _ = pair
    document = json_of(["compute", str(labels), str(predictions), "--no-losses", "--confidence", "0"])
    assert document["schema_version"] == 1
    assert {"mean", "median", "count", "loss", "reduction", "weighted", *PERCENTILES, "ci_low", "ci_high"} <= set(
        document
    )
    assert {"worst", "best", "histogram"}.isdisjoint(document)  # only when asked for
    assert document["ci_low"] is None and document["confidence"] == 0
    assert document["loss"] == document["mean"]  # no weights, TF's default reduction: the plain mean


# --- batch: percentiles per pair and pooled, worst rows over pairs, weights per pair ------------


@pytest.fixture(scope="module")
def batch_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Three pairs of different sizes, as CSV with a weight column and Parquet, and their losses and weights."""
    root = tmp_path_factory.mktemp("batch")
    (root / "labels").mkdir()
    (root / "predictions").mkdir()
    losses, weights = {}, {}
    for i, (name, rows) in enumerate((("a", 40), ("b", 7), ("c", 120))):
        left, right, pair_losses = weighted_frames(rows=rows, seed=10 + i)
        if name == "c":
            left.to_parquet(root / "labels" / "c.parquet", index=False)
        else:
            left.to_csv(root / "labels" / f"{name}.csv", index=False)
        right.to_csv(root / "predictions" / f"{name}.csv", index=False)
        losses[name], weights[name] = pair_losses, left["w"].to_numpy()
    return root, losses, weights


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_batch_percentiles_per_pair_and_pooled_top_and_weights(
    jobs: str, batch_tree: tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]
) -> None:
    root, losses, weights = batch_tree
    args = ["batch", str(root / "labels"), str(root / "predictions"), "-j", jobs, "--top", "5"]
    document = json_of([*args, "--weight-column", "w", "--reduction", "mean"])
    every = np.concatenate([losses[name] for name in "abc"])
    pairs = {pair["name"]: pair for pair in document["pairs"]}
    for name in "abc":
        for key, q in PERCENTILES.items():
            assert pairs[name][key] == pytest.approx(np.percentile(losses[name], q), rel=1e-12)
        expected = weighted_reference(losses[name], weights[name])["mean"]
        assert pairs[name]["loss"] == pytest.approx(expected, rel=1e-12) and pairs[name]["weighted"] is True
    overall = document["overall"]
    for key, q in PERCENTILES.items():
        assert overall[key] == pytest.approx(np.percentile(every, q), rel=1e-12)
    all_weights = np.concatenate([weights[name] for name in "abc"])
    assert overall["loss"] == pytest.approx(float(np.sum(every * all_weights) / np.sum(all_weights)), rel=1e-12)
    names = np.concatenate([[name] * losses[name].size for name in "abc"])
    rows = np.concatenate([np.arange(losses[name].size) for name in "abc"])
    order = np.argsort(-every, kind="stable")[:5]
    assert [(item["name"], item["index"]) for item in overall["worst"]] == [
        (str(names[i]), int(rows[i])) for i in order
    ]
    assert [item["id"] for item in overall["worst"]] == [f"r{rows[i]}" for i in order]
    np.testing.assert_allclose([item["loss"] for item in overall["worst"]], every[order], rtol=1e-12)


def test_batch_pooled_percentiles_spilled_to_disk_are_exact(
    batch_tree: tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cosloss_cli.stats.pooled

    monkeypatch.setattr(cosloss_cli.stats.pooled, "IN_MEMORY_VALUES", 10)
    monkeypatch.setattr(cosloss_cli.stats.pooled, "CHUNK_VALUES", 16)  # many chunks per pass
    root, losses, _ = batch_tree
    document = json_of(["batch", str(root / "labels"), str(root / "predictions"), "-j", "1", "--weight-column", "w"])
    every = np.concatenate([losses[name] for name in "abc"])
    for key, q in PERCENTILES.items():
        assert document["overall"][key] == pytest.approx(np.percentile(every, q), rel=1e-12)


def test_pooled_losses_select_exactly_with_negative_values_and_ties() -> None:
    from cosloss_cli.stats.pooled import PooledLosses

    rng = np.random.default_rng(9)
    parts = [rng.normal(size=n) for n in (1, 50, 333, 1000)] + [np.array([0.0, -0.0, 2.0, 2.0, 2.0, -7.5])]
    every = np.concatenate(parts)
    for memory in (10**6, 0, 5):
        pooled = PooledLosses(memory_values=memory)
        for part in parts:
            pooled.add(part)
        assert pooled.percentiles() == {key: float(np.percentile(every, q)) for key, q in PERCENTILES.items()}
        pooled.add([math.nan])
        assert all(math.isnan(v) for v in pooled.percentiles().values())
        pooled.close()


def test_pooled_losses_copy_what_they_are_not_given() -> None:
    """The runner gives a worker's array away (kept as is); anything else is copied, views included."""
    from cosloss_cli.stats.pooled import PooledLosses

    pooled = PooledLosses()
    given, lent, view_source = np.array([0.5, 1.0]), np.array([0.25, 1.5]), np.array([[0.1, 0.2], [0.3, 0.4]])
    pooled.add(given, owned=True)
    pooled.add(lent)
    pooled.add(view_source[0], owned=True)  # a view: its memory is not the caller's to give
    assert pooled._parts[0] is given and pooled._parts[1] is not lent
    lent[:] = 9.0
    view_source[:] = 9.0
    assert pooled.percentiles() == {
        key: float(np.percentile([0.5, 1.0, 0.25, 1.5, 0.1, 0.2], q)) for key, q in PERCENTILES.items()
    }
    pooled.close()


def test_histogram_is_coloured_only_on_a_terminal() -> None:
    from .conftest import PIPED, TERMINAL

    labels, predictions = (
        ROOT / "sample_data" / "weighted_labels.csv",
        ROOT / "sample_data" / "weighted_predictions.csv",
    )
    args = ["compute", str(labels), str(predictions), "--max-rows", "0"]
    piped = run_cli([*args, "--weight-column", "weight"], env=PIPED)
    coloured = run_cli([*args, "--weight-column", "weight"], env=TERMINAL)
    assert piped.exit_code == coloured.exit_code == ExitStatus.OK
    assert "\x1b[" not in piped.stdout and "histogram\n" in piped.stdout
    bars = piped.stdout.split("histogram\n", 1)[1].splitlines()[0]
    assert bars.strip() and set(bars) <= set(" ▁▂▃▄▅▆▇█")
    assert "\x1b[36m" in coloured.stdout  # the bars in cyan


def test_weight_column_follows_rows_matched_by_id(tmp_path: Path) -> None:
    left, right, losses = weighted_frames(rows=20)
    left.to_csv(tmp_path / "l.csv", index=False)
    shuffled = right.sample(frac=1.0, random_state=4).iloc[:-3]  # another order, three rows missing
    shuffled.to_parquet(tmp_path / "p.parquet", index=False)
    args = ["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.parquet"), "--join-on", "id"]
    document = json_of([*args, "--weight-column", "w", "--reduction", "mean", "--top", "2"])
    kept = left["id"].isin(shuffled["id"]).to_numpy()
    expected = weighted_reference(losses[kept], left["w"].to_numpy()[kept])["mean"]
    assert document["loss"] == pytest.approx(expected, rel=1e-12)
    order = np.argsort(-losses[kept], kind="stable")[:2]
    assert [item["id"] for item in document["worst"]] == list(left["id"].to_numpy()[kept][order])
    (tmp_path / "w.csv").write_text("\n".join(["1"] * 20) + "\n")
    refused = run_cli([*args, "--columns", "a,b,c,d", "--weights", str(tmp_path / "w.csv")])
    assert refused.exit_code == ExitStatus.USAGE_ERROR and "--weight-column" in refused.stderr


# ------------------------------------------------------------ the interval on a thread of its own


def _large_pair(tmp_path: Path, rows: int) -> tuple[str, str]:
    rng = np.random.default_rng(12)
    labels = rng.normal(size=(rows, 4)).astype(np.float32)
    predictions = (labels + 0.3 * rng.normal(size=labels.shape)).astype(np.float32)
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    return str(tmp_path / "l.npy"), str(tmp_path / "p.npy")


def test_a_large_input_draws_the_interval_on_a_thread_with_the_same_result(tmp_path: Path, monkeypatch) -> None:
    import threading

    from cosloss_cli.base.aside import BACKGROUND_SIZE
    from cosloss_cli.stats import intervals as stats

    labels, predictions = _large_pair(tmp_path, BACKGROUND_SIZE + 10)
    names: list[str] = []
    start = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        names.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    result = compute_files(labels, predictions, resamples=500, seed=3)
    assert "cosloss-interval" in names
    expected = stats.mean_ci(result.kept(), confidence=0.95, resamples=500, seed=3)
    assert (result.figures.ci_low, result.figures.ci_high) == expected
    assert result.figures.ci_low < result.summary.mean < result.figures.ci_high


def test_an_error_in_the_interval_thread_reaches_the_caller(tmp_path: Path, monkeypatch) -> None:
    from cosloss_cli.base.aside import BACKGROUND_SIZE
    from cosloss_cli.stats import figures

    labels, predictions = _large_pair(tmp_path, BACKGROUND_SIZE + 10)

    def broken(*args: Any, **kwargs: Any) -> tuple[float, float]:
        raise MemoryError("no room for the resamples")

    monkeypatch.setattr(figures, "mean_ci", broken)
    with pytest.raises(MemoryError, match="no room for the resamples"):
        compute_files(labels, predictions, resamples=500)


@property_settings(200)
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.sampled_from([0.0, -0.0, 1.0, 1.0 + 2**-52, 2.0, 5e-324, -5e-324]),  # ties, bin edges, subnormals
        ),
        min_size=1,
        max_size=300,
    ),
    data=st.data(),
)
def test_select_ranks_is_a_full_sort_s_to_the_bit(values: list[float], data: st.DataObject) -> None:
    """The histogram selection of the pooled percentiles against np.sort, small sizes forced through it.

    The values are cut into pieces (the workers' files) and binned in chunks of a few
    values, so that pieces and chunks end anywhere.
    """
    import cosloss_cli.stats.pooled as pooled

    array = np.array(values)
    ranks = sorted(set(data.draw(st.lists(st.integers(0, array.size - 1), min_size=1, max_size=8))))
    cuts = sorted(data.draw(st.lists(st.integers(0, array.size), max_size=3)))
    pieces = [array[start:stop] for start, stop in zip([0, *cuts], [*cuts, array.size], strict=True)]
    expected = np.sort(array)[ranks]
    original = pooled.SELECT_MIN_VALUES, pooled.SELECT_CHUNK_VALUES
    # The histogram path for every size (restored below, not via a fixture: hypothesis
    # runs the body many times per test call).
    pooled.SELECT_MIN_VALUES, pooled.SELECT_CHUNK_VALUES = 0, data.draw(st.integers(1, 7))
    try:
        found = pooled.select_ranks(pieces, ranks)
    finally:
        pooled.SELECT_MIN_VALUES, pooled.SELECT_CHUNK_VALUES = original
    assert found.tolist() == expected.tolist()
    assert array.tolist() == values  # the pieces are only read: they may be read-only maps


def test_select_ranks_of_many_clustered_losses_matches_a_partition() -> None:
    """2 million losses bunched in a few bins, as a batch's are: the default path, exact."""
    from cosloss_cli.stats.pooled import SELECT_MIN_VALUES, select_ranks

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0.107, 0.025, 1_000_000), np.full(500_000, 0.25), rng.random(500_000) * 1e-9])
    assert values.size > SELECT_MIN_VALUES
    ranks = [0, 99_999, 999_999, 1_000_000, 1_499_999, 1_999_999]
    expected = np.partition(values.copy(), ranks)[ranks]
    values.flags.writeable = False
    assert select_ranks([values], ranks).tolist() == expected.tolist()
    assert select_ranks([values[:700_001], values[700_001:]], ranks).tolist() == expected.tolist()
    assert select_ranks([np.full(SELECT_MIN_VALUES, 0.5)], [0, 7]).tolist() == [0.5, 0.5]
    with_infinity = np.append(values[:SELECT_MIN_VALUES], np.inf)
    assert select_ranks([with_infinity], [SELECT_MIN_VALUES]).tolist() == [np.inf]


@pytest.mark.parametrize("size", [10, 1 << 17])
def test_select_ranks_with_a_nan_gives_nan_for_every_rank(size: int) -> None:
    """A NaN loss (--nan-policy propagate) makes every pooled percentile NaN, as np.percentile does."""
    from cosloss_cli.stats.pooled import select_ranks

    values = np.linspace(0.0, 2.0, size)
    values[size // 3] = np.nan
    found = select_ranks([values[: size // 2], values[size // 2 :]], [0, size // 2, size - 1])
    assert np.isnan(found).all()
    assert np.isnan(np.percentile(values, [0, 50])).all()


def test_pooled_losses_read_the_workers_files_and_only_what_results_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans of the workers' files (-j N): exact, bytes no result names are never read, the folder goes."""
    from cosloss_cli.base.spool import spool
    from cosloss_cli.stats.pooled import PooledLosses

    rng = np.random.default_rng(5)
    parts = [rng.random(n) * 2 for n in (3, 700, 1, 250)]
    every = np.concatenate(parts)
    expected = {key: float(np.percentile(every, q)) for key, q in PERCENTILES.items()}
    for memory in (10**6, 100, 0):  # read whole; read span by span; spilled to a file on the way
        monkeypatch.setattr("cosloss_cli.stats.pooled.CHUNK_VALUES", 64)  # several reads per span
        pooled = PooledLosses(memory_values=memory)
        folder = pooled.spool_folder()
        spans = spool(folder, parts[:2])
        spool(folder, [np.full(40, 9.0)])  # a pair whose worker died before its result came back
        spans += spool(folder, parts[2:])
        pooled.add(np.empty(0))
        for span in reversed(spans):  # results come in any order
            pooled.add_span(span)
        assert pooled.size == every.size
        assert pooled.percentiles() == expected
        pooled.close()
        assert not Path(folder).exists()


@pytest.mark.parametrize("most", [1, 2, 1024])
def test_spool_writes_every_byte_through_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, most: int
) -> None:
    """Short writes resume where they stopped; empty and non-contiguous arrays keep their place."""
    import os

    from cosloss_cli.base import spool as spool_module

    real_writev = os.writev

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        return real_writev(fd, [bytes(buffers[0])[:13]])  # 13 bytes at most: mid-value, mid-buffer

    monkeypatch.setattr(os, "writev", short_writev)
    monkeypatch.setattr(spool_module, "_MOST_BUFFERS", most)
    rng = np.random.default_rng(3)
    parts = [rng.random(5), np.empty(0), rng.random(9)[::3], np.arange(4, dtype=np.float32)]
    spans = spool_module.spool(str(tmp_path), parts)
    data = np.fromfile(spans[0].path, dtype=np.float64)
    for span, part in zip(spans, parts, strict=True):
        start = span.offset // 8
        assert data[start : start + span.length].tolist() == np.asarray(part, dtype=np.float64).tolist()
    assert data.size == sum(part.size for part in parts)


def test_pooled_losses_map_whole_files_and_spill_beyond_memory(tmp_path: Path) -> None:
    """A worker's file that the spans cover whole is mapped; one beyond memory spills all, mapped ones too."""
    from cosloss_cli.base.spool import Span
    from cosloss_cli.stats.pooled import PooledLosses

    rng = np.random.default_rng(8)
    first, second, extra = rng.random(300) * 2, rng.random(200) * 2, rng.random(50) * 2
    first.tofile(tmp_path / "worker-1.f64")
    second.tofile(tmp_path / "worker-2.f64")
    spans = [
        Span(str(tmp_path / "worker-1.f64"), 800, 200),
        Span(str(tmp_path / "worker-2.f64"), 0, 200),
        Span(str(tmp_path / "worker-1.f64"), 0, 100),
    ]
    every = np.concatenate([extra, first, second])
    expected = {key: float(np.percentile(every, q)) for key, q in PERCENTILES.items()}
    for memory, mapped in ((10**6, 2), (350, 0), (0, 0)):  # both mapped; the second spills them; all spilled
        pooled = PooledLosses(memory_values=memory)
        pooled.add(extra)
        for span in spans:
            pooled.add_span(span)
        assert pooled.size == every.size
        assert pooled.percentiles() == expected
        assert len(pooled._mapped) == mapped and pooled.size == every.size
        pooled.close()


def test_pooled_losses_see_nan_in_the_workers_files() -> None:
    from cosloss_cli.base.spool import spool
    from cosloss_cli.stats.pooled import PooledLosses

    pooled = PooledLosses()
    (span,) = spool(pooled.spool_folder(), [np.array([0.5, math.nan])])
    pooled.add_span(span)
    assert all(math.isnan(value) for value in pooled.percentiles().values())
    pooled.close()


def test_batch_on_workers_leaves_no_files_behind(
    batch_tree: tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    from cosloss_cli.stats.pooled import PooledLosses

    root, losses, _ = batch_tree
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spans: list[Any] = []
    add_span = PooledLosses.add_span
    monkeypatch.setattr(PooledLosses, "add_span", lambda self, span: (spans.append(span), add_span(self, span)))
    document = json_of(["batch", str(root / "labels"), str(root / "predictions"), "-j", "2", "--weight-column", "w"])
    every = np.concatenate([losses[name] for name in "abc"])
    assert document["overall"]["p95"] == pytest.approx(np.percentile(every, 95), rel=1e-12)
    assert len(spans) == 3 and all(Path(span.path).parent.parent == tmp_path for span in spans)
    assert list(tmp_path.iterdir()) == []
