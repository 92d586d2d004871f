"""The C kernel (cosloss_cli/core/_kernel.c) against an exact reference and the numpy path.

The kernel is optional (built where a C compiler exists); these tests skip, saying
so, where it was not built. Everything else in the suite runs on both paths through
the ``each_kernel`` fixture.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.core import cosine as core

from .conftest import property_settings

native = core._native
pytestmark = pytest.mark.skipif(native is None, reason="the C kernel is not built here (no C compiler at install)")

PROPERTY = property_settings(150)
DTYPES = (np.float32, np.float64)


def test_the_kernel_was_built_from_this_source() -> None:
    """A kernel built from an older ``_kernel.c`` (copied from another checkout, or not rebuilt) is noticed.

    Every other test of it, and every timing, would otherwise run the old code.
    """
    source = Path(core.__file__).with_name("_kernel.c").read_bytes()
    assert native is not None
    assert getattr(native, "SOURCE", None) == hashlib.sha256(source).hexdigest(), (
        "the C kernel was built from another version of _kernel.c: rebuild it (make, or "
        "python setup.py build_ext --inplace)"
    )


def exact_sum(terms: np.ndarray) -> float:
    """The correctly rounded float64 sum of products given as float64 (exact for float32 inputs)."""
    return float(sum((Fraction(float(t)) for t in terms), Fraction(0)))


def exact_three(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    af = [Fraction(float(x)) for x in a]
    bf = [Fraction(float(x)) for x in b]
    return (
        float(sum((x * y for x, y in zip(af, bf, strict=True)), Fraction(0))),
        float(sum((x * x for x in af), Fraction(0))),
        float(sum((y * y for y in bf), Fraction(0))),
    )


def native_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = tuple(np.full(a.shape[0], np.nan) for _ in range(3))
    native.row_sums(a, b, *out)
    return out  # type: ignore[return-value]


def native_columns(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = tuple(np.zeros(a.shape[1]) for _ in range(3))
    native.column_sums(a, b, *out)
    return out  # type: ignore[return-value]


def bound(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """A float64 summation error bound: n * eps * sum(|terms|), per vector."""
    n = a.shape[axis]
    mag = np.abs(a.astype(np.float64)) + np.abs(b.astype(np.float64))
    return 2 * n * np.finfo(np.float64).eps * np.sum(mag * mag, axis=axis) + 1e-300


@st.composite
def blocks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two 2-D blocks of float32/float64 (each its own dtype), rows maybe strided or sliced."""
    rows = draw(st.integers(1, 12))
    width = draw(st.integers(1, 40))  # below, at and above the 8-wide unrolled step
    arrays = []
    for _ in range(2):
        dtype = draw(st.sampled_from(DTYPES))
        seed = draw(st.integers(0, 2**32 - 1))
        scale = 10.0 ** draw(st.integers(-3, 3))
        rng = np.random.default_rng(seed)
        full = (rng.standard_normal((rows * 2, width + 3)) * scale).astype(dtype)
        layout = draw(st.sampled_from(["contiguous", "every other row", "column slice"]))
        if layout == "every other row":
            arrays.append(full[::2, :width])
        elif layout == "column slice":
            arrays.append(full[:rows, 3:])
        else:
            arrays.append(np.ascontiguousarray(full[:rows, :width]))
    return arrays[0], arrays[1]


