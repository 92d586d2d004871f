"""cosloss_cli.stats.intervals against scipy on the same arrays: the bootstrap CI, paired tests, Holm.

Every figure is checked against scipy (the independent reference the issue names): the
small-sample CI is scipy.stats.bootstrap's to the last bit, the grouped resampler for
large samples lies within Monte Carlo error of it, and the paired statistics equal
ttest_rel's and wilcoxon's to 1e-12.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc
import warnings
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.special import ndtr

from cosloss_cli.stats import intervals as stats
from cosloss_cli.stats.intervals import (
    BETTER,
    NO_CLEAR_DIFFERENCE,
    WORSE,
    bca_interval,
    exact_bootstrap_means,
    grouped_bootstrap_means,
    holm,
    mean_ci,
    paired_comparison,
)


def skewed_losses(n: int, seed: int) -> np.ndarray:
    """Loss-like data: mostly small, a long right tail, a few near the maximum 2."""
    rng = np.random.default_rng(seed)
    losses = rng.gamma(0.6, 0.08, size=n)
    worst = rng.random(n) < 0.02
    losses[worst] = 2 - rng.gamma(1.0, 0.05, size=int(worst.sum()))
    return np.clip(losses, 0, 2)


def scipy_bca(values: np.ndarray, *, confidence: float, resamples: int, seed: int) -> Any:
    return scipy_stats.bootstrap(
        (values,),
        np.mean,
        method="BCa",
        n_resamples=resamples,
        confidence_level=confidence,
        rng=np.random.default_rng(seed),
    )


def endpoint_tolerance(standard_error: float, resamples: int, confidence: float) -> float:
    """Allowed difference of two independent bootstrap CI ends: 6 standard errors of it.

    A quantile at level p of B bootstrap means (about normal with sd ``standard_error``)
    has Monte Carlo standard error sqrt(p(1-p)/B) / density, the density being
    phi(z_p) / standard_error; the difference of two independent runs has sqrt(2) times that.
    """
    p = (1 - confidence) / 2
    z = scipy_stats.norm.ppf(p)
    one = math.sqrt(p * (1 - p) / resamples) * standard_error / scipy_stats.norm.pdf(z)
    return 6 * math.sqrt(2) * one


# --- mean_ci: the small-sample path draws scipy's resamples ------------------------------------


@pytest.mark.parametrize(("n", "confidence", "seed"), [(2, 0.95, 0), (50, 0.9, 1), (700, 0.95, 7), (3000, 0.99, 3)])
def test_small_sample_ci_is_scipy_bootstrap(n: int, confidence: float, seed: int) -> None:
    """The same resamples as scipy's for a seed; only the jackknife's last bits may differ."""
    values = skewed_losses(n, seed)
    low, high = mean_ci(values, confidence=confidence, resamples=2000, seed=seed)
    expected = scipy_bca(values, confidence=confidence, resamples=2000, seed=seed).confidence_interval
    assert low == pytest.approx(float(expected.low), rel=1e-12, abs=1e-15)
    assert high == pytest.approx(float(expected.high), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("n", "seed"), [(2, 0), (700, 7), (3000, 3)])
def test_exact_bootstrap_means_are_scipys_bit_for_bit(n: int, seed: int) -> None:
    values = skewed_losses(n, seed)
    means = exact_bootstrap_means(values, resamples=1500, rng=np.random.default_rng(seed))
    expected = scipy_bca(values, confidence=0.95, resamples=1500, seed=seed).bootstrap_distribution
    np.testing.assert_array_equal(means, expected)


def test_the_interval_imports_no_scipy() -> None:
    """compute draws it by default: importing scipy.stats would cost 0.6 s at every run."""
    code = (
        "import sys, numpy as np; from cosloss_cli.stats.intervals import mean_ci; "
        "mean_ci(np.arange(100.0) ** 2, confidence=0.95, resamples=500, seed=0); "
        "mean_ci(np.arange(9000.0) ** 2, confidence=0.95, resamples=500, seed=0); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'numpy.ma')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_bca_interval_from_scipys_bootstrap_means_is_scipys_interval() -> None:
    """Same bootstrap means in, same interval out: the BCa arithmetic (analytic jackknife) is scipy's."""
    for n, seed in ((40, 0), (1000, 1), (4000, 2)):
        values = skewed_losses(n, seed)
        result = scipy_bca(values, confidence=0.95, resamples=3000, seed=seed)
        low, high = bca_interval(values, result.bootstrap_distribution, confidence=0.95)
        assert low == pytest.approx(float(result.confidence_interval.low), rel=1e-12, abs=1e-15)
        assert high == pytest.approx(float(result.confidence_interval.high), rel=1e-12, abs=1e-15)


