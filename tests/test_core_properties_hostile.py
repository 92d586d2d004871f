"""Property tests of the core on hostile numbers: random shapes, axes, dtypes and magnitudes.

The reference is exact: the three sums in :class:`fractions.Fraction`, the square root
taken once, on the ratio ``cos^2`` (which lies in [0, 1] whatever the magnitudes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.core.cosine import DEFAULT_EPS, Sums, block_sums, losses_from_sums, summarize
from cosloss_cli.io.frames import cosine_loss

from .conftest import property_settings
from .oracle import reference_losses

#: Every test here runs on the C kernel and on the numpy fallback.
pytestmark = pytest.mark.usefixtures("each_kernel")

PROPERTY = property_settings(60)


DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64", "bool"]


@st.composite
def hostile_pairs(draw: st.DrawFn, dtypes: list[str] = DTYPES) -> tuple[np.ndarray, np.ndarray, int]:
    """Two arrays of one random shape and dtype, with vectors of wildly different magnitudes."""
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    size = math.prod(shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arrays = []
    for _ in range(2):
        if dtype.kind == "f":
            info = np.finfo(dtype)
            mantissa = rng.uniform(-1, 1, size) * rng.choice([0.0, 1.0], size, p=[0.2, 0.8])
            low, high = math.log10(float(info.smallest_subnormal)), math.log10(float(info.max)) - 0.01
            exponent = rng.uniform(low, high, size)
            if draw(st.booleans()):  # one magnitude per array: huge or tiny whole vectors
                exponent[:] = exponent[0]
            values = (mantissa * 10.0**exponent).astype(dtype)
        elif dtype.kind == "b":
            values = rng.integers(0, 2, size).astype(bool)
        else:
            info = np.iinfo(dtype)
            extremes = np.array([info.min, info.max, 0, 1, info.min + 1 if info.min else 2], dtype=dtype)
            values = np.where(
                rng.random(size) < 0.5,
                rng.choice(extremes, size),
                rng.integers(info.min, info.max, size, dtype=dtype, endpoint=True),
            ).astype(dtype)
        arrays.append(values.reshape(shape))
    if draw(st.booleans()):
        arrays[1] = arrays[0].copy()  # identical vectors: loss 0
    return arrays[0], arrays[1], axis


@PROPERTY
@given(hostile_pairs(), st.sampled_from([DEFAULT_EPS, 0.0, 1e-300, 1e-6]))
def test_property_hostile_magnitudes_match_exact_reference(pair: tuple, eps: float) -> None:
    labels, predictions, axis = pair
    got = cosine_loss(labels, predictions, axis=axis, eps=eps)
    expected = reference_losses(labels, predictions, axis, eps)
    assert isinstance(got, np.ndarray) and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, equal_nan=True)
    assert np.all((got >= 0) & (got <= 2) | np.isnan(got))


@PROPERTY
@given(hostile_pairs(dtypes=["float64", "float32", "float16"]))
def test_property_nonfinite_gives_nan_exactly_where_expected(pair: tuple) -> None:
    labels, predictions, axis = pair
    labels = labels.astype(np.float64)
    flat = labels.reshape(-1)
    rng = np.random.default_rng(flat.size)
    for index in rng.choice(flat.size, size=min(2, flat.size), replace=False):
        flat[index] = rng.choice([np.nan, np.inf, -np.inf])
    got = cosine_loss(labels, predictions, axis=axis)
    bad = ~np.isfinite(labels).all(axis=axis) | ~np.isfinite(predictions.astype(np.float64)).all(axis=axis)
    assert isinstance(got, np.ndarray)
    assert np.array_equal(np.isnan(got), bad)
    sums = block_sums(labels, predictions, axis % labels.ndim)
    assert np.array_equal(sums.nonfinite, bad)
    assert not (sums.zero_vectors() & bad).any()


@PROPERTY
@given(hostile_pairs(dtypes=["float64", "float32", "int64"]), st.integers(1, 6), st.sampled_from([DEFAULT_EPS, 0.0]))
def test_property_blocks_along_the_axis_merge_to_the_exact_result(pair: tuple, pieces: int, eps: float) -> None:
    """Streaming along axis 0 (``--axis 0``): blocks of wildly different scale merge exactly."""
    labels, predictions, _ = pair
    cuts = np.linspace(0, labels.shape[0], min(pieces, labels.shape[0]) + 1).astype(int)
    merged: Sums | None = None
    for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
        sums = block_sums(labels[start:stop], predictions[start:stop], 0)
        merged = sums if merged is None else merged.merge(sums)
    assert merged is not None
    got = losses_from_sums(merged, eps=eps)
    np.testing.assert_allclose(got, reference_losses(labels, predictions, 0, eps), rtol=0, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("exponent", [-320, -310, -300, -200, -160, -154, -100, 0, 100, 154, 200, 300, 307])
def test_property_every_decade_of_magnitude(exponent: int) -> None:
    """Deterministic sweep: the scaled and unscaled paths meet without a seam."""
    rng = np.random.default_rng(exponent + 1000)
    base_l = rng.uniform(-1, 1, (20, 7))
    base_p = rng.uniform(-1, 1, (20, 7))
    scale = 10.0**exponent if exponent > -308 else 5e-324 * 10.0 ** (exponent + 324)
    labels, predictions = base_l * scale, base_p * scale
    for eps in (0.0, DEFAULT_EPS):
        got = cosine_loss(labels, predictions, axis=1, eps=eps)
        np.testing.assert_allclose(got, reference_losses(labels, predictions, 1, eps), rtol=0, atol=1e-9)


def test_property_mixed_magnitudes_in_one_vector() -> None:
    labels = np.array([[1e300, 1e-300, 1.0], [1e-310, 1e-320, 0.0], [1e308, -1e308, 1e308]])
    predictions = np.array([[1e300, 1.0, 1e-300], [1e-320, 1e-310, 0.0], [1e308, 1e308, -1e308]])
    for eps in (0.0, DEFAULT_EPS):
        got = cosine_loss(labels, predictions, axis=1, eps=eps)
        np.testing.assert_allclose(got, reference_losses(labels, predictions, 1, eps), rtol=0, atol=1e-12)


def test_property_mean_of_nan_losses_is_nan_and_empty_summary() -> None:
    summary = summarize(np.array([0.5, np.nan]))
    assert math.isnan(summary.mean) and summary.count == 2
    empty = summarize(np.array([]))
    assert empty.count == 0 and math.isnan(empty.mean)