@pytest.mark.parametrize("axis", [1, 0], ids=["rows", "columns"])
@PROPERTY
@given(pair=blocks())
def test_property_sums_are_float64_sums(axis: int, pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    sums = native_rows(a, b) if axis == 1 else native_columns(a, b)
    tolerance = bound(a, b, axis=axis)
    for k in range(a.shape[1 - axis]):
        vectors = (a[k], b[k]) if axis == 1 else (a[:, k], b[:, k])
        for got, exact in zip((s[k] for s in sums), exact_three(*vectors), strict=True):
            assert abs(got - exact) <= tolerance[k]


@PROPERTY
@given(blocks(), st.integers(0, 11))
def test_property_a_row_does_not_depend_on_its_block(pair: tuple[np.ndarray, np.ndarray], cut: int) -> None:
    """Same bits whether a row is summed in a large block or a small one (threads, block sizes)."""
    a, b = pair
    cut = min(cut, a.shape[0])
    whole = native_rows(a, b)
    parts = [native_rows(a[:cut], b[:cut]), native_rows(a[cut:], b[cut:])]
    for k in range(3):
        assert np.array_equal(whole[k], np.concatenate([parts[0][k], parts[1][k]]))


@PROPERTY
@given(blocks())
def test_property_losses_agree_with_the_numpy_path(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    with_kernel = core.losses_from_sums(core.block_sums(a, b, 1))
    saved, core._native = core._native, None
    try:
        without = core.losses_from_sums(core.block_sums(a, b, 1))
    finally:
        core._native = saved
    np.testing.assert_allclose(with_kernel, without, rtol=0, atol=1e-12)


def test_float32_products_are_exact_in_the_kernel() -> None:
    """float32 x float32 fits in a double: a cancelling dot product comes out exactly."""
    a = np.array([[16777217.0, 1.0, -16777216.0]], dtype=np.float64).astype(np.float32)
    b = np.array([[16777215.0, 3.0, 16777215.0]], dtype=np.float32)
    dot, _, _ = native_rows(a, b)
    assert dot[0] == exact_sum(a[0].astype(np.float64) * b[0].astype(np.float64))


def test_non_finite_values_come_out_non_finite() -> None:
    a = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 1.0]], dtype=np.float32)
    b = np.ones((2, 3), dtype=np.float32)
    dot, ll, pp = native_rows(a, b)
    assert math.isnan(dot[0]) and math.isnan(ll[0]) and pp[0] == 3.0
    assert math.isinf(dot[1]) and math.isinf(ll[1])


@pytest.mark.parametrize(
    ("labels", "predictions", "outputs", "error"),
    [
        (np.ones((2, 3), np.int32), np.ones((2, 3), np.float32), 2, TypeError),
        (np.ones((2, 3), np.float16), np.ones((2, 3), np.float16), 2, TypeError),
        (np.ones(3, np.float32), np.ones(3, np.float32), 1, ValueError),
        (np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), 2, ValueError),
        (np.ones((2, 3), np.float32, order="F"), np.ones((2, 3), np.float32), 2, ValueError),
        (np.ones((4, 6), np.float32)[::2, ::2], np.ones((2, 3), np.float32)[::1, ::1], 2, ValueError),
        (np.ones((2, 3), np.float32, order="F")[:, ::-1], np.ones((2, 3), np.float32, order="F"), 2, ValueError),
        (np.ones((2, 3), np.float32), np.ones((2, 3), np.float32), 3, ValueError),
        (np.ones((2, 3), np.float32)[::-1], np.ones((2, 3), np.float32), 2, ValueError),
    ],
    ids=[
        "int32",
        "float16",
        "1-D",
        "shapes differ",
        "one column-major, one row-major",
        "neither rows nor columns contiguous",
        "backwards columns",
        "output length",
        "backwards rows",
    ],
)
def test_misuse_raises_instead_of_reading_out_of_bounds(labels, predictions, outputs, error) -> None:
    out = [np.zeros(outputs) for _ in range(3)]
    with pytest.raises(error):
        native.row_sums(labels, predictions, *out)


def test_column_sums_read_rows_only() -> None:
    a = np.ones((2, 3), np.float32, order="F")
    with pytest.raises(ValueError, match="contiguous rows"):
        native.column_sums(a, a, *(np.zeros(3) for _ in range(3)))


