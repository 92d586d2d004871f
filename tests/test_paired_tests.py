"""cosloss_cli.stats.paired against scipy.stats: the paired t-test and Wilcoxon's test without importing it.

Every branch scipy's ``wilcoxon(method="auto")`` can take (exact, permutation, normal
approximation), the t-test's p-value and interval, and the degenerate cases are checked
against scipy.stats on the same differences to 1e-12; and ``compare`` is checked not to
import scipy.stats at all.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from cosloss_cli.stats.intervals import paired_comparison
from cosloss_cli.stats.paired import (
    EXACT_MAX_ROWS,
    PERMUTATION_MAX_ROWS,
    paired_t_test,
    signed_rank_p_value,
    wilcoxon_distribution,
)

from .conftest import property_settings


def scipy_wilcoxon(d: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(scipy_stats.wilcoxon(d).pvalue)


def assert_same(mine: float, scipys: float) -> None:
    """Equal to 1e-12 relative, or 1e-300 absolute for p-values that underflow; NaN as NaN."""
    if np.isnan(scipys):
        assert np.isnan(mine)
    else:
        assert mine == pytest.approx(scipys, rel=1e-12, abs=1e-300)


def assert_t_test_is_scipys(candidate: np.ndarray, baseline: np.ndarray, confidence: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = scipy_stats.ttest_rel(candidate, baseline)
        interval = expected.confidence_interval(confidence_level=confidence)
    mine = paired_t_test(candidate - baseline, confidence)
    assert_same(mine.statistic, float(expected.statistic))
    assert_same(mine.p_value, float(expected.pvalue))
    assert_same(mine.low, float(interval.low))
    assert_same(mine.high, float(interval.high))


#: Differences as losses give them: continuous, rounded (ties), with exact zeros, tiny or spread out.
#: Not 10-13 rows: there scipy's own permutation test takes seconds (the boundary test has 13).
differences = st.tuples(
    st.one_of(st.integers(1, 9), st.integers(14, 70)),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["normal", "rounded", "integers", "tiny", "cauchy"]),
).map(lambda spec: _differences(*spec))


def _differences(n: int, seed: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0.01, 0.1, n)
    if kind == "rounded":
        return np.round(rng.normal(0.01, 0.1, n), 1)
    if kind == "integers":
        return rng.integers(-3, 4, n).astype(np.float64) / 8
    if kind == "tiny":
        return rng.normal(1e-9, 1e-8, n)
    return rng.standard_cauchy(n)


@property_settings(80)
@given(differences, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_both_tests_are_scipys_on_any_differences(d: np.ndarray, confidence: float) -> None:
    baseline = np.linspace(0.2, 0.6, d.size)
    candidate = baseline + d
    d = candidate - baseline
    if d.size >= 2 and d.min() != d.max():
        assert_t_test_is_scipys(candidate, baseline, confidence)
    if np.count_nonzero(d):
        assert_same(signed_rank_p_value(d), scipy_wilcoxon(d))


@pytest.mark.parametrize(
    ("n", "kind"),
    [
        (n, kind)
        for n in (1, 2, 3, 9, PERMUTATION_MAX_ROWS + 1, EXACT_MAX_ROWS, EXACT_MAX_ROWS + 1, 400)
        for kind in ("distinct", "ties", "zeros", "ties and zeros")
    ]
    + [(PERMUTATION_MAX_ROWS, "distinct"), (PERMUTATION_MAX_ROWS, "ties and zeros")],
)
def test_wilcoxon_on_each_side_of_scipys_method_boundaries(n: int, kind: str) -> None:
    """Exact up to 50 distinct differences, a permutation test up to 13 with ties or zeros, else normal.

    (scipy's own permutation test of 13 differences takes a second or more: one case of it.)
    """
    rng = np.random.default_rng(n)
    d = rng.normal(0.05, 0.1, n)
    if "ties" in kind and n >= 2:
        d[: max(2, n // 3)] = d[0]
    if "zeros" in kind and n >= 2:
        d[-max(1, n // 4) :] = 0.0
    if not np.count_nonzero(d):
        d[0] = 0.5
    assert_same(signed_rank_p_value(d), scipy_wilcoxon(d))


@pytest.mark.parametrize(
    "d",
    [
        [0.5, 0.5],
        [-0.25] * 8,
        [0.1] * 7,
        [0.1] * 14,
        [0.1] * 60,
        [0.0, 0.3],
        [0.0, 0.0, 0.0, -0.2],
        [1e-300, -1e-300, 2e-300],
        [-0.0, 0.4, -0.4, 0.4],
        [3.0, -1.0, -2.0, 3.0, 3.0, -3.0],
    ],
)
def test_wilcoxon_degenerate_differences(d: list[float]) -> None:
    """All equal, a lone non-zero, signed zeros, subnormal values, ties across signs."""
    array = np.asarray(d, dtype=np.float64)
    assert_same(signed_rank_p_value(array), scipy_wilcoxon(array))


def test_wilcoxon_of_nothing_is_nan_as_scipys() -> None:
    assert np.isnan(signed_rank_p_value(np.array([], dtype=np.float64)))


@pytest.mark.parametrize("n", [1, 2, 5, 20, 50])
def test_the_exact_distribution_is_scipys_and_sums_to_one(n: int) -> None:
    from scipy.stats._hypotests import _get_wilcoxon_distr

    pmf = wilcoxon_distribution(n)
    assert np.array_equal(pmf, _get_wilcoxon_distr(n))
    assert pmf.size == n * (n + 1) // 2 + 1
    assert pmf.sum() == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize(
    ("d", "confidence"),
    [
        ([0.1, 0.3], 0.95),
        ([0.1, 0.3, -0.2], 0.5),
        ([1e-12, 2e-12, 4e-12], 0.99),
        ([0.3, 0.3, 0.3000000000000001], 0.9),
    ],
)
def test_t_test_of_few_or_nearly_equal_differences(d: list[float], confidence: float) -> None:
    """n = 2 (one degree of freedom), tiny spreads and a spread of one ulp."""
    baseline = np.full(len(d), 0.5)
    assert_t_test_is_scipys(baseline + np.asarray(d), baseline, confidence)


def test_t_test_of_a_huge_effect_has_scipys_tiny_p_value() -> None:
    rng = np.random.default_rng(3)
    baseline = rng.random(5000)
    candidate = baseline + 0.3 + rng.normal(0, 0.01, 5000)
    assert_t_test_is_scipys(candidate, baseline, 0.95)
    assert_same(signed_rank_p_value(candidate - baseline), scipy_wilcoxon(candidate - baseline))


def test_comparison_with_nan_or_one_row_has_no_tests() -> None:
    """The NaN policy: non-finite losses or a single row give no p-values, and no scipy call."""
    nan = paired_comparison([0.1, np.nan, 0.3], [0.2, 0.2, 0.2], confidence=0.95, resamples=None, seed=0)
    assert (nan.p_value_t, nan.p_value_wilcoxon, nan.t_ci_low) == (None, None, None)
    one = paired_comparison([0.1], [0.2], confidence=0.95, resamples=None, seed=0)
    assert (one.p_value_t, one.p_value_wilcoxon) == (None, None)


def test_compare_never_imports_scipy_stats() -> None:
    """The paired tests of a comparison, large and small, load scipy.special only (0.2 s, not 0.7 s)."""
    code = (
        "import sys, numpy as np\n"
        "from cosloss_cli.stats.intervals import paired_comparison\n"
        "rng = np.random.default_rng(0)\n"
        "for n in (5, 30, 500):\n"
        "    b = rng.random(n)\n"
        "    c = np.round(b + rng.normal(0, 0.1, n), 1)\n"
        "    r = paired_comparison(c, b, confidence=0.95, resamples=None, seed=0)\n"
        "    assert r.p_value_t is not None and r.p_value_wilcoxon is not None, r\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"
