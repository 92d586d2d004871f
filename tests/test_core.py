"""The numeric core against TensorFlow's golden values and a float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cosloss_cli.core.cosine import DEFAULT_EPS, block_sums, losses_from_sums, summarize
from cosloss_cli.errors import DataError, InputUsageError, ParameterError, ShapeMismatchError, UsageError
from cosloss_cli.io.frames import cosine_loss

from .conftest import GoldenCase, golden_cases, property_settings
from .oracle import reference_losses

#: Every test here runs on the C kernel and on the numpy fallback.
pytestmark = pytest.mark.usefixtures("each_kernel")


def load(path) -> np.ndarray:
    if str(path).endswith(".npy"):
        return np.load(path)
    if str(path).endswith(".csv"):
        return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if "embedding" in table.column_names:
        return np.array(table.column("embedding").to_pylist(), dtype=np.float64)
    return np.column_stack([table.column(name).to_numpy() for name in table.column_names])


@pytest.mark.parametrize("case", golden_cases(), ids=lambda c: c.name)
def test_golden_case_matches_tensorflow_and_float64(case: GoldenCase) -> None:
    labels, predictions = load(case.labels), load(case.predictions)
    losses = cosine_loss(labels, predictions, axis=case.axis)
    assert isinstance(losses, np.ndarray)
    assert list(losses.shape) == case.expected["losses_shape"]
    np.testing.assert_allclose(losses, np.array(case.expected["exact_losses"]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(losses, np.array(case.expected["losses"]), rtol=0, atol=1e-6)
    mean = cosine_loss(labels, predictions, axis=case.axis, reduction="mean")
    assert mean == pytest.approx(case.expected["exact_mean"], abs=1e-12)
    assert mean == pytest.approx(case.expected["mean"], abs=1e-6)


def test_tutorial_example_mean() -> None:
    mean = cosine_loss([[1, 4, 5], [5, 5, 7]], [[3, 2, 5], [3, 2, 7]], axis=1, reduction="mean")
    assert round(mean, 7) == 0.0771687


def test_no_normalize_reproduces_tensorflows_raw_result() -> None:
    # TF's cosine_distance on unnormalized inputs: 1 - sum(L*P), mean over the batch = -54.
    losses = cosine_loss([[1, 4, 5], [5, 5, 7]], [[3, 2, 5], [3, 2, 7]], axis=1, normalize=False)
    np.testing.assert_array_equal(losses, [1 - 36, 1 - 74])
    assert cosine_loss([[1, 4, 5], [5, 5, 7]], [[3, 2, 5], [3, 2, 7]], axis=1, normalize=False, reduction="mean") == -54


def test_zero_vector_gives_exactly_one_even_with_eps_zero() -> None:
    for eps in (DEFAULT_EPS, 0.0):
        losses = cosine_loss([[0.0, 0.0], [1.0, 2.0]], [[3.0, 4.0], [0.0, 0.0]], eps=eps)
        np.testing.assert_array_equal(losses, [1.0, 1.0])


def test_identical_and_opposite_directions() -> None:
    v = np.array([[0.3, -1.2, 4.0, 2.5]])
    assert cosine_loss(v, 7 * v)[0] == pytest.approx(0.0, abs=1e-15)
    assert cosine_loss(v, -0.5 * v)[0] == pytest.approx(2.0, abs=1e-15)


def test_result_is_clipped_into_range() -> None:
    v = np.array([[0.1, 0.2, 0.3]])
    losses = cosine_loss(v, v)
    assert losses[0] >= 0.0
    assert cosine_loss(v, -v)[0] <= 2.0


def test_huge_and_tiny_magnitudes_are_scaled_before_squaring() -> None:
    base_l = np.array([[1.0, 2.0, -1.0]])
    base_p = np.array([[3.0, 1.0, 1.0]])
    expected = reference_losses(base_l, base_p, axis=1)
    for scale in (1e200, 1e300, 1e-3):
        np.testing.assert_allclose(cosine_loss(base_l * scale, base_p * scale), expected, atol=1e-12)
    # Below sqrt(eps) TF's l2_normalize divides by sqrt(eps): tiny vectors give ~1.
    assert cosine_loss(base_l * 1e-300, base_p * 1e-300)[0] == pytest.approx(1.0)
    # With eps=0 direction alone counts, even for subnormal-adjacent magnitudes.
    np.testing.assert_allclose(cosine_loss(base_l * 1e-300, base_p * 1e-300, eps=0.0), expected, atol=1e-12)


def test_integer_inputs_do_not_overflow_in_their_own_type() -> None:
    labels = np.array([[30000, 30000, 30000]], dtype=np.int16)  # 30000**2 overflows int16 and int32 sums
    predictions = np.array([[30000, -30000, 30000]], dtype=np.int16)
    np.testing.assert_allclose(cosine_loss(labels, predictions), reference_losses(labels, predictions, 1), atol=1e-12)


def test_float16_with_zero_rows_has_no_nan() -> None:
    labels = np.zeros((3, 8), dtype=np.float16)
    predictions = np.ones((3, 8), dtype=np.float16)
    losses = cosine_loss(labels, predictions)
    assert not np.isnan(losses).any()
    np.testing.assert_array_equal(losses, [1.0, 1.0, 1.0])


def test_non_finite_inputs_give_nan_losses_and_are_flagged() -> None:
    labels = np.array([[1.0, np.nan], [1.0, 2.0], [np.inf, 1.0]])
    predictions = np.ones((3, 2))
    sums = block_sums(labels, predictions, 1)
    np.testing.assert_array_equal(sums.nonfinite, [True, False, True])
    losses = losses_from_sums(sums)
    assert np.isnan(losses[0]) and np.isnan(losses[2]) and np.isfinite(losses[1])


def test_merging_blocks_along_the_axis_equals_one_pass() -> None:
    rng = np.random.default_rng(1)
    labels = rng.normal(size=(40, 5))
    predictions = rng.normal(size=(40, 5))
    labels[10:20, 2] *= 1e250  # one block takes the scaled path
    predictions[:, 3] = 0.0
    predictions[30:, 3] = 1e-170
    whole = losses_from_sums(block_sums(labels, predictions, 0))
    merged = block_sums(labels[:10], predictions[:10], 0)
    for start in range(10, 40, 10):
        merged = merged.merge(block_sums(labels[start : start + 10], predictions[start : start + 10], 0))
    np.testing.assert_allclose(losses_from_sums(merged), whole, rtol=0, atol=1e-12)


def test_validation_errors_name_the_problem() -> None:
    with pytest.raises(ShapeMismatchError, match=r"labels \(2, 3\), predictions \(2, 4\)"):
        cosine_loss(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(InputUsageError, match="axis 2 is out of range for 2-D data"):
        cosine_loss(np.ones((2, 3)), np.ones((2, 3)), axis=2)
    with pytest.raises(DataError, match="complex"):
        cosine_loss(np.ones((2, 3), dtype=complex), np.ones((2, 3), dtype=complex))
    with pytest.raises(DataError, match="not numbers"):
        cosine_loss(np.array([["a", "b"]]), np.array([["c", "d"]]))
    with pytest.raises(ParameterError, match="eps"):
        cosine_loss(np.ones((1, 2)), np.ones((1, 2)), eps=-1.0)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"reduction": "sum"}, "reduction must be one of 'none', 'mean', not 'sum'"),
        ({"eps": math.nan}, "eps must be a finite number >= 0"),
        ({"eps": "1e-12"}, "eps must be a finite number >= 0"),
        ({"normalize": "false"}, "normalize must be True or False"),
        ({"axis": 1.0}, "axis must be an integer"),
    ],
)
def test_parameters_are_checked_before_any_arithmetic(keywords: dict, message: str, monkeypatch) -> None:
    import cosloss_cli.core.cosine as core

    monkeypatch.setattr(core, "block_sums", lambda *a: pytest.fail("computed before validating"))
    with pytest.raises(ParameterError, match=message):
        cosine_loss(np.ones((1, 2)), np.ones((1, 2)), **keywords)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"nan_policy": "bogus"}, "nan_policy must be one of 'raise', 'omit', 'propagate', not 'bogus'"),
        ({"eps": -1.0}, "eps must be a finite number >= 0"),
        ({"threads": 0}, "threads must be an integer >= 1"),
    ],
)
def test_compute_files_refuses_bad_options_before_reading(tmp_path, options: dict, message: str) -> None:
    from cosloss_cli.pipeline.compute import compute_files
    from cosloss_cli.pipeline.result import ComputeOptions

    path = tmp_path / "a.npy"
    np.save(path, np.array([[1.0, np.nan], [1.0, 2.0]]))  # "bogus" once behaved like "propagate" here
    with pytest.raises(ParameterError, match=message):
        compute_files(str(path), str(path), None, ComputeOptions(**options))


def test_parameter_errors_are_usage_errors_exit_2() -> None:
    from cosloss_cli.status import ExitStatus

    assert issubclass(ParameterError, UsageError) and issubclass(InputUsageError, UsageError)
    assert ParameterError("x").exit_status == ExitStatus.USAGE_ERROR


def test_nan_policies_are_the_literal_type() -> None:
    import typing

    from cosloss_cli.core.params import NAN_POLICIES
    from cosloss_cli.pipeline.result import ComputeOptions

    assert NAN_POLICIES == typing.get_args(typing.get_type_hints(ComputeOptions)["nan_policy"])


def test_summary_statistics() -> None:
    summary = summarize(np.array([0.5, 0.1, 0.3, 0.9]), zero_vectors=2, omitted=1)
    assert (summary.count, summary.zero_vectors, summary.omitted) == (4, 2, 1)
    assert summary.mean == pytest.approx(0.45)
    assert summary.median == pytest.approx(0.4)
    assert summary.std == pytest.approx(np.std([0.5, 0.1, 0.3, 0.9]))
    assert (summary.min, summary.max) == (0.1, 0.9)
    empty = summarize(np.array([]))
    assert empty.count == 0 and math.isnan(empty.mean)


# --- property tests (hypothesis) -------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def array_pairs(draw: st.DrawFn, dtypes=(np.float64, np.float32, np.float16, np.int32)) -> tuple:
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6))
    axis = draw(st.integers(min_value=-len(shape), max_value=len(shape) - 1))
    if np.dtype(dtype).kind == "i":
        elements = st.integers(min_value=-1000, max_value=1000)
    elif dtype == np.float16:
        elements = st.floats(min_value=-100, max_value=100, width=16)
    else:
        elements = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=np.dtype(dtype).itemsize * 8)
    labels = draw(hnp.arrays(dtype, shape, elements=elements))
    predictions = draw(hnp.arrays(dtype, shape, elements=elements))
    return labels, predictions, axis


settings_fast = property_settings(150)


@settings_fast
@given(array_pairs())
def test_property_equals_float64_reference(pair: tuple) -> None:
    labels, predictions, axis = pair
    losses = cosine_loss(labels, predictions, axis=axis)
    expected = reference_losses(labels, predictions, axis)
    assert losses.shape == expected.shape
    np.testing.assert_allclose(losses, expected, rtol=0, atol=1e-9)


@settings_fast
@given(array_pairs())
def test_property_range_and_symmetry(pair: tuple) -> None:
    labels, predictions, axis = pair
    losses = cosine_loss(labels, predictions, axis=axis)
    assert np.all((losses >= 0.0) & (losses <= 2.0))
    np.testing.assert_allclose(cosine_loss(predictions, labels, axis=axis), losses, rtol=0, atol=1e-12)


@settings_fast
@given(array_pairs(dtypes=(np.float64,)), st.floats(min_value=1e-3, max_value=1e3), st.floats(1e-3, 1e3))
def test_property_invariant_to_positive_scaling(pair: tuple, a: float, b: float) -> None:
    labels, predictions, axis = pair
    # Scaling invariance holds while both norms stay above sqrt(eps).
    norms_ok = (np.sqrt(np.sum(labels.astype(np.float64) ** 2, axis=axis)) * min(a, 1) > 1e-5) & (
        np.sqrt(np.sum(predictions.astype(np.float64) ** 2, axis=axis)) * min(b, 1) > 1e-5
    )
    base = cosine_loss(labels, predictions, axis=axis)
    scaled = cosine_loss(labels * a, predictions * b, axis=axis)
    np.testing.assert_allclose(scaled[norms_ok], base[norms_ok], rtol=0, atol=1e-9)


@settings_fast
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8), elements=finite))
def test_property_same_direction_is_zero_and_opposite_is_two(labels: np.ndarray) -> None:
    big_enough = np.sqrt(np.sum(labels**2, axis=1)) > 1e-3
    np.testing.assert_allclose(cosine_loss(labels, labels * 3.0)[big_enough], 0.0, atol=1e-9)
    np.testing.assert_allclose(cosine_loss(labels, labels * -2.0)[big_enough], 2.0, atol=1e-9)


@settings_fast
@given(array_pairs(dtypes=(np.float64,)), st.integers(min_value=1, max_value=5))
def test_property_blocks_merge_like_one_pass(pair: tuple, pieces: int) -> None:
    labels, predictions, axis = pair
    labels = np.moveaxis(labels, axis, 0)
    predictions = np.moveaxis(predictions, axis, 0)
    whole = losses_from_sums(block_sums(labels, predictions, 0))
    bounds = np.linspace(0, labels.shape[0], pieces + 1).astype(int)
    merged = None
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if stop > start:
            part = block_sums(labels[start:stop], predictions[start:stop], 0)
            merged = part if merged is None else merged.merge(part)
    assert merged is not None
    np.testing.assert_allclose(losses_from_sums(merged), whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("rows", [1, 2, 7, 128, 129, 1000, 4097])
def test_in_range_sums_and_summary_shortcuts_are_bit_identical(rows: int) -> None:
    """The small-pair shortcuts (in-range sums, summary without numpy's wrappers) change no bit."""
    from cosloss_cli.core import cosine as core

    rng = np.random.default_rng(rows)
    for dtype in (np.float32, np.float64):
        labels = rng.standard_normal((rows, 64)).astype(dtype)
        predictions = (labels + rng.standard_normal((rows, 64))).astype(dtype)
        sums = core.block_sums(labels, predictions, 1)
        assert sums.in_range
        for eps in (1e-12, 0.5):
            fast = core.losses_from_sums(sums, eps=eps)
            general = core.losses_from_sums(sums._replace(in_range=False), eps=eps)
            assert fast.dtype == general.dtype and fast.shape == general.shape
            assert fast.tobytes() == general.tobytes()
        summary = core.summarize(fast)
        assert summary.mean == float(np.mean(fast)) and summary.std == float(np.std(fast))
        assert (summary.min, summary.max) == (float(np.min(fast)), float(np.max(fast)))
        assert summary.median == float(np.median(fast))
    hostile = rng.standard_normal((6, 4))
    hostile[1] = 0.0
    hostile[2, 1] = np.nan
    hostile[3] *= 1e200
    assert not core.block_sums(hostile, hostile[::-1].copy(), 1).in_range
    with_nan = np.array([0.5, np.nan, 0.25])
    assert all(math.isnan(v) for v in core.summarize(with_nan)[1:6])