def test_bca_interval_counts_ties_half_as_scipy() -> None:
    """Bootstrap means equal to the observed mean count half below, half above."""
    values = np.array([0.0, 1.0, 2.0])  # mean 1; symmetric, so acceleration 0
    means = np.array([0.5, 1.0, 1.0, 1.5])
    low, high = bca_interval(values, means, confidence=0.5)
    # z0 = ndtri((1 + 3) / 8) = 0: the levels are the plain 25% and 75%
    assert (low, high) == tuple(np.quantile(means, [0.25, 0.75]))
    assert ndtr(0.0) == 0.5


# --- the grouped resampler against scipy's bootstrap -----------------------------------------


@pytest.mark.parametrize(("n", "seed"), [(300, 11), (2000, 12), (5000, 13)])
def test_grouped_resampler_is_within_monte_carlo_error_of_scipy(n: int, seed: int, monkeypatch) -> None:
    values = skewed_losses(n, seed)
    resamples = 10_000
    reference = scipy_bca(values, confidence=0.95, resamples=resamples, seed=seed)
    monkeypatch.setattr(stats, "EXACT_BOOTSTRAP_MAX_ROWS", 0)  # force the grouped path
    low, high = mean_ci(values, confidence=0.95, resamples=resamples, seed=seed + 100)
    tolerance = endpoint_tolerance(float(reference.standard_error), resamples, 0.95)
    assert low == pytest.approx(float(reference.confidence_interval.low), abs=tolerance)
    assert high == pytest.approx(float(reference.confidence_interval.high), abs=tolerance)
    # sanity of the tolerance itself: a tenth of the interval's width at most
    assert tolerance < 0.1 * (high - low)


def test_grouped_means_have_the_bootstrap_mean_variance_and_skewness() -> None:
    """Moments of the bootstrap mean are known exactly: xbar, var/n, skew(x)/sqrt(n)."""
    values = skewed_losses(50_000, 5)
    resamples = 40_000
    means = grouped_bootstrap_means(values, resamples=resamples, rng=np.random.default_rng(1))
    sd = values.std() / math.sqrt(values.size)
    assert abs(means.mean() - values.mean()) < 5 * sd / math.sqrt(resamples)
    assert means.std() / sd == pytest.approx(1, abs=5 / math.sqrt(2 * resamples))
    expected_skew = scipy_stats.skew(values) / math.sqrt(values.size)
    assert scipy_stats.skew(means) == pytest.approx(expected_skew, abs=5 * math.sqrt(6 / resamples))


def test_few_values_are_each_their_own_group_an_exact_bootstrap() -> None:
    """With n <= GROUPS the counts are the bootstrap's multinomial counts of the values themselves."""
    values = np.array([0.0, 0.0, 1.0])
    means = grouped_bootstrap_means(values, resamples=30_000, rng=np.random.default_rng(0))
    # a resample's mean is k/3 with k ~ Binomial(3, 1/3)
    observed = np.bincount(np.rint(means * 3).astype(int), minlength=4) / means.size
    assert np.allclose(means * 3, np.rint(means * 3))
    expected = scipy_stats.binom.pmf(np.arange(4), 3, 1 / 3)
    assert np.abs(observed - expected).max() < 0.015


