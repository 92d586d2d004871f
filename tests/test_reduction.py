"""TF's weights and reductions: golden figures from TensorFlow itself, and a float64 reference.

The golden cases under ``tests/golden_reductions/`` were made once with TensorFlow 2.21
(``tf.compat.v1.losses.cosine_distance`` on ``tf.nn.l2_normalize``d inputs, float32) by
``tests/golden_reductions/make_golden.py``, which also wrote a plain-Python float64
reference of the same figures; see that script's docstring. The tests never run it.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.core.reduction import (
    DEFAULT_REDUCTION,
    NO_LOSSES,
    REDUCTIONS,
    WeightedSums,
    check_reduction,
    check_weights,
    reduce_losses,
)
from cosloss_cli.errors import DataError, InputUsageError
from cosloss_cli.io import ReadOptions
from cosloss_cli.io.delimited import line_of_row
from cosloss_cli.io.frames import cosine_loss
from cosloss_cli.io.weights import read_weights
from cosloss_cli.status import ExitStatus

from .conftest import property_settings

GOLDEN = Path(__file__).parent / "golden_reductions"
CASES = sorted(p.parent.name for p in GOLDEN.glob("*/expected.json"))
PROPERTY = property_settings(60)


def _case(name: str) -> tuple[dict[str, Any], np.ndarray, np.ndarray, Any]:
    folder = GOLDEN / name
    expected = json.loads((folder / "expected.json").read_text())
    labels = np.load(folder / expected["labels"])
    predictions = np.load(folder / expected["predictions"])
    weights = expected["weights"]
    if isinstance(weights, str):
        weights = read_weights(str(folder / weights), expected_rows=len(labels), labels_path=expected["labels"])
    return expected, labels, predictions, weights


def test_every_reduction_and_weighting_has_a_golden_case() -> None:
    assert CASES == ["all_zero", "no_weights", "per_row", "scalar", "some_zero"]
    for name in CASES:
        expected = json.loads((GOLDEN / name / "expected.json").read_text())
        assert set(REDUCTIONS) <= set(expected["tensorflow"]) and set(REDUCTIONS) <= set(expected["float64_reference"])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES)
def test_matches_tensorflow(case: str, reduction: str) -> None:
    """Our float64 figure is TF's float32 one to float32 precision (losses are O(1) here)."""
    expected, labels, predictions, weights = _case(case)
    losses = cosine_loss(labels, predictions, axis=expected["axis"])
    ours = reduce_losses(losses, weights, reduction)
    tf_value = expected["tensorflow"][reduction]
    if reduction == "none":
        assert isinstance(ours, np.ndarray) and ours.shape == (len(labels),)
        np.testing.assert_allclose(ours, tf_value, rtol=1e-6, atol=1e-6)
    else:
        assert isinstance(ours, float)
        assert ours == pytest.approx(tf_value, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES)
def test_matches_the_float64_reference(case: str, reduction: str) -> None:
    """On the reference's own losses the reduction is the reference's to the last bits.

    The reference sums with ``math.fsum`` (correctly rounded), numpy pairwise: the two
    may differ by an ulp or two, never more on nine values.
    """
    expected, labels, predictions, weights = _case(case)
    reference = expected["float64_reference"]
    np.testing.assert_allclose(cosine_loss(labels, predictions, axis=1), reference["losses"], rtol=0, atol=1e-15)
    ours = reduce_losses(np.array(reference["losses"]), weights, reduction)
    if reduction == "none":
        np.testing.assert_array_equal(ours, reference["none"])  # one product each: exact
    else:
        assert ours == pytest.approx(reference[reduction], rel=4 * np.finfo(float).eps, abs=0)


# Dyadic losses and weights: every sum is exact in float64, so every figure must be too.
DYADIC_LOSSES = [0.5, 1.25, 0.0, 2.0, 0.75, 1.0]
DYADIC_WEIGHTS = [2.0, 0.0, 1.5, 0.25, 0.0, 4.0]


