"""The C kernel and its numpy twin are whole: the same functions, run through both.

Every function the C module exports is in :mod:`cosloss_cli.core._fallback` and in the
:class:`cosloss_cli.core.cosine.Kernel` protocol (mypy checks both modules against it); here
each is run through both on the same inputs. The sums may differ in their last bits
(another order of float64 additions); ``in_range``, ``in_range_losses`` and ``fsum`` must
give the same bits, and misuse the same kind of error.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.core import _fallback
from cosloss_cli.core import cosine as core

from .conftest import property_settings

native = core._native
pytestmark = pytest.mark.skipif(native is None, reason="the C kernel is not built here (no C compiler at install)")

PROPERTY = property_settings(60)
TWINS = pytest.mark.parametrize("kernel", ["native", "twin"])


def kernel_of(name: str) -> core.Kernel:
    return native if name == "native" else _fallback  # type: ignore[return-value]


def public(module: object) -> set[str]:
    return {name for name in dir(module) if not name.startswith("_") and callable(getattr(module, name))}


def test_both_export_the_protocols_functions() -> None:
    protocol = {name for name, _ in inspect.getmembers(core.Kernel, inspect.isfunction) if not name.startswith("_")}
    assert protocol == {"row_sums", "row_sums_at", "column_sums", "in_range", "in_range_losses", "fsum"}
    assert public(native) == protocol
    assert public(_fallback) - {"annotations"} == protocol


def random_pair(rng: np.random.Generator, rows: int, width: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(rows, width)).astype(dtype), rng.normal(size=(rows, width)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_column_and_gathered_sums_agree(dtype: type) -> None:
    rng = np.random.default_rng(1)
    a, b = random_pair(rng, 37, 19, dtype)
    rows = rng.permutation(37)
    results = {}
    for name in ("native", "twin"):
        kernel = kernel_of(name)
        out = [np.empty(37) for _ in range(3)]
        kernel.row_sums(a, b, *out)
        at = [np.empty(37) for _ in range(3)]
        kernel.row_sums_at(a, b, rows, *at)
        columns = [np.zeros(19) for _ in range(3)]
        kernel.column_sums(a, b, *columns)
        results[name] = (out, at, columns)
    for got, want in zip(results["native"], results["twin"], strict=True):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-12)
    reference = [np.empty(37) for _ in range(3)]
    _fallback.row_sums(a, b[rows], *reference)
    for g, w in zip(results["twin"][1], reference, strict=True):
        np.testing.assert_array_equal(g, w)


finite = st.floats(-1e6, 1e6, allow_nan=False, width=64)
special = st.sampled_from([0.0, 1e-250, 1e305, math.inf, -math.inf, math.nan, -0.0, 5e-324])


@PROPERTY
@given(
    st.lists(st.tuples(st.one_of(finite, special), st.one_of(finite, special), st.one_of(finite, special)), max_size=40)
)
def test_in_range_and_its_losses_give_the_same_bits(triples: list[tuple[float, float, float]]) -> None:
    dot, ll, pp = (
        (np.array(column, dtype=np.float64) for column in zip(*triples, strict=True))
        if triples
        else (
            np.empty(0),
            np.empty(0),
            np.empty(0),
        )
    )
    ll, pp = np.abs(ll), np.abs(pp)
    assert native.in_range(dot, ll, pp, 1e-200, 1e300) == _fallback.in_range(dot, ll, pp, 1e-200, 1e300)
    out_native, out_twin = np.empty(dot.size), np.empty(dot.size)
    native.in_range_losses(dot, ll, pp, 1e-6, out_native)
    _fallback.in_range_losses(dot, ll, pp, 1e-6, out_twin)
    np.testing.assert_array_equal(out_native.view(np.int64), out_twin.view(np.int64))


@PROPERTY
@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False), special), max_size=60))
def test_fsum_gives_math_fsums_answer_or_none_on_both(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    a, b = native.fsum(array), _fallback.fsum(array)
    if a is not None and b is not None:
        assert a == b == math.fsum(values)
    else:
        # None means "ask math.fsum": for NaN, infinities and overflow; the twin may also say None there
        assert not all(math.isfinite(v) for v in values) or a is None or b is None


@TWINS
def test_misuse_is_refused_by_both(kernel: str) -> None:
    k = kernel_of(kernel)
    a = np.ones((3, 2))
    out = [np.empty(3) for _ in range(3)]
    with pytest.raises((IndexError, ValueError)):
        k.row_sums_at(a, a, np.array([0, 1, 5]), *out)
    with pytest.raises((IndexError, ValueError)):
        k.row_sums_at(a, a, np.array([0, 1]), *out)
