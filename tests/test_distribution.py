"""The distribution of the losses: each figure against an independent reference.

Percentiles against ``np.percentile`` (numpy's default, linear method), the top K
against a full stable sort, histogram counts against a bin search of their own.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.errors import InputUsageError
from cosloss_cli.stats.distribution import (
    BARS,
    NARROW_RANGE,
    PERCENTILES,
    TopK,
    histogram,
    median_and_percentiles,
    percentiles,
    pooled_percentiles,
    sparkline,
)
from cosloss_cli.status import ExitStatus

from .conftest import property_settings

PROPERTY = property_settings(100)

#: Losses with many ties (a few values) or none (any float in range), of any length.
loss_values = st.one_of(
    st.floats(0, 2, allow_nan=False),
    st.sampled_from([0.0, 0.25, 1.0, 1.0 + 2**-52, 2.0]),
)
loss_lists = st.lists(loss_values, max_size=80)


def _numpy_percentiles(losses: np.ndarray) -> list[float]:
    return [float(v) for v in np.percentile(losses, list(PERCENTILES.values()))]


# ---- percentiles ---------------------------------------------------------------------------


@PROPERTY
@given(losses=st.lists(st.floats(-1e6, 1e6, allow_nan=False) | loss_values, min_size=1, max_size=200))
def test_percentiles_are_numpys_default_method_to_the_bit(losses: list[float]) -> None:
    array = np.array(losses)
    ours = percentiles(array)
    assert list(ours) == ["p05", "p25", "p75", "p95", "p99"]
    assert list(ours.values()) == _numpy_percentiles(array)


@PROPERTY
@given(losses=st.lists(st.floats(-1e6, 1e6, allow_nan=False) | loss_values, min_size=1, max_size=200))
def test_median_and_percentiles_from_one_partition_are_numpys(losses: list[float]) -> None:
    array = np.array(losses)
    before = array.copy()
    median, found = median_and_percentiles(array)
    assert median == float(np.median(array))  # to the bit, odd and even counts
    assert list(found.values()) == _numpy_percentiles(array)
    np.testing.assert_array_equal(array, before)  # the caller's losses are not reordered


@pytest.mark.parametrize("size", [2047, 2048, 2049, 5001])
def test_median_and_percentiles_sorted_or_partitioned_are_numpys(size: int) -> None:
    """Small sets are sorted, larger ones partitioned: the same figures either side of the switch."""
    from cosloss_cli.stats.distribution import SORT_MAX_VALUES

    assert 2047 <= SORT_MAX_VALUES < 2049
    rng = np.random.default_rng(size)
    array = np.round(rng.gamma(2.0, 0.05, size), 3)  # many ties
    median, found = median_and_percentiles(array)
    assert median == float(np.median(array))
    assert list(found.values()) == _numpy_percentiles(array)


def test_median_and_percentiles_with_a_nan_or_nothing() -> None:
    for losses in ([], [0.5, math.nan, 1.0]):
        median, found = median_and_percentiles(np.array(losses))
        assert math.isnan(median) and all(math.isnan(v) for v in found.values())


def test_percentiles_of_a_known_set() -> None:
    # numpy's linear method: the value at (n - 1) * q, interpolated between neighbours
    losses = np.arange(101, dtype=float)[::-1] / 50  # 0.00, 0.02, ..., 2.00 in any order
    assert percentiles(losses) == pytest.approx({"p05": 0.1, "p25": 0.5, "p75": 1.5, "p95": 1.9, "p99": 1.98})


def test_percentiles_of_a_large_block_match_numpy() -> None:
    losses = np.random.default_rng(5).beta(2, 5, 1_000_003) * 2
    assert list(percentiles(losses).values()) == _numpy_percentiles(losses)


def test_percentiles_of_nothing_or_with_a_nan_are_nan_like_the_summary() -> None:
    assert all(math.isnan(v) for v in percentiles([]).values())
    assert all(math.isnan(v) for v in percentiles([0.5, math.nan, 1.0]).values())


def test_percentiles_accept_any_shape() -> None:
    losses = np.random.default_rng(2).uniform(0, 2, (30, 7))
    assert list(percentiles(losses).values()) == _numpy_percentiles(losses.ravel())


def test_pooled_percentiles_are_those_of_all_losses_not_an_average() -> None:
    pairs = [np.array([0.0, 0.1, 0.2]), np.array([1.0, 1.5, 1.9, 2.0, 2.0, 2.0, 2.0])]
    pooled = pooled_percentiles(pairs)
    assert list(pooled.values()) == _numpy_percentiles(np.concatenate(pairs))
    averaged = np.mean([_numpy_percentiles(p) for p in pairs], axis=0)
    assert list(pooled.values()) != pytest.approx(list(averaged))
    assert all(math.isnan(v) for v in pooled_percentiles([]).values())


def test_the_distribution_module_loads_neither_numpy_ma_nor_rich() -> None:
    """np.percentile and np.median import numpy.ma (20 ms); rich is for the table view only."""
    code = textwrap.dedent(
        """
        import json, sys
        from cosloss_cli.stats.distribution import TopK, histogram, percentiles, pooled_percentiles
        percentiles([0.5, 1.0]); pooled_percentiles([[0.5], [1.0]]); histogram([0.5, 1.0])
        top = TopK(1); top.update([0.5, 1.0], 0); top.result()
        print(json.dumps([m for m in ("numpy.ma", "rich", "pandas", "pyarrow") if m in sys.modules]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []


# ---- top K -----------------------------------------------------------------------------------


def _sorted_reference(losses: list[float], k: int, best: bool) -> list[tuple[int, float]]:
    """A full stable sort: by loss (descending for the worst), then by index."""
    ranked = [(i, v) for i, v in enumerate(losses) if not math.isnan(v)]
    ranked.sort(key=lambda item: item[1], reverse=not best)  # stable: equal losses keep index order
    return ranked[:k]


def _feed(top: TopK, losses: list[float], cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(losses)]
    for start, stop in zip(bounds, bounds[1:], strict=False):
        top.update(np.array(losses[start:stop], dtype=float), offset=start)
        assert top._keys.size <= top.k  # memory: never more than K candidates between blocks


@PROPERTY
@given(data=st.data(), losses=loss_lists, k=st.integers(0, 100), best=st.booleans())
def test_top_k_equals_a_full_stable_sort(data: st.DataObject, losses: list[float], k: int, best: bool) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(losses)), max_size=6))
    top = TopK(k, best=best)
    _feed(top, losses, cuts)
    assert top.result() == _sorted_reference(losses, k, best)