@pytest.mark.parametrize(
    ("weights", "reduction", "expected"),
    [
        (None, "sum", Fraction(11, 2)),
        (None, "mean", Fraction(11, 12)),
        (None, "sum_over_batch_size", Fraction(11, 12)),
        (None, "sum_by_nonzero_weights", Fraction(11, 12)),
        (DYADIC_WEIGHTS, "sum", Fraction(11, 2)),  # 1 + 0 + 0 + 0.5 + 0 + 4
        (DYADIC_WEIGHTS, "mean", Fraction(11, 2) / Fraction(31, 4)),
        (DYADIC_WEIGHTS, "sum_over_batch_size", Fraction(11, 2) / 6),
        (DYADIC_WEIGHTS, "sum_by_nonzero_weights", Fraction(11, 2) / 4),
        (0.5, "sum", Fraction(11, 4)),
        (0.5, "mean", Fraction(11, 12)),  # a scalar weight counts once per loss
        (0.5, "sum_over_batch_size", Fraction(11, 24)),
        (0.5, "sum_by_nonzero_weights", Fraction(11, 24)),
        (0.0, "sum_by_nonzero_weights", Fraction(0)),
        (0.0, "mean", Fraction(0)),
        ([0.0] * 6, "mean", Fraction(0)),
        ([0.0] * 6, "sum_by_nonzero_weights", Fraction(0)),
        ([0.0] * 6, "sum_over_batch_size", Fraction(0)),
    ],
)
def test_exact_on_dyadic_values(weights: Any, reduction: str, expected: Fraction) -> None:
    assert reduce_losses(DYADIC_LOSSES, weights, reduction) == float(expected)


def test_none_returns_the_weighted_losses() -> None:
    np.testing.assert_array_equal(reduce_losses(DYADIC_LOSSES, DYADIC_WEIGHTS, "none"), [1.0, 0.0, 0.0, 0.5, 0.0, 4.0])
    unweighted = reduce_losses(DYADIC_LOSSES, None, "none")
    assert isinstance(unweighted, np.ndarray) and unweighted.tolist() == DYADIC_LOSSES


def test_default_is_tensorflows_and_without_weights_the_plain_mean() -> None:
    assert DEFAULT_REDUCTION == "sum_by_nonzero_weights"
    losses = np.random.default_rng(1).uniform(0, 2, 1000)
    assert reduce_losses(losses) == pytest.approx(math.fsum(losses) / 1000, rel=1e-14)


def test_zero_weights_leave_their_rows_out_of_the_nonzero_mean() -> None:
    losses = np.array([0.1, 1.9, 0.3, 1.7])
    weights = np.array([1.0, 0.0, 1.0, 0.0])
    assert reduce_losses(losses, weights) == pytest.approx(0.2, rel=1e-15)
    assert reduce_losses(losses, weights, "sum_over_batch_size") == pytest.approx(0.1, rel=1e-15)


def test_empty_losses_reduce_to_zero_as_tf_divides() -> None:
    for reduction in REDUCTIONS[1:]:
        assert reduce_losses([], None, reduction) == 0.0
        assert reduce_losses([], [], reduction) == 0.0


def test_nan_losses_propagate() -> None:
    assert math.isnan(reduce_losses([0.5, math.nan], [1.0, 0.0], "sum"))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, -0.5, 1.0], "the weight of row 1 is -0.5: negative"),
        ([1.0, 1.0, math.nan], "the weight of row 2 is nan: not a finite number"),
        ([math.inf, 1.0, 1.0], "the weight of row 0 is inf: not a finite number"),
    ],
)
def test_negative_or_non_finite_weights_are_data_errors_naming_the_row(weights: list[float], message: str) -> None:
    with pytest.raises(DataError) as caught:
        reduce_losses([0.1, 0.2, 0.3], weights)
    assert str(caught.value) == f"{message} (weights must be finite and >= 0)"
    assert caught.value.exit_status == ExitStatus.DATA_ERROR


def test_a_bad_weight_in_a_later_block_is_named_by_its_row_in_the_file() -> None:
    with pytest.raises(DataError, match="row 1002 is -1.0"):
        WeightedSums.of([0.1, 0.2, 0.3], [1.0, 1.0, -1.0], first_row=1000)
    with pytest.raises(DataError, match=r"entry \(3, 1\) is -2.0"):
        check_weights([[0.0, 1.0], [1.0, -2.0]], (2, 2), first_row=2)


def test_a_negative_scalar_weight_is_refused() -> None:
    with pytest.raises(DataError, match="the weight of row 0 is -1.0: negative"):
        reduce_losses([0.1, 0.2], -1.0)


@pytest.mark.parametrize("weights", [[1.0, 2.0], [[1.0, 2.0, 3.0]], np.ones((3, 2))])
def test_weights_of_another_shape_are_refused(weights: Any) -> None:
    with pytest.raises(DataError, match=r"the weights have shape \(.*\), the losses \(3,\)"):
        reduce_losses([0.1, 0.2, 0.3], weights)


def test_weights_broadcast_as_tf_allows() -> None:
    losses = np.array([[0.5, 1.0], [0.25, 2.0]])
    assert reduce_losses(losses, [[2.0], [0.0]], "sum_by_nonzero_weights") == 1.5  # (1 + 2) / 2
    assert reduce_losses(losses, [[1.0, 0.0]], "mean") == 0.375  # (0.5 + 0.25) / 2
    with pytest.raises(DataError, match="shape"):
        reduce_losses(losses, [1.0, 0.0])  # numpy would broadcast a lower rank; TF does not


