"""The interval of the mean with a computed bootstrap distribution (cosloss_cli.stats.saddlepoint).

The reference is ``scipy.stats.bootstrap(..., method="BCa")`` with many resamples: its
ends carry Monte Carlo noise of about ``0.16 / (0.06 * sqrt(B))`` standard errors of
the mean (the quantile's error at 2.5%), 0.012 for B = 50,000; the saddlepoint ends
must lie within a few of those, much closer than scipy's default 9,999 resamples
lie to each other.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cosloss_cli.pipeline.compute import compute_files
from cosloss_cli.stats import saddlepoint
from cosloss_cli.stats.saddlepoint import MIN_DISTINCT, saddlepoint_mean_ci, smooth_enough

from .test_figures import json_of


def skewed(kind: str, n: int, seed: int) -> np.ndarray:
    """Loss-like samples: right-skewed, heavy-tailed, mostly exact zeros, or left-skewed."""
    rng = np.random.default_rng(seed)
    if kind == "exponential":
        return rng.exponential(0.1, n)
    if kind == "lognormal":
        return rng.lognormal(0.0, 1.5, n) / 50
    if kind == "zeros":
        return np.where(rng.random(n) < 0.7, 0.0, rng.random(n))
    return 2.0 - rng.beta(0.5, 5.0, n) * 2  # left-skewed, near the top of [0, 2]


def standard_error(x: np.ndarray) -> float:
    return float(np.std(x) / math.sqrt(x.size))


@pytest.mark.parametrize(
    ("kind", "n", "confidence"),
    [("exponential", 120, 0.95), ("lognormal", 1000, 0.95), ("zeros", 400, 0.9), ("left", 3000, 0.99)],
)
def test_ends_within_monte_carlo_error_of_scipy(kind: str, n: int, confidence: float) -> None:
    from scipy import stats

    x = skewed(kind, n, seed=n)
    low, high = saddlepoint_mean_ci(x, confidence=confidence)
    reference = stats.bootstrap(
        (x,), np.mean, method="BCa", confidence_level=confidence, n_resamples=50_000, rng=np.random.default_rng(1)
    ).confidence_interval
    se = standard_error(x)
    assert abs(low - reference.low) < 0.06 * se
    assert abs(high - reference.high) < 0.06 * se


def test_closer_to_many_resamples_than_default_resamples_are() -> None:
    """The point of computing it: less noise than scipy's own default (9,999 resamples)."""
    from scipy import stats

    x = skewed("lognormal", 800, seed=3)
    computed = np.array(saddlepoint_mean_ci(x, confidence=0.95))

    def drawn(resamples: int, seed: int) -> np.ndarray:
        ci = stats.bootstrap(
            (x,), np.mean, method="BCa", n_resamples=resamples, rng=np.random.default_rng(seed)
        ).confidence_interval
        return np.array([ci.low, ci.high])

    many = drawn(200_000, 0)
    default_errors = [np.abs(drawn(9999, seed) - many).max() for seed in range(1, 6)]
    assert np.abs(computed - many).max() < np.median(default_errors)


def test_binned_evaluation_agrees_with_every_value(monkeypatch: pytest.MonkeyPatch) -> None:
    x = skewed("lognormal", 70_000, seed=5)
    binned = saddlepoint_mean_ci(x, confidence=0.95)
    monkeypatch.setattr(saddlepoint, "BINNED_ABOVE", 10**9)
    exact = saddlepoint_mean_ci(x, confidence=0.95)
    se = standard_error(x)
    assert abs(binned[0] - exact[0]) < 1e-5 * se
    assert abs(binned[1] - exact[1]) < 1e-5 * se


def test_a_large_input_is_computed_within_monte_carlo_error() -> None:
    """Two million losses (binned): scipy's bootstrap would take minutes here, so the normal limit checks it."""
    x = skewed("exponential", 2_000_000, seed=8)
    low, high = saddlepoint_mean_ci(x, confidence=0.95)
    # At this size the bootstrap distribution of the mean is normal to 1e-3 of a standard
    # error (skewness 2 / sqrt(n)): the BCa ends are the mean -/+ 1.96 se, nudged by the skew.
    se = standard_error(x)
    mean = float(np.mean(x))
    assert low == pytest.approx(mean - 1.959964 * se, abs=0.01 * se)
    assert high == pytest.approx(mean + 1.959964 * se, abs=0.01 * se)
    assert high - mean > mean - low  # right skew: the upper end is farther