@PROPERTY
@given(data=st.data(), losses=st.lists(loss_values | st.just(math.nan), max_size=40), k=st.integers(0, 10))
def test_top_k_never_ranks_nan(data: st.DataObject, losses: list[float], k: int) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(losses)), max_size=3))
    for best in (False, True):
        top = TopK(k, best=best)
        _feed(top, losses, cuts)
        assert top.result() == _sorted_reference(losses, k, best)


def test_top_k_ties_go_to_the_lower_index() -> None:
    top = TopK(3)
    top.update([1.0, 2.0, 1.0], offset=0)
    top.update([2.0, 1.0, 1.0], offset=3)
    assert top.result() == [(1, 2.0), (3, 2.0), (0, 1.0)]
    best = TopK(2, best=True)
    best.update([1.0, 1.0], offset=10)
    best.update([1.0, 0.5], offset=0)  # blocks may come in any order: the index decides
    assert best.result() == [(1, 0.5), (0, 1.0)]


def test_top_k_of_more_rows_than_there_are_and_of_zero_rows() -> None:
    top = TopK(10)
    top.update([0.5, 1.5], offset=0)
    assert top.result() == [(1, 1.5), (0, 0.5)]
    none = TopK(0)
    none.update([0.5, 1.5], offset=0)
    assert none.result() == []
    assert TopK(3).result() == []


def test_top_k_over_many_large_blocks_matches_argsort() -> None:
    losses = np.round(np.random.default_rng(8).uniform(0, 2, 300_000), 3)  # many ties
    top, best = TopK(100), TopK(100, best=True)
    for start in range(0, losses.size, 65_536):
        top.update(losses[start : start + 65_536], offset=start)
        best.update(losses[start : start + 65_536], offset=start)
    worst_first = np.argsort(-losses, kind="stable")[:100]
    best_first = np.argsort(losses, kind="stable")[:100]
    assert top.result() == [(int(i), float(losses[i])) for i in worst_first]
    assert best.result() == [(int(i), float(losses[i])) for i in best_first]


@pytest.mark.parametrize("k", [-1, 1.5, True, "3"])
def test_top_k_needs_a_whole_number_of_rows(k: object) -> None:
    with pytest.raises(InputUsageError, match="whole number >= 0") as caught:
        TopK(k)  # type: ignore[arg-type]
    assert caught.value.exit_status == ExitStatus.USAGE_ERROR


# ---- histogram -------------------------------------------------------------------------------


def _reference_counts(finite: np.ndarray, edges: np.ndarray) -> list[int]:
    """Half-open bins [e_i, e_i+1), the last one closed, by a bin search of their own."""
    index = np.searchsorted(edges, finite, side="right") - 1
    index[finite == edges[-1]] = edges.size - 2
    inside = (index >= 0) & (index < edges.size - 1)
    return np.bincount(index[inside], minlength=edges.size - 1).tolist()


@PROPERTY
@given(losses=st.lists(loss_values | st.just(math.nan), max_size=80), bins=st.integers(1, 40))
def test_histogram_counts_every_finite_loss_in_its_bin(losses: list[float], bins: int) -> None:
    array = np.array(losses, dtype=float)
    finite = array[np.isfinite(array)]
    edges, counts = histogram(array, bins)
    assert edges.shape == (bins + 1,) and counts.shape == (bins,)
    assert counts.tolist() == _reference_counts(finite, edges)
    assert int(counts.sum()) == finite.size
    np.testing.assert_array_equal(edges, np.histogram(finite, bins, range=(edges[0], edges[-1]))[1])
    spread = float(finite.max() - finite.min()) if finite.size else 0.0
    if 0 < spread < NARROW_RANGE:
        assert (edges[0], edges[-1]) == (finite.min(), finite.max())
    else:
        assert (edges[0], edges[-1]) == (0.0, 2.0)