def test_large_sample_ci_agrees_with_the_normal_interval() -> None:
    """A million values: the bootstrap interval of the mean is the CLT's, within Monte Carlo error."""
    values = skewed_losses(1_000_000, 21)
    low, high = mean_ci(values, confidence=0.95, resamples=10_000, seed=0)
    se = values.std(ddof=1) / math.sqrt(values.size)
    tolerance = endpoint_tolerance(se, 10_000, 0.95) + 0.02 * se  # + the interval's own skew
    assert low == pytest.approx(values.mean() - 1.959964 * se, abs=tolerance)
    assert high == pytest.approx(values.mean() + 1.959964 * se, abs=tolerance)


@pytest.mark.parametrize("n", [400, 20_000])
def test_same_seed_same_interval_other_seed_other_interval(n: int) -> None:
    values = skewed_losses(n, 3)
    first = mean_ci(values, confidence=0.95, resamples=1000, seed=5)
    assert mean_ci(values, confidence=0.95, resamples=1000, seed=5) == first
    assert mean_ci(values, confidence=0.95, resamples=1000, seed=6) != first


def peak_bytes(values: np.ndarray, resamples: int) -> int:
    tracemalloc.start()
    try:
        mean_ci(values, confidence=0.95, resamples=resamples, seed=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("n", "fewer", "more"), [(200_000, 10_000, 40_000), (3000, 2000, 8000)])
def test_memory_does_not_grow_with_resamples_beyond_the_means(n: int, fewer: int, more: int) -> None:
    """Resamples are drawn in batches: 4x the resamples costs little more than the extra bootstrap means.

    The peak is a batch of resamples (bounded by BATCH_VALUES) plus the bootstrap means;
    10% of slack for where the last, partial batch falls.
    """
    values = skewed_losses(n, 1)
    peak_bytes(values, 100)  # scipy's imports are not part of the peak
    base = peak_bytes(values, fewer)
    assert base < 8 * (8 * stats.BATCH_VALUES + 8 * fewer + 8 * n)
    assert peak_bytes(values, more) < 1.1 * base + 4 * 8 * (more - fewer)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], (math.nan, math.nan)), ([0.3], (math.nan, math.nan)), ([0.5, math.nan, 0.1], (math.nan, math.nan))],
)
def test_no_interval_for_fewer_than_two_or_non_finite_values(values: list[float], expected: tuple) -> None:
    low, high = mean_ci(values, confidence=0.95, resamples=1000, seed=0)
    assert math.isnan(low) and math.isnan(high)


def test_constant_values_have_a_point_interval_without_warnings(recwarn) -> None:
    assert mean_ci([0.25] * 10, confidence=0.95, resamples=1000, seed=0) == (0.25, 0.25)
    assert mean_ci(np.full(10_000, 0.5), confidence=0.95, resamples=1000, seed=0) == (0.5, 0.5)
    assert len(recwarn) == 0


# --- paired_comparison against scipy ------------------------------------------------------------