def test_non_numeric_weights_are_refused() -> None:
    with pytest.raises(DataError, match="the weights have dtype"):
        reduce_losses([0.5], np.array(["a"]))


@pytest.mark.parametrize("reduction", ["average", "SUM", ""])
def test_an_unknown_reduction_is_a_usage_error_listing_the_choices(reduction: str) -> None:
    with pytest.raises(InputUsageError) as caught:
        reduce_losses([0.5], None, reduction)
    assert caught.value.exit_status == ExitStatus.USAGE_ERROR
    assert "choose one of none, sum, mean, sum_over_batch_size, sum_by_nonzero_weights" in str(caught.value)
    with pytest.raises(InputUsageError):
        check_reduction(reduction)


def test_reduction_none_has_no_single_sum() -> None:
    with pytest.raises(InputUsageError, match="one value per loss"):
        WeightedSums.of([0.5]).reduce("none")


@PROPERTY
@given(
    data=st.data(),
    size=st.integers(0, 60),
    weighted=st.booleans(),
)
def test_block_sums_merge_to_the_whole(data: st.DataObject, size: int, weighted: bool) -> None:
    """Reducing block by block (any split) gives the figures of the whole, to rounding."""
    losses = np.array(data.draw(st.lists(st.floats(0, 2), min_size=size, max_size=size)))
    weights = (
        np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0, 1e-3]), min_size=size, max_size=size)))
        if weighted
        else None
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, size), max_size=5)))
    merged = NO_LOSSES
    for start, stop in zip([0, *cuts], [*cuts, size], strict=True):
        block_weights = None if weights is None else weights[start:stop]
        merged = merged.merge(WeightedSums.of(losses[start:stop], block_weights, first_row=start))
    whole = WeightedSums.of(losses, weights)
    assert (merged.nonzero, merged.count) == (whole.nonzero, whole.count)
    w = np.ones(size) if weights is None else weights
    assert merged.sum_weights == pytest.approx(math.fsum(w), rel=1e-12, abs=1e-300)
    for reduction in REDUCTIONS[1:]:
        assert merged.reduce(reduction) == pytest.approx(
            reduce_losses(losses, weights, reduction), rel=1e-12, abs=1e-12
        )
    reference = math.fsum(float(a) * float(b) for a, b in zip(losses, w, strict=True))
    assert merged.reduce("sum") == pytest.approx(reference, rel=1e-12, abs=1e-12)


# ---- reading weights from files written the way users write them -------------------------

WEIGHTS = [0.5, 2.0, 0.0, 1.25, 3.0]


def test_read_weights_from_every_format(tmp_path: Path) -> None:
    frame = pd.DataFrame({"weight": WEIGHTS})
    written = {
        "pandas.csv": lambda p: frame.to_csv(p, index=False),
        "pandas.tsv": lambda p: frame.to_csv(p, index=False, sep="\t"),
        "gzip.csv.gz": lambda p: frame.to_csv(p, index=False, compression="gzip"),
        "headerless.csv": lambda p: frame.to_csv(p, index=False, header=False),
        "pandas.parquet": lambda p: frame.to_parquet(p),
        "flat.npy": lambda p: np.save(p, np.array(WEIGHTS)),
        "column.npy": lambda p: np.save(p, np.array(WEIGHTS, dtype=np.float32)[:, None]),
        "ints.npy": lambda p: np.save(p, np.array([1, 0, 3])),
        "one.npz": lambda p: np.savez(p, w=np.array(WEIGHTS)),
    }
    for name, write in written.items():
        path = tmp_path / name
        write(path)
        expected = [1.0, 0.0, 3.0] if name == "ints.npy" else WEIGHTS
        weights = read_weights(str(path), expected_rows=len(expected))
        assert weights.dtype == np.float64 and weights.tolist() == expected, name


def test_read_weights_across_many_blocks(tmp_path: Path) -> None:
    weights = np.random.default_rng(3).uniform(0, 5, 20_000)
    pd.DataFrame({"w": weights}).to_parquet(tmp_path / "w.parquet", row_group_size=3000)
    pd.DataFrame({"w": weights}).to_csv(tmp_path / "w.csv", index=False)
    small_blocks = ReadOptions(block_bytes=8 * 1000)
    for name in ("w.parquet", "w.csv"):
        np.testing.assert_array_equal(read_weights(str(tmp_path / name), small_blocks), weights)