def test_histogram_over_0_2_by_default() -> None:
    edges, counts = histogram([0.0, 0.05, 0.1, 1.0, 1.99, 2.0])
    np.testing.assert_allclose(edges, np.linspace(0, 2, 21), rtol=0, atol=0)
    assert counts.tolist() == [2, 1] + [0] * 8 + [1] + [0] * 8 + [2]  # 1.0 opens bin 10; 2.0 closes the last


def test_a_narrow_range_is_binned_over_min_to_max() -> None:
    losses = np.array([0.30, 0.31, 0.32, 0.45])  # range 0.15 < 0.2
    edges, counts = histogram(losses, bins=3)
    np.testing.assert_allclose(edges, [0.30, 0.35, 0.40, 0.45])
    assert counts.tolist() == [3, 0, 1]
    wide = np.array([0.30, 0.50])  # range 0.2: not narrow
    assert histogram(wide, bins=4)[0].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_equal_losses_are_binned_over_0_2() -> None:
    edges, counts = histogram([1.0, 1.0, 1.0], bins=4)
    assert edges.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert counts.tolist() == [0, 0, 3, 0]


def test_raw_losses_outside_0_2_widen_the_range() -> None:
    edges, counts = histogram([-0.5, 0.25, 3.5], bins=4)
    assert edges.tolist() == [-0.5, 0.5, 1.5, 2.5, 3.5]
    assert counts.tolist() == [2, 0, 0, 1]


def test_histogram_of_no_finite_losses() -> None:
    edges, counts = histogram([math.nan], bins=2)
    assert edges.tolist() == [0.0, 1.0, 2.0] and counts.tolist() == [0, 0]


@pytest.mark.parametrize("bins", [0, -3, 2.5, True])
def test_histogram_needs_at_least_one_bin(bins: object) -> None:
    with pytest.raises(InputUsageError, match="whole number >= 1"):
        histogram([0.5], bins)  # type: ignore[arg-type]


# ---- sparkline -------------------------------------------------------------------------------


def test_sparkline_text_golden() -> None:
    losses = np.concatenate([np.full(10, 0.05), np.full(80, 0.45), np.full(40, 0.95), np.full(1, 1.95)])
    edges, counts = histogram(losses)
    assert sparkline(counts, edges, color=False) == (
        "▁   █    ▄         ▁\n"  # 10/80 -> one eighth; 40/80 -> four; 1/80 still shows
        "0.00    1.00    2.00"
    )


@pytest.mark.parametrize(
    ("counts", "edges", "width", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], np.linspace(0, 2, 9), None, "▁▂▃▄▅▆▇█\n0.00 1.00 2.00"),
        ([8, 0, 4], [0.0, 0.5, 1.0, 1.5], 9, "███   ▄▄▄\n0.00 0.50 1.50"),
        ([2, 1], [0.0, 1.0, 2.0], 12, "██████▄▄▄▄▄▄\n0.00 1.00 2.00"),  # no space for "0.00  1.00  2.00"
        ([2, 1], [0.0, 1.0, 2.0], 16, "████████▄▄▄▄▄▄▄▄\n0.00  1.00  2.00"),
        ([3], [0.25, 0.375], 12, "████████████\n0.250  0.375"),
        ([0, 0], [0.0, 1.0, 2.0], None, "  \n0.00 1.00 2.00"),
        ([5, 1], [0.301234, 0.302234, 0.303234], 20, "██████████▂▂▂▂▂▂▂▂▂▂\n0.30123 0.30223 0.30323"),
    ],
)
def test_sparkline_widths_heights_and_labels(
    counts: list[int], edges: list[float], width: int | None, expected: str
) -> None:
    assert sparkline(counts, edges, width, color=False) == expected


def test_sparkline_in_colour_is_the_same_text_styled() -> None:
    from rich.console import Console
    from rich.text import Text

    edges, counts = histogram([0.1, 0.2, 1.5], bins=4)
    plain = sparkline(counts, edges, color=False)
    styled = sparkline(counts, edges)
    assert isinstance(styled, Text) and styled.plain == plain
    assert {str(span.style) for span in styled.spans} == {"cyan", "dim"}
    console = Console(force_terminal=True, color_system="standard", width=40, record=True)
    console.print(styled)
    assert console.export_text(clear=False) == plain + "\n"
    assert "\x1b[36m" in console.export_text(styles=True)  # cyan bars


def test_sparkline_refuses_counts_and_edges_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="n counts and n \\+ 1 edges"):
        sparkline([1, 2], [0.0, 1.0])
    with pytest.raises(ValueError):
        sparkline([], [0.0])


def test_bars_are_the_eight_block_eighths() -> None:
    assert BARS == "".join(chr(c) for c in range(0x2581, 0x2589))