def loss_pair(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline losses and a candidate's on the same rows: correlated, some rows exactly tied."""
    rng = np.random.default_rng(seed)
    baseline = skewed_losses(n, seed)
    candidate = baseline + shift + rng.normal(0, 0.05, n)  # not clipped: no bias near 0
    ties = rng.random(n) < 0.1
    candidate[ties] = baseline[ties]
    return candidate, baseline


@pytest.mark.parametrize(("n", "shift"), [(40, -0.03), (500, 0.0), (3000, 0.01)])
def test_every_figure_equals_scipys(n: int, shift: float) -> None:
    candidate, baseline = loss_pair(n, shift, seed=n)
    result = paired_comparison(candidate, baseline, confidence=0.9, resamples=1000, seed=4)
    d = candidate - baseline
    t_test = scipy_stats.ttest_rel(candidate, baseline)
    t_interval = t_test.confidence_interval(confidence_level=0.9)
    assert result.rows == n
    assert result.mean_difference == pytest.approx(float(np.mean(d)), rel=1e-12, abs=1e-15)
    assert result.p_value_t == pytest.approx(float(t_test.pvalue), rel=1e-12)
    assert result.t_ci_low == pytest.approx(float(t_interval.low), rel=1e-12)
    assert result.t_ci_high == pytest.approx(float(t_interval.high), rel=1e-12)
    assert result.p_value_wilcoxon == pytest.approx(float(scipy_stats.wilcoxon(d).pvalue), rel=1e-12)
    assert result.effect_size == pytest.approx(float(np.mean(d) / np.std(d, ddof=1)), rel=1e-12)
    assert (result.better, result.worse, result.ties) == (
        int((candidate < baseline).sum()),
        int((candidate > baseline).sum()),
        int((candidate == baseline).sum()),
    )
    assert result.better + result.worse + result.ties == n
    assert (result.ci_low, result.ci_high) == mean_ci(d, confidence=0.9, resamples=1000, seed=4)
    assert result.notes == ()


def test_the_bootstrap_resamples_rows_together() -> None:
    """The CI of mean(d) is the bootstrap of d (pairs drawn together), not of two independent samples."""
    candidate, baseline = loss_pair(200, 0.01, seed=2)
    result = paired_comparison(candidate, baseline, confidence=0.95, resamples=2000, seed=0)
    paired = scipy_stats.bootstrap(
        (candidate, baseline),
        lambda c, b, axis: np.mean(c - b, axis=axis),
        paired=True,
        method="BCa",
        n_resamples=2000,
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert result.ci_low == pytest.approx(float(paired.low), rel=1e-12)
    assert result.ci_high == pytest.approx(float(paired.high), rel=1e-12)


@pytest.mark.parametrize(("shift", "verdict"), [(-0.05, BETTER), (0.05, WORSE), (0.0, NO_CLEAR_DIFFERENCE)])
def test_verdict_follows_the_interval(shift: float, verdict: str) -> None:
    candidate, baseline = loss_pair(2000, shift, seed=9)
    result = paired_comparison(candidate, baseline, confidence=0.95, resamples=1000, seed=0)
    assert result.verdict == verdict
    assert result.ci_low is not None and result.ci_high is not None
    assert (result.ci_high < 0) == (verdict == BETTER)
    assert (result.ci_low > 0) == (verdict == WORSE)


def assert_quiet(capfd, recwarn) -> None:
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert [str(w.message) for w in recwarn] == []


@pytest.fixture
def loud_warnings():
    """Warnings shown as they would be in a plain ``python`` run (pytest may hide some)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        yield


def test_no_rows_and_one_row_give_no_statistics_and_say_why(capfd, recwarn, loud_warnings) -> None:
    empty = paired_comparison([], [], confidence=0.95, resamples=1000, seed=0)
    assert empty.rows == 0 and empty.mean_difference is None
    one = paired_comparison([0.2], [0.5], confidence=0.95, resamples=1000, seed=0)
    assert one.mean_difference == pytest.approx(-0.3)
    assert (one.better, one.worse, one.ties) == (1, 0, 0)
    for result in (empty, one):
        figures = (result.ci_low, result.ci_high, result.t_ci_low, result.t_ci_high)
        assert figures == (None, None, None, None)
        assert (result.p_value_t, result.p_value_wilcoxon, result.effect_size) == (None, None, None)
        assert result.verdict == NO_CLEAR_DIFFERENCE
        assert "at least 2" in result.notes[0]
    assert_quiet(capfd, recwarn)


def test_two_rows_give_scipys_figures_quietly(capfd, recwarn, loud_warnings) -> None:
    candidate, baseline = np.array([0.1, 0.4]), np.array([0.3, 0.5])
    result = paired_comparison(candidate, baseline, confidence=0.95, resamples=1000, seed=0)
    assert result.p_value_t == pytest.approx(float(scipy_stats.ttest_rel(candidate, baseline).pvalue), rel=1e-12)
    assert result.p_value_wilcoxon == pytest.approx(float(scipy_stats.wilcoxon(candidate - baseline).pvalue))
    assert result.notes == ()
    assert_quiet(capfd, recwarn)


def test_all_ties_give_no_p_values_with_a_reason_and_no_scipy_warnings(capfd, recwarn, loud_warnings) -> None:
    losses = skewed_losses(100, 0)
    result = paired_comparison(losses, losses.copy(), confidence=0.95, resamples=1000, seed=0)
    assert (result.better, result.worse, result.ties) == (0, 0, 100)
    assert result.mean_difference == 0.0
    assert (result.ci_low, result.ci_high) == (0.0, 0.0)
    assert (result.p_value_t, result.p_value_wilcoxon, result.effect_size) == (None, None, None)
    assert (result.t_ci_low, result.t_ci_high) == (None, None)
    assert result.verdict == NO_CLEAR_DIFFERENCE
    assert result.notes == ("every row is a tie: the differences have no variance, so no p-values or effect size",)
    assert_quiet(capfd, recwarn)


def test_constant_difference_is_a_point_interval_with_only_the_signed_rank_p_value(
    capfd, recwarn, loud_warnings
) -> None:
    """No variance: the t-test and d_z are undefined; Wilcoxon ranks d all on one side, scipy's p is defined."""
    baseline = np.array([0.25, 0.5, 0.75, 1.0, 0.5, 0.25, 0.75, 1.0])
    result = paired_comparison(baseline - 0.25, baseline, confidence=0.95, resamples=1000, seed=0)
    assert (result.ci_low, result.ci_high) == (-0.25, -0.25)
    assert result.verdict == BETTER
    assert result.better == 8
    assert (result.p_value_t, result.effect_size, result.t_ci_low, result.t_ci_high) == (None, None, None, None)
    expected = float(scipy_stats.wilcoxon(np.full(8, -0.25)).pvalue)
    assert 0 < expected < 0.05
    assert result.p_value_wilcoxon == pytest.approx(expected, rel=1e-12)
    assert result.notes == (
        "every row differs by the same -0.25: the differences have no variance, "
        "so no t-test p-value, t interval or effect size",
    )
    assert_quiet(capfd, recwarn)


def test_nan_losses_give_no_statistics(capfd, recwarn, loud_warnings) -> None:
    candidate = np.array([0.1, math.nan, 0.3, 0.2])
    baseline = np.array([0.2, 0.2, math.inf, 0.2])
    result = paired_comparison(candidate, baseline, confidence=0.95, resamples=1000, seed=0)
    assert result.mean_difference is None
    assert (result.ci_low, result.p_value_t, result.p_value_wilcoxon, result.effect_size) == (None,) * 4
    assert (result.better, result.worse, result.ties) == (2, 0, 1)  # 0.3 < inf; NaN compares as neither
    assert result.notes == ("NaN or infinite losses: no statistics",)
    assert_quiet(capfd, recwarn)


def test_unaligned_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="aligned"):
        paired_comparison([0.1, 0.2], [0.1], confidence=0.95, resamples=1000, seed=0)


# --- Holm ----------------------------------------------------------------------------------------


def test_holm_hand_worked_example() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-15)


def test_holm_caps_at_one_passes_none_through_and_counts_only_present_p_values() -> None:
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([None, 0.02, None, 0.04]) == [None, 0.04, None, 0.04]
    assert holm([None]) == [None]
    assert holm([]) == []
    assert holm([0.2]) == [0.2]


@pytest.mark.parametrize("n", [12, 50, 51, 2000])
def test_signed_rank_test_is_scipys_default_wilcoxon(n: int) -> None:
    """Naming "asymptotic" above 50 rows is what scipy's "auto" picks: the same p-value, ties and zeros too."""
    from cosloss_cli.stats.paired import signed_rank_p_value

    rng = np.random.default_rng(n)
    d = np.round(rng.normal(0.01, 0.05, size=n), 2)  # rounded: ties and zeros
    assert signed_rank_p_value(d) == pytest.approx(float(scipy_stats.wilcoxon(d).pvalue), rel=1e-12)