@st.composite
def column_major_blocks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two column-major blocks (as Parquet and CSV columns arrive), maybe row slices of larger ones.

    Up to 600 rows: more than one tile of rows in the kernel's column loop.
    """
    rows = draw(st.integers(1, 600))
    width = draw(st.integers(1, 40))
    first = draw(st.integers(0, 3))
    arrays = []
    for _ in range(2):
        dtype = draw(st.sampled_from(DTYPES))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        scale = 10.0 ** draw(st.integers(-3, 3))
        full = np.asfortranarray((rng.standard_normal((rows + first, width)) * scale).astype(dtype))
        arrays.append(full[first:])
    return arrays[0], arrays[1]


@PROPERTY
@given(column_major_blocks())
def test_property_column_major_rows_give_the_same_bits(pair: tuple[np.ndarray, np.ndarray]) -> None:
    """Parquet/CSV blocks are summed down their columns, with the same additions as row-major blocks."""
    a, b = pair
    by_columns = native_rows(a, b)
    by_rows = native_rows(np.ascontiguousarray(a), np.ascontiguousarray(b))
    for k in range(3):
        assert np.array_equal(by_columns[k], by_rows[k], equal_nan=True)


def test_column_major_sums_are_float64_sums() -> None:
    rng = np.random.default_rng(7)
    a = np.asfortranarray(rng.standard_normal((300, 19), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((300, 19)))
    sums = native_rows(a, b)
    tolerance = bound(a, b, axis=1)
    for k in range(a.shape[0]):
        for got, exact in zip((s[k] for s in sums), exact_three(a[k], b[k]), strict=True):
            assert abs(got - exact) <= tolerance[k]


def test_outputs_must_be_writable_float64() -> None:
    a = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError):
        native.row_sums(a, a, np.zeros(2, np.float32), np.zeros(2), np.zeros(2))
    read_only = np.zeros(2)
    read_only.flags.writeable = False
    with pytest.raises((TypeError, BufferError, ValueError)):
        native.row_sums(a, a, read_only, np.zeros(2), np.zeros(2))


def test_cosloss_native_0_selects_the_numpy_path() -> None:
    code = "from cosloss_cli.core import cosine as core; print(core.native_kernel_in_use())"
    env = {**os.environ, "COSLOSS_NATIVE": "0"}
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (off.stdout.strip(), on.stdout.strip()) == ("False", "True")


def test_a_kernel_built_before_a_function_was_renamed_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale build (its source changed since) leaves the sums to the numpy twin instead of failing."""
    import types

    stale = types.ModuleType("cosloss_cli.core._kernel")
    for name in core.KERNEL_FUNCTIONS[:-1]:
        setattr(stale, name, getattr(native, name))
    monkeypatch.setitem(sys.modules, "cosloss_cli.core._kernel", stale)
    monkeypatch.setattr(sys.modules["cosloss_cli.core"], "_kernel", stale)
    assert core._load_native() is None
    setattr(stale, core.KERNEL_FUNCTIONS[-1], getattr(native, core.KERNEL_FUNCTIONS[-1]))
    assert core._load_native() is stale


# -- fsum: batch's exact per-pair sums -------------------------------------------------------


def _math_fsum(values: list[float]) -> float | str:
    try:
        return math.fsum(values)
    except (OverflowError, ValueError) as exc:
        return type(exc).__name__


@PROPERTY
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.floats(-2.0, 2.0),
            st.sampled_from([1e-16, 1.0, 1e16, -1e16, 2.0**-1074, 1e308, -0.0, 0.0]),
        ),
        max_size=60,
    )
)
def test_property_fsum_is_math_fsum(values: list[float]) -> None:
    """A correctly rounded sum is unique: the kernel's must be math.fsum's bit for bit, or None."""
    found = native.fsum(np.array(values, dtype=np.float64))
    if found is None:  # overflow or too many partials: math.fsum decides
        return
    expected = math.fsum(values)
    assert (found, math.copysign(1.0, found)) == (expected, math.copysign(1.0, expected))


@pytest.mark.parametrize(
    "values",
    [[math.nan, 1.0], [math.inf, 1.0], [math.inf, -math.inf], [1e308, 1e308, -1e308]],
    ids=["nan", "inf", "inf-minus-inf", "overflow"],
)
def test_fsum_leaves_special_values_to_math_fsum(values: list[float]) -> None:
    assert native.fsum(np.array(values)) is None
    expected = _math_fsum(values)
    try:
        found: float | str = core.exact_sum(np.array(values))
    except (OverflowError, ValueError) as exc:
        found = type(exc).__name__
    assert found == expected or (found != found and expected != expected)  # NaN == NaN here


def test_exact_sum_is_math_fsum_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(3).random(1001) * 2
    with_kernel = core.exact_sum(values[::2])  # a strided view is made contiguous first
    monkeypatch.setattr(core, "_native", None)
    assert with_kernel == core.exact_sum(values[::2]) == math.fsum(values[::2].tolist())


def test_fsum_refuses_what_is_not_contiguous_float64() -> None:
    with pytest.raises(TypeError):
        native.fsum(np.ones(3, dtype=np.float32))
    with pytest.raises((TypeError, ValueError, BufferError)):
        native.fsum(np.ones(6)[::2])


# -- in_range / in_range_losses: a small pair's losses in one pass ---------------------------------