def test_read_weights_from_a_column_of_the_labels_file(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["a", "b", "c", "d", "e"], "x": [1.0] * 5, "y": [2.0] * 5, "w": WEIGHTS})
    frame.to_csv(tmp_path / "labels.csv", index=False)
    frame.to_parquet(tmp_path / "labels.parquet")
    options = ReadOptions(id_column="id")
    for name in ("labels.csv", "labels.parquet"):
        assert read_weights(str(tmp_path / name), options, column="w", expected_rows=5).tolist() == WEIGHTS


def test_a_weight_column_of_an_npy_file_is_a_usage_error(tmp_path: Path) -> None:
    np.save(tmp_path / "labels.npy", np.ones((3, 2)))
    with pytest.raises(InputUsageError, match="an NPY file has no columns") as caught:
        read_weights(str(tmp_path / "labels.npy"), column="w")
    assert caught.value.exit_status == ExitStatus.USAGE_ERROR


def test_a_missing_weight_column_is_a_usage_error(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(InputUsageError, match="no column named 'w'"):
        read_weights(str(tmp_path / "labels.csv"), column="w")


def test_the_wrong_number_of_weights_names_both_files(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    pd.DataFrame({"weight": WEIGHTS}).to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        read_weights(str(path), expected_rows=6, labels_path="labels.parquet")
    assert str(caught.value) == f"{path}: has 5 weights, but labels.parquet has 6 rows (give one weight per row)"


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: pd.DataFrame({"a": [1.0], "b": [2.0]}).to_csv(p / "w.csv", index=False), "holds 2 values per row"),
        (lambda p: np.save(p / "w.npy", np.ones((4, 3))), "holds 3 values per row"),
        (lambda p: np.save(p / "w.npy", np.ones((4, 1, 1))), r"holds arrays of shape \(1, 1\) per row"),
    ],
)
def test_a_weights_file_of_several_columns_is_refused(tmp_path: Path, write: Any, message: str) -> None:
    write(tmp_path)
    (path,) = tmp_path.iterdir()
    with pytest.raises(DataError, match=message):
        read_weights(str(path))


def test_a_bad_weight_in_a_csv_is_named_by_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("weight\n0.5\n\n1.0\n-2\n3\n")  # a blank line: pyarrow skips it
    with pytest.raises(DataError) as caught:
        read_weights(str(path))
    assert str(caught.value) == (
        f"{path}: the weight of row 2 (line 5) is -2.0: negative (weights must be finite and >= 0)"
    )


def test_an_empty_weight_cell_is_a_missing_weight(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "weight": [0.5, None, 1.0]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 1 \(line 3\) is nan: not a finite number"):
        read_weights(str(path), column="weight")
    # pandas writes a missing value of a one-column CSV as "", which the CSV reader refuses itself
    pd.DataFrame({"weight": [0.5, None, 1.0]}).to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(DataError, match="cannot parse"):
        read_weights(str(tmp_path / "w.csv"))


def test_a_bad_weight_in_a_later_block_of_a_parquet_file_is_named_by_its_row(tmp_path: Path) -> None:
    weights = np.ones(5000)
    weights[4321] = -1.0
    pd.DataFrame({"w": weights}).to_parquet(tmp_path / "w.parquet", row_group_size=1000)
    with pytest.raises(DataError, match=r"w.parquet: the weight of row 4321 is -1.0: negative"):
        read_weights(str(tmp_path / "w.parquet"), ReadOptions(block_bytes=8 * 700))


def test_a_bad_weight_in_a_weight_column_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("x,y,w\n1,2,0.5\n3,4,inf\n")
    with pytest.raises(DataError, match=r"labels.csv: the weight of row 1 \(line 3\) is inf"):
        read_weights(str(path), column="w")


def test_line_of_row_counts_headers_blank_lines_and_gzip(tmp_path: Path) -> None:
    import gzip

    plain = tmp_path / "a.csv"
    plain.write_text("1\n\n2\r\n3\n")
    assert [line_of_row(str(plain), "csv", row) for row in range(4)] == [1, 3, 4, None]
    assert line_of_row(str(plain), "csv", 0, header=True) == 3
    zipped = tmp_path / "a.tsv.gz"
    zipped.write_bytes(gzip.compress(b"w\tx\n1\t2\n\n3\t4\n"))
    assert line_of_row(str(zipped), "tsv", 1) == 4
    old_mac = tmp_path / "b.csv"
    old_mac.write_bytes(b"w\r1\r2\r")
    assert line_of_row(str(old_mac), "csv", 1) is None  # pyarrow's count would differ: unknown
    assert line_of_row("-", "csv", 0) is None