def test_degenerate_inputs() -> None:
    assert all(math.isnan(v) for v in saddlepoint_mean_ci([0.5], confidence=0.95))
    assert all(math.isnan(v) for v in saddlepoint_mean_ci([], confidence=0.95))
    assert all(math.isnan(v) for v in saddlepoint_mean_ci([0.1, math.nan, 0.3], confidence=0.95))
    assert saddlepoint_mean_ci(np.full(500, 0.25), confidence=0.95) == (0.25, 0.25)


def test_two_levels_far_apart_stay_inside_the_data() -> None:
    """A lattice of two values and a single outlier: the search must still end inside [min, max]."""
    x = np.zeros(300)
    x[-1] = 2.0
    low, high = saddlepoint_mean_ci(x, confidence=0.99)
    assert 0.0 <= low <= high <= 2.0


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(MIN_DISTINCT, 400), elements=st.floats(0, 2, allow_subnormal=False), unique=True),
    st.floats(0.5, 0.999),
)
def test_property_ordered_inside_the_data_and_nested(x: np.ndarray, confidence: float) -> None:
    """Any smooth sample (here: distinct values) gives ordered ends inside the data, nested by level."""
    low, high = saddlepoint_mean_ci(x, confidence=confidence)
    tolerance = 1e-12 * max(1.0, float(np.abs(x).max()))
    assert x.min() - tolerance <= low <= high <= x.max() + tolerance
    narrower = saddlepoint_mean_ci(x, confidence=confidence / 2)
    assert low - tolerance <= narrower[0] <= narrower[1] <= high + tolerance


def test_compute_uses_it_by_default_and_resamples_when_told(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    labels = rng.standard_normal((1000, 16)).astype(np.float32)
    predictions = (labels + rng.exponential(1.0, (1000, 16))).astype(np.float32)
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    document = json_of(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--json"])
    losses = np.asarray(document["losses"])
    assert (document["ci_low"], document["ci_high"]) == saddlepoint_mean_ci(losses, confidence=0.95)
    again = json_of(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--seed", "9"])
    assert again["ci_low"] == document["ci_low"]  # nothing random: the seed changes nothing
    drawn = json_of(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--resamples", "1000"])
    assert drawn["ci_low"] != document["ci_low"]
    assert abs(drawn["ci_low"] - document["ci_low"]) < 0.2 * standard_error(losses)


def test_lattices_are_not_smooth_enough() -> None:
    assert not smooth_enough(np.arange(MIN_DISTINCT - 1, dtype=np.float64))
    assert smooth_enough(np.arange(MIN_DISTINCT, dtype=np.float64))
    assert not smooth_enough(np.where(np.arange(10**6) % 7 == 0, 1.0, 0.0))  # losses all 0 or 1
    assert smooth_enough(skewed("zeros", 10**6, seed=1))  # exact zeros among many levels


@pytest.mark.parametrize("rows", [MIN_DISTINCT - 1, 300])
def test_too_few_or_too_coarse_losses_draw_scipys_resamples(rows: int, tmp_path: Path) -> None:
    from scipy import stats

    rng = np.random.default_rng(4)
    labels = rng.standard_normal((rows, 6))
    predictions = labels + rng.standard_normal((rows, 6))
    if rows == 300:  # losses on two levels: identical or opposite rows
        predictions = np.where(rng.random((rows, 1)) < 0.9, labels, -labels)
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    result = compute_files(str(tmp_path / "l.npy"), str(tmp_path / "p.npy"))
    reference = stats.bootstrap(
        (result.losses,), np.mean, method="BCa", n_resamples=10000, rng=np.random.default_rng(0)
    ).confidence_interval
    assert result.figures.ci_low == pytest.approx(reference.low, rel=1e-12)
    assert result.figures.ci_high == pytest.approx(reference.high, rel=1e-12)


def test_normal_functions_match_the_standard_library() -> None:
    from statistics import NormalDist

    from cosloss_cli.stats.saddlepoint import normal_cdf, normal_ppf

    normal = NormalDist()
    levels = [*np.linspace(1e-6, 1 - 1e-6, 2001), 1e-300, 1e-20, 0.01, 0.025, 0.5, 0.975, 1 - 1e-12]
    for p in levels:
        assert normal_ppf(p) == pytest.approx(normal.inv_cdf(p), rel=1e-14, abs=1e-14)
    for x in np.linspace(-8, 8, 601):  # beyond, the library's 1 + erf(x) underflows to 0 first
        assert normal_cdf(x) == pytest.approx(normal.cdf(x), rel=1e-14, abs=2e-16)  # its tail: 1 + erf
    assert (normal_ppf(0), normal_ppf(1)) == (-math.inf, math.inf)