@PROPERTY
@given(
    pair=blocks(),
    spoil=st.sampled_from(["none", "nan", "zero", "tiny", "huge"]),
    root_eps=st.sampled_from([1e-6, 1.0, 1e-150]),
)
def test_property_in_range_and_its_losses_are_the_numpy_steps(
    pair: tuple[np.ndarray, np.ndarray], spoil: str, root_eps: float
) -> None:
    """The kernel's test of the in-range case and its losses against core's numpy steps, to the bit."""
    labels, predictions = (np.array(a, dtype=np.float64) for a in pair)
    if spoil != "none" and labels.size:
        labels[0] = {"nan": np.nan, "zero": 0.0, "tiny": 1e-170, "huge": 1e170}[spoil]
    dot, ll, pp = core._three_sums(labels, predictions, 1)
    with_kernel = core._in_range(dot, ll, pp)
    losses = core._in_range_losses(dot, ll, pp, root_eps) if with_kernel else None
    core._native = None
    try:
        assert with_kernel == core._in_range(dot, ll, pp)
        expected = core._in_range_losses(dot, ll, pp, root_eps) if losses is not None else None
    finally:
        core._native = native
    if losses is not None and expected is not None:
        assert losses.dtype == expected.dtype and losses.shape == expected.shape
        assert losses.tobytes() == expected.tobytes()


def test_in_range_helpers_refuse_what_they_cannot_read() -> None:
    ones = np.ones(4)
    with pytest.raises(TypeError):
        native.in_range(ones.astype(np.float32), ones, ones, 1e-200, 1e300)
    with pytest.raises(ValueError):
        native.in_range(ones, ones[:3], ones, 1e-200, 1e300)
    with pytest.raises((TypeError, ValueError, BufferError)):
        native.in_range_losses(ones, ones, ones, 1e-6, np.ones(8)[::2])
    read_only = np.ones(4)
    read_only.flags.writeable = False
    with pytest.raises((TypeError, ValueError, BufferError)):
        native.in_range_losses(ones, ones, ones, 1e-6, read_only)


@PROPERTY
@given(blocks(), st.integers(0, 2**32 - 1))
def test_property_rows_read_in_place_give_the_gathered_rows_bits(
    pair: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    """row_sums_at(a, b, rows) is row_sums(a, b[rows]) to the bit: a join reads its partners in place."""
    a, b = pair
    if b.strides[1] != b.itemsize:  # row_sums_at reads row-major predictions only
        b = np.ascontiguousarray(b)
    rows = np.random.default_rng(seed).integers(0, b.shape[0], a.shape[0]).astype(np.intp)
    expected = native_rows(a, np.ascontiguousarray(b[rows]))
    got = tuple(np.full(a.shape[0], np.nan) for _ in range(3))
    native.row_sums_at(a, b, rows, *got)
    for one, other in zip(expected, got, strict=True):
        assert np.array_equal(one, other)


@pytest.mark.parametrize(
    ("rows", "error", "match"),
    [
        (np.array([0, 4], dtype=np.intp), IndexError, "row 4 is out of range for 4 predictions"),
        (np.array([0, -1], dtype=np.intp), IndexError, "row -1 is out of range"),
        (np.array([0, 1], dtype=np.int32), TypeError, "rows must be intp"),
        (np.array([0.0, 1.0]), TypeError, "rows must be intp"),
        (np.array([0, 1, 2], dtype=np.intp), ValueError, "length 2"),
        (np.array([0, 0, 1, 1], dtype=np.intp)[::2], ValueError, "contiguous"),
    ],
    ids=["past the end", "negative", "int32", "float", "length", "strided"],
)
def test_rows_read_in_place_are_checked_before_any_is_read(rows: np.ndarray, error: type, match: str) -> None:
    out = [np.zeros(2) for _ in range(3)]
    with pytest.raises(error, match=match):
        native.row_sums_at(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), rows, *out)


@pytest.mark.parametrize("spoil", ["none", "nan", "huge", "tiny", "zero"])
def test_block_sums_of_rows_in_place_are_those_of_the_gathered_rows(spoil: str) -> None:
    """Including the rows the in-range path cannot take (rescaled from the gathered rows) and the numpy path."""
    rng = np.random.default_rng(7)
    labels = rng.standard_normal((40, 19)).astype(np.float32)
    predictions = rng.standard_normal((60, 19))
    predictions[13] = {"none": predictions[13], "nan": np.nan, "huge": 1e200, "tiny": 1e-200, "zero": 0.0}[spoil]
    rows = rng.permutation(60)[:40].astype(np.intp)
    rows[5] = 13
    for native_path in (True, False):
        saved = core._native
        core._native = saved if native_path else None
        try:
            gathered = core.block_sums(labels, predictions[rows], 1)
            in_place = core.block_sums(labels, predictions, 1, rows)
        finally:
            core._native = saved
        for field in ("dot", "ll", "pp", "scale_l", "scale_p", "nonfinite"):
            np.testing.assert_array_equal(getattr(gathered, field), getattr(in_place, field), err_msg=field)
        assert gathered.in_range == in_place.in_range == (spoil == "none")
